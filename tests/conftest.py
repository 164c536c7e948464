import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

# tiny matrix products: BLAS threads only spin
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels():
    """Compile (or load from numba's cache) the engines' kernels once, first: jobs load them
    only when large, and a clean checkout compiles them (~30 s), which no timed test should
    pay for."""
    from powercells.enumerate.kernels import numba_installed

    if not numba_installed():
        return
    import numpy as np

    import powercells as pc

    net = pc.Network.from_weights([(np.array([[1.0, 2.0, 0.5], [-1.0, 0.5, 1.0]]),
                                    np.array([0.1, -0.2]))], ["relu"])
    for d, engine in ((3, "vertex"), (2, "planar")):
        layer = [(net.layers[0].weight[:, :d], net.layers[0].bias)]
        pc.count_regions(pc.Network.from_weights(layer, ["relu"]), pc.Box(-1, 1, dim=d),
                         engine=engine, engine_options={"compiled": True}, executor="serial")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _lp_backend_available(name):
    if name == "cvxpy":
        pytest.importorskip("cvxpy")
    if name == "dense":
        pytest.importorskip("numba")


@pytest.fixture(params=["highs", "dense", "cvxpy"])
def lp(request):
    """Every engine test that takes this fixture runs on every LP backend."""
    _lp_backend_available(request.param)
    return request.param


@pytest.fixture(params=["highs", "dense", "cvxpy", "planar", "interval", "vertex"])
def engine(request):
    """Keyword arguments selecting an exact engine: the lp engine on every LP backend, the
    planar engine (2-D domains only), the interval engine (1-D only) and the vertex engine
    (low dimensions); see ``networks.engine_for``."""
    _lp_backend_available(request.param)
    if request.param in ("planar", "interval", "vertex"):
        return {"engine": request.param}
    return {"engine": "lp", "lp": request.param}
