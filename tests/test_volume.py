"""Region volumes (SPEC §5.4, §6.2.1): exact volumes tile the domain and sum over children;
Monte Carlo estimates are seeded, sum exactly over children, and agree with the exact volumes
within their standard errors; templates (SPEC §5.1) are the leaves' input gradients."""

import numpy as np
import pytest
from networks import maxout_network, random_network

import powercells as pc
from powercells.errors import GeometryError


def _children_sum(tree, vols, depth):
    return np.bincount(tree.levels[depth + 1].parent, weights=vols[depth + 1],
                       minlength=len(tree.levels[depth]))


@pytest.mark.parametrize("d, engine", [(1, "auto"), (2, "auto"), (2, "lp"), (3, "auto")])
def test_exact_volumes_tile_and_sum_over_children(d, engine):
    net = random_network(d, [5, 4], seed=d)
    box = pc.Box(-1, 1, dim=d)
    tree = pc.subdivide(net, box, engine=engine)
    vols = [tree.volumes(depth).volume for depth in range(tree.depth + 1)]
    assert tree.volumes().exact
    assert vols[0][0] == pytest.approx(2.0 ** d)
    for depth in range(tree.depth):
        np.testing.assert_allclose(_children_sum(tree, vols, depth), vols[depth], rtol=1e-9)
    assert np.all(vols[-1] > 0)


def test_monte_carlo_volumes_in_4d():
    net = random_network(4, [6, 5], seed=1)
    tree = pc.subdivide(net, pc.Box(-1, 1, dim=4))
    leaves = tree.volumes(n_samples=40_000, seed=3)
    assert not leaves.exact and leaves.n_samples == 40_000
    again = tree.volumes(n_samples=40_000, seed=3)
    np.testing.assert_array_equal(leaves.volume, again.volume)          # seeded
    parents = tree.volumes(1, n_samples=40_000, seed=3)
    vols = [None, parents.volume, leaves.volume]
    np.testing.assert_allclose(_children_sum(tree, vols, 1), parents.volume, rtol=1e-12)
    assert leaves.volume.sum() + leaves.unassigned * 16 / 40_000 == pytest.approx(16.0)
    assert leaves.hits.sum() + leaves.unassigned == 40_000
    # exact volumes (qhull) in 4-D: they tile the box and sum over children
    exact = [tree.volumes(depth, method="exact").volume for depth in range(3)]
    assert exact[0][0] == pytest.approx(16.0)
    for depth in range(2):
        np.testing.assert_allclose(_children_sum(tree, exact, depth), exact[depth], rtol=1e-9)
    with pytest.raises(GeometryError, match="samples must be positive"):
        tree.volumes(n_samples=0)
    with pytest.raises(GeometryError, match="positive integer"):
        tree.volumes(n_samples=1000.5)
    with pytest.raises(GeometryError, match="positive integer"):
        tree.volumes(n_samples="1000")
    with pytest.raises(GeometryError, match="seed must be"):
        tree.volumes(n_samples=100, seed="x")
    with pytest.raises(GeometryError, match="seed must be"):
        tree.volumes(n_samples=100, seed=1.5)
    with pytest.raises(GeometryError, match="layer must be"):
        tree.volumes(5)
    with pytest.raises(GeometryError, match="unknown volume method"):
        tree.volumes(method="grid")


def test_monte_carlo_estimates_cover_the_exact_volumes_over_seeds():
    """In 4-D against exact (qhull) volumes, over several seeds: hit regions within 4.5
    standard errors; a region no sample hit is flagged unresolved, its standard error is the
    rule-of-three bound 3 vol(box) / N, and its exact volume is small (a region of volume
    10 vol(box) / N is missed with probability e^-10)."""
    net = random_network(4, [7, 6], seed=2)
    tree = pc.subdivide(net, pc.Box(-1, 1, dim=4))
    exact = tree.volumes(method="exact").volume
    n = 20_000
    se_exact = 16 * np.sqrt(exact / 16 * (1 - exact / 16) / n)
    misses, inside, total = 0, 0, 0
    for seed in range(5):
        mc = tree.volumes(n_samples=n, seed=seed)
        hit = ~mc.unresolved
        np.testing.assert_array_equal(hit, mc.hits > 0)
        err = np.abs(mc.volume - exact)
        # (the estimated error understates small counts: bound by the larger of the two)
        assert np.all(err[hit] <= 5 * np.maximum(mc.stderr, se_exact)[hit])
        many = mc.hits >= 30
        inside += int(np.sum(err[many] <= 2 * mc.stderr[many]))
        total += int(many.sum())
        np.testing.assert_allclose(mc.stderr[~hit], 3 * 16 / n)
        assert np.all(mc.volume[~hit] == 0) and np.all(exact[~hit] < 10 * 16 / n)
        misses += int((~hit).sum())
    assert misses > 0, "the network should have regions too small for 20 000 samples"
    assert inside >= 0.85 * total            # ~95% expected within two standard errors
    # exact volumes carry no Monte Carlo flags
    assert not tree.volumes(method="exact").unresolved.any()


def test_monte_carlo_agrees_with_exact_volumes():
    net = maxout_network(3, [3, 2], 2, seed=4)
    tree = pc.subdivide(net, pc.Box(-1, 1, dim=3))
    exact = tree.volumes().volume
    n = 200_000
    mc = tree.volumes(method="monte_carlo", n_samples=n, seed=0)
    p = exact / 8.0
    se = 8.0 * np.sqrt(p * (1 - p) / n)
    # a 5-sigma band for every region (fails with probability ~1e-5 per region)
    assert np.all(np.abs(mc.volume - exact) <= 5 * se + 1e-12)


def test_polytope_domain_monte_carlo_uses_the_bounding_box():
    A = np.vstack([np.eye(4), -np.eye(4), np.ones((1, 4))])
    b = np.concatenate([np.ones(4), np.ones(4), [0.0]])
    tree = pc.subdivide(random_network(4, [4], seed=2), pc.Polytope(A, b))
    vol = tree.volumes(n_samples=100_000, seed=1)
    # the half of [-1, 1]^4 below the hyperplane sum(x) = 0: volume 8
    assert vol.volume.sum() == pytest.approx(8.0, abs=5 * 16 * np.sqrt(0.25 / 100_000))


def test_templates_are_input_gradients_also_on_a_slice():
    net = random_network(6, [8, 5], seed=5, head=3)
    rng = np.random.default_rng(0)
    plane = pc.Slice.through_points(rng.normal(size=(3, 6)))
    tree = pc.subdivide(net, plane)
    A, B = tree.templates()
    assert A.shape == (tree.n_regions, 3, 6)
    X = tree.input_points()
    np.testing.assert_allclose(np.einsum("ncd,nd->nc", A, X) + B, net.forward(X), atol=1e-9)
    # finite differences off the plane, inside the leaf, in a random input direction
    i = int(np.argmax(tree.levels[-1].inradius))
    x = X[i]
    v = rng.normal(size=6)
    v *= 1e-7 / np.linalg.norm(v)
    np.testing.assert_allclose((net.forward(x + v) - net.forward(x))[0], A[i] @ v, rtol=1e-5,
                               atol=1e-12)
    A2, _ = tree.templates([i])
    np.testing.assert_array_equal(A2[0], A[i])
