"""Soft vector quantisation: smooth networks and their hard (MASO) limit (SPEC §7).

A MASO unit picks one affine piece (its code, hard VQ). Replacing the pick by a softmax over the
pieces is *soft* VQ: the unit's membership of piece ``r`` at the layer input ``z`` is

    p(r | z) = softmax_r( ell_r(z) / T ),    ell_r(z) = <A[k, r], z> + B[k, r]

(the posterior of a Gaussian mixture over the layer's power-diagram sites; it factorises over
units), and the unit outputs the expected piece value ``sum_r p(r|z) ell_r(z)``. For a ReLU unit
at ``T = 1`` the membership of the active piece is ``sigmoid(h)`` and the output is
``h sigmoid(h)``, SiLU; for abs they are ``sigmoid(2h)`` (expected slope ``tanh(h)``) and
``h tanh(h)``; for a max-pool the weights are a softmax. ``T -> 0`` gives back the hard code and
the MASO itself. The beta-VQ family (:func:`beta_vq`, :class:`BetaVQ`) is the same with
``T = (1 - beta) / beta``: linear ``h/2`` at ``beta = 0``, SiLU at ``beta = 1/2``, ReLU as
``beta -> 1``.

Smooth activations as hard limits
---------------------------------
:data:`HARD_LIMITS` lists the smooth activations read as their MASO limit by
``load_npz(path, hard_limit=True)``, ``from_torch(..., hard_limit=True)`` and
``from_onnx(..., hard_limit=True)``: the limit as the gate sharpens, with the same weights.
Each such layer keeps a :class:`SmoothActivation` record (:attr:`Layer.smooth`,
:attr:`Network.hard_limit`), so the smooth network stays available here. Sigmoid, tanh and
softmax used as activations have no MASO limit (their limit is a step, not continuous) and are
refused.

Per point and per region
------------------------
:func:`soft_codes` evaluates, at points, every layer's memberships, expected code, code entropy
and the soft output; :func:`region_soft_codes` does so at the interior points of a tree's
regions; :func:`deviation` and :func:`sampled_deviation` measure ``||f_soft(x) - f_hard(x)||``.
``temperature=None`` (the default) evaluates the network as given: layers with a smooth record
use their own activation (the smooth network), the others stay hard. A number ``T >= 0``
evaluates the soft VQ of the MASO at temperature ``T`` in every layer (SPEC §7), whatever the
records say; ``T = 0`` is the hard network, ``T = inf`` uniform memberships.

torch modules (``torch`` imported on first use): :class:`BetaVQ`, :class:`SoftMaxPool2d`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import NetworkError, OptionError, UnsupportedLayerError
from .network import Network
from .network.layers import (
    HARD_LIMIT_HINT,
    SMOOTH_ACTIVATIONS,
    SMOOTH_SPELLINGS,
    SmoothActivation,
    parse_activation,
    parse_smooth,
)

__all__ = [
    "HARD_LIMITS",
    "HARD_LIMIT_HINT",
    "NO_LIMIT",
    "SMOOTH_ACTIVATIONS",
    "SMOOTH_SPELLINGS",
    "Deviation",
    "SmoothActivation",
    "SoftCodes",
    "beta_vq",
    "code_entropy",
    "deviation",
    "expected_code",
    "limit_of",
    "memberships",
    "region_soft_codes",
    "sampled_deviation",
    "soft_codes",
    "soft_forward",
]
# BetaVQ and SoftMaxPool2d are torch modules, built on first access (module __getattr__), so
# that importing this module never imports torch; they are left out of __all__ for that reason.

#: Smooth activation -> its MASO limit, with the same weights: ``HARD_LIMITS["gelu"] ==
#: "relu"``. Keys are the kinds of :class:`SmoothActivation` (and ``"silu"``, swish with s = 1);
#: ``docs/soft_vq.md`` lists the ``.npz`` spellings, torch modules and ONNX operators of each.

def _special():
    """scipy.special, imported on first use (a fifth of a second that every CLI call and
    worker process would pay otherwise)."""
    import scipy.special

    return scipy.special

HARD_LIMITS = {"silu": "relu",
               **{kind: limit for kind, (_, limit, _) in SMOOTH_ACTIVATIONS.items()}}

#: Smooth functions that have no MASO limit, refused with or without ``hard_limit``.
NO_LIMIT = {
    "sigmoid": "a step function (0 / 1), not continuous",
    "tanh": "a sign function (-1 / 1), not continuous",
    "softmax": "a one-hot argmax, not continuous",
    "hardsigmoid": "a step function (0 / 1), not continuous",
    "erf": "a sign function (-1 / 1), not continuous",
}


def limit_of(activation: str) -> str:
    """The MASO limit of a smooth activation string: ``limit_of("silu") == "relu"``,
    ``limit_of("soft_abs") == "abs"``, ``limit_of("beta_vq:0.5:0.1") == "leaky_relu:0.1"``.

    A piecewise-affine activation is its own limit (``limit_of("relu") == "relu"``).

    Raises
    ------
    UnsupportedLayerError
        For sigmoid, tanh, softmax and other activations without a MASO limit.
    NetworkError
        For a string that is not an activation.
    """
    parsed = parse_smooth(activation, where="activation")
    if parsed is not None:
        return parsed[1]
    if isinstance(activation, str):
        name = activation.strip().lower().partition(":")[0].replace("-", "_")
        if name in NO_LIMIT:
            raise UnsupportedLayerError(f"{name} has no MASO limit: its sharp limit is "
                                        f"{NO_LIMIT[name]}")
    kind, param = parse_activation(activation, where="activation")
    if kind == "leaky_relu":
        return f"leaky_relu:{param!r}"
    return kind if param is None else f"{kind}:{param}"


# ---------------------------------------------------------------------- argument checks
def _temperature(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise OptionError(f"temperature must be a number >= 0, or None for each layer's own "
                          f"activation; got {value!r}")
    t = float(value)
    if math.isnan(t) or t < 0:
        raise OptionError(f"temperature must be a number >= 0 (0: the hard code), got {t}")
    return t


def _network(network) -> Network:
    if not isinstance(network, Network):
        raise OptionError(f"expected a Network, got {type(network).__name__}; use "
                          "powercells.load or Network.from_weights")
    return network


def _layer(network: Network, layer) -> int | None:
    if layer is None:
        return None
    if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (int, np.integer)):
        raise OptionError(f"layer must be an integer 1..{network.depth}, got {layer!r}")
    if not 1 <= layer <= network.depth:
        raise OptionError(f"layer {layer} does not exist; layers are 1..{network.depth}")
    return int(layer)


# ---------------------------------------------------------------------- one layer
def _pieces(layer, Z):
    """Piece values (n, K, R) at inputs Z and the mask of real (not padded) pieces (K, R)."""
    vals = np.einsum("krd,nd->nkr", layer.A, Z) + layer.B
    mask = np.arange(layer.max_pieces)[None, :] < layer.n_pieces[:, None]
    return vals, mask


def _softmax_pieces(layer, Z, *, temperature=None, scale=None):
    """Memberships ``softmax(vals / temperature)`` (or ``softmax(scale * vals)``) over each
    unit's real pieces, and the expected piece values."""
    vals, mask = _pieces(layer, Z)
    top = np.max(np.where(mask, vals, -np.inf), axis=2, keepdims=True)
    gap = vals - top                                    # <= 0 on the real pieces
    # divide by T (not multiply by 1/T): a tiny T sends gaps to -inf, never 0 * inf
    logits = gap / temperature if scale is None else gap * scale
    logits = np.where(mask, logits, -np.inf)
    w = np.exp(logits)
    w /= w.sum(axis=2, keepdims=True)
    out = np.einsum("nkr,nkr->nk", w, np.where(mask, vals, 0.0))
    return w, out


def _hard(layer, Z):
    code, out = layer.codes_and_outputs(Z)
    P = np.zeros(code.shape + (layer.max_pieces,))
    np.put_along_axis(P, code[:, :, None].astype(np.intp), 1.0, axis=2)
    return P, out


_SWITCH_LIMIT = {"swish": "relu", "gelu": "relu", "gelu_tanh": "relu", "softplus": "relu",
                 "hardswish": "relu", "mish": "relu", "soft_abs": "abs"}


def _gate(rec: SmoothActivation, h: np.ndarray, eta: float):
    """A smooth unit at pre-activations h: (membership of the active piece, output)."""
    s = rec.param
    with np.errstate(over="ignore"):
        if rec.kind in ("swish", "softplus"):
            p = _special().expit(s * h)
        elif rec.kind == "gelu":
            p = _special().ndtr(s * h)
        elif rec.kind == "gelu_tanh":
            p = 0.5 * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * h ** 3)))
        elif rec.kind == "hardswish":
            p = np.clip(s * h / 6.0 + 0.5, 0.0, 1.0)
        elif rec.kind == "mish":
            p = np.tanh(np.logaddexp(0.0, s * h))
        elif rec.kind == "soft_abs":
            p = _special().expit(2.0 * s * h)                      # expected slope 2p - 1 = tanh(s h)
        else:                                           # beta_vq
            p = _special().expit(s / (1.0 - s) * (1.0 - eta) * h)
        if rec.kind == "softplus":
            out = np.logaddexp(0.0, s * h) / s
        elif rec.kind == "soft_abs":
            out = h * np.tanh(s * h)
        elif rec.kind == "beta_vq":
            out = h * (eta + (1.0 - eta) * p)
        else:
            out = h * p
    return p, out


def _check_record(layer):
    rec = layer.smooth
    if rec.kind == "soft_maxpool":
        ok = layer.kind == "maso"
    elif rec.kind == "beta_vq":
        ok = layer.is_switch or layer.kind == "relu_maxpool"
    elif layer.kind == "relu_maxpool":                  # a ReLU limit merged with a max-pool
        ok = _SWITCH_LIMIT[rec.kind] == "relu"
    else:
        ok = layer.kind == _SWITCH_LIMIT[rec.kind]
    if not ok:
        raise NetworkError(f"{layer.name}: a {layer.kind} layer cannot be the hard limit of "
                           f"{rec.name} ({rec.limit})")


def _own(layer, Z):
    """Memberships and outputs of a layer with a smooth record, under its own activation."""
    _check_record(layer)
    rec = layer.smooth
    if rec.kind == "soft_maxpool":
        return _softmax_pieces(layer, Z, scale=rec.param)
    if layer.is_switch:
        h = Z @ layer.switch_W.T + layer.switch_b
        p, out = _gate(rec, h, float(layer.switch_factors[0]))
        return np.stack([1.0 - p, p], axis=2), out
    # a smooth unit followed by a (hard) max-pool, merged into one relu_maxpool layer: each
    # window keeps its largest smooth output; its unit's gate is the membership of that piece
    vals, mask = _pieces(layer, Z)
    p, act = _gate(rec, vals[:, :, 1:], 0.0)
    j = np.argmax(np.where(mask[None, :, 1:], act, -np.inf), axis=2)[:, :, None]
    pj = np.take_along_axis(p, j, axis=2)[:, :, 0]
    P = np.zeros(vals.shape)
    P[:, :, 0] = 1.0 - pj
    np.put_along_axis(P, j + 1, pj[:, :, None], axis=2)
    return P, np.take_along_axis(act, j, axis=2)[:, :, 0]


def _layer_soft(layer, Z, temperature):
    """(memberships (n, K, R), outputs (n, K)) of one layer at inputs Z."""
    if temperature is None:
        return _hard(layer, Z) if layer.smooth is None else _own(layer, Z)
    if temperature == 0 or layer.max_pieces == 1:
        return _hard(layer, Z)
    return _softmax_pieces(layer, Z, temperature=temperature)


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class SoftCodes:
    """Soft VQ of a network at ``n`` points, layer by layer.

    Attributes
    ----------
    memberships : tuple of ndarray, one of shape (n, K_l, R_l) per layer
        ``p(r | x)`` of every unit's pieces (rows sum to 1; padded pieces of ragged units 0).
    outputs : tuple of ndarray, one of shape (n, K_l) per layer
        The soft network's layer outputs ``z^(l)`` (each layer fed the previous soft output).
    hard_output : ndarray, shape (n, K_L)
        The MASO network's output at the same points.
    temperature : float or None
        As given (None: each layer's own activation).
    """

    memberships: tuple
    outputs: tuple
    hard_output: np.ndarray
    temperature: float | None

    @property
    def output(self) -> np.ndarray:
        """The soft network's output, shape (n, K_L)."""
        return self.outputs[-1]

    @property
    def expected_code(self) -> tuple:
        """Per layer, shape (n, K_l): ``E[q_k] = sum_r r p(r|x)`` (pieces numbered from 0). For
        ReLU-type units it is the membership of the active piece: ``sigmoid(h / T)`` for ReLU at
        temperature T, the sigmoid gate of a SiLU unit."""
        return tuple(P @ np.arange(P.shape[2], dtype=np.float64) for P in self.memberships)

    @property
    def entropy(self) -> tuple:
        """Per layer, shape (n, K_l): each unit's code entropy ``-sum_r p log p`` (nats); 0
        for a hard code, ``log R`` for uniform memberships."""
        return tuple(_special().entr(P).sum(axis=2) for P in self.memberships)

    @property
    def layer_entropy(self) -> np.ndarray:
        """Shape (n, L): the entropy of each layer's code (its units' memberships factorise,
        so it is the sum over the units)."""
        return np.stack([H.sum(axis=1) for H in self.entropy], axis=1)

    @property
    def total_entropy(self) -> np.ndarray:
        """Shape (n,): the code entropy summed over every unit of every layer."""
        return self.layer_entropy.sum(axis=1)

    @property
    def deviation(self) -> np.ndarray:
        """Shape (n,): ``||f_soft(x) - f_hard(x)||_2``."""
        return np.linalg.norm(self.output - self.hard_output, axis=1)


def soft_codes(network, X, *, temperature=None) -> SoftCodes:
    """Memberships, expected codes, code entropies and soft outputs at points (SPEC §7).

    Parameters
    ----------
    network : Network
    X : array_like, shape (n, d) or (d,)
        Points of the network's input space.
    temperature : float or None
        None (default): every layer as given, those with a smooth record
        (:attr:`Network.hard_limit`) through their own smooth activation (SiLU, GELU, ...),
        the others hard. A number ``T >= 0``: the soft VQ of the MASO in every layer,
        ``p(r|z) = softmax_r(ell_r(z) / T)``; ``T = 0`` is the hard code, ``inf`` uniform.

    Returns
    -------
    SoftCodes

    Raises
    ------
    OptionError
        For a negative or non-numeric temperature, or something that is not a Network.
    PointError
        For points of the wrong shape or with non-finite entries.

    Examples
    --------
    >>> import numpy as np, powercells as pc
    >>> net = pc.Network.from_weights([(np.eye(2), np.zeros(2))], ["relu"])
    >>> sc = pc.soft_vq.soft_codes(net, [[1.0, -2.0]], temperature=1.0)
    >>> bool(np.allclose(sc.expected_code[0], 1 / (1 + np.exp(-np.array([1.0, -2.0])))))
    True
    """
    network = _network(network)
    temperature = _temperature(temperature)
    Z = network._points(X)
    X0 = Z
    P_all, outs = [], []
    with np.errstate(under="ignore"):
        for layer in network.layers:
            P, Z = _layer_soft(layer, Z, temperature)
            P_all.append(P)
            outs.append(Z)
    return SoftCodes(tuple(P_all), tuple(outs), network.forward(X0), temperature)


def memberships(network, X, *, temperature=None, layer=None):
    """``p(r | x)`` of every unit's pieces: one array (n, K_l, R_l) per layer, or that of
    ``layer`` (1-based). See :func:`soft_codes` for ``temperature``.

    Raises
    ------
    OptionError, PointError
    """
    network = _network(network)
    layer = _layer(network, layer)
    P = soft_codes(network, X, temperature=temperature).memberships
    return list(P) if layer is None else P[layer - 1]


def expected_code(network, X, *, temperature=None, layer=None):
    """The expected code ``E[q_k] = sum_r r p(r|x)`` of every unit: one array (n, K_l) per
    layer, or that of ``layer``. For a ReLU unit at temperature T it is ``sigmoid(h / T)``
    (SPEC §7: the sigmoid is the expected code). See :func:`soft_codes`.

    Raises
    ------
    OptionError, PointError
    """
    network = _network(network)
    layer = _layer(network, layer)
    E = soft_codes(network, X, temperature=temperature).expected_code
    return list(E) if layer is None else E[layer - 1]


def code_entropy(network, X, *, temperature=None, layer=None, per_unit: bool = False):
    """The code entropy (nats) at points.

    Parameters
    ----------
    network : Network
    X : array_like, shape (n, d) or (d,)
    temperature : float or None
        See :func:`soft_codes`.
    layer : int, optional
        One layer (1-based); default all.
    per_unit : bool
        Each unit's entropy instead of the sum over units.

    Returns
    -------
    ndarray
        ``per_unit=False``: shape (n,), summed over the units of ``layer`` (or of every layer).
        ``per_unit=True``: shape (n, K_l) for ``layer``, or a list of them for every layer.

    Raises
    ------
    OptionError, PointError
    """
    network = _network(network)
    layer = _layer(network, layer)
    sc = soft_codes(network, X, temperature=temperature)
    if per_unit:
        return list(sc.entropy) if layer is None else sc.entropy[layer - 1]
    return sc.total_entropy if layer is None else sc.layer_entropy[:, layer - 1]


def soft_forward(network, X, *, temperature=None) -> np.ndarray:
    """The soft network's output at points, shape (n, K_L).

    ``temperature=None``: the smooth network the hard limit was read from (each recorded layer
    through its own activation; for a network without records, the network itself). A number:
    the soft VQ of the MASO at that temperature (T = 1 turns a ReLU network into its SiLU
    network, an abs network into ``h tanh(h)``; T = 0 is the MASO).

    Raises
    ------
    OptionError, PointError
    """
    return soft_codes(network, X, temperature=temperature).output


def deviation(network, X, *, temperature=None, ord=2) -> np.ndarray:
    """``||f_soft(x) - f_hard(x)||`` at each point, shape (n,): the smooth (or tempered)
    network against its MASO limit. ``ord`` as in :func:`numpy.linalg.norm` (2, 1, inf).

    Raises
    ------
    OptionError, PointError
    """
    if ord not in (1, 2, np.inf):
        raise OptionError(f"ord must be 1, 2 or inf, got {ord!r}")
    sc = soft_codes(network, X, temperature=temperature)
    return np.linalg.norm(sc.output - sc.hard_output, ord=ord, axis=1)


@dataclass(frozen=True)
class Deviation:
    """``||f_soft - f_hard||_2`` on samples of a domain.

    Attributes
    ----------
    points : ndarray, shape (n, d)
        The samples, in the network's input coordinates.
    values : ndarray, shape (n,)
    max, mean, rms : float
    """

    points: np.ndarray
    values: np.ndarray

    @property
    def max(self) -> float:
        return float(self.values.max())

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    @property
    def rms(self) -> float:
        return float(np.sqrt(np.mean(self.values ** 2)))

    def __repr__(self) -> str:
        return (f"Deviation(n_samples={len(self.values)}, max={self.max:.3g}, "
                f"mean={self.mean:.3g}, rms={self.rms:.3g})")


def sampled_deviation(network, domain, *, n_samples: int = 1000, seed=None,
                      temperature=None) -> Deviation:
    """``||f_soft(x) - f_hard(x)||_2`` at ``n_samples`` uniform points of ``domain``.

    Parameters
    ----------
    network : Network
    domain : Domain
        A Box, Polytope or Slice of the network's input space.
    n_samples : int
    seed : int, numpy Generator or None
    temperature : float or None
        See :func:`soft_codes`.

    Raises
    ------
    OptionError
        For a bad ``n_samples`` or temperature.
    DomainError
        For a domain of the wrong dimension.
    """
    from .approx._common import check_domain, sample_domain

    network = _network(network)
    if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, (int, np.integer)) \
            or n_samples < 1:
        raise OptionError(f"n_samples must be a positive integer, got {n_samples!r}")
    temperature = _temperature(temperature)
    domain = check_domain(network, domain)
    X = domain.to_input(sample_domain(domain, int(n_samples), seed=seed))
    return Deviation(X, deviation(network, X, temperature=temperature))


def region_soft_codes(tree, layer: int | None = None, *, temperature=None) -> SoftCodes:
    """:func:`soft_codes` at the interior point (Chebyshev centre) of every region at
    ``layer`` (default: the leaves), in the order of ``tree.levels[layer]``; computed on
    ``tree.network``, the network the engine saw (a slice folded in), so a point is the
    region's engine coordinates.

    Raises
    ------
    OptionError
        For a depth outside ``0..tree.depth`` or a bad temperature.
    """
    from .enumerate import SubdivisionTree

    if not isinstance(tree, SubdivisionTree):
        raise OptionError(f"expected a SubdivisionTree, got {type(tree).__name__}")
    if layer is None:
        layer = tree.depth
    if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (int, np.integer)) \
            or not 0 <= layer <= tree.depth:
        raise OptionError(f"layer must be an integer 0..{tree.depth}, got {layer!r}")
    return soft_codes(tree.network, tree.levels[int(layer)].interior_point,
                      temperature=temperature)


# ---------------------------------------------------------------------- the beta-VQ family
def _beta(beta) -> float:
    if isinstance(beta, (bool, np.bool_)) or not isinstance(
            beta, (int, float, np.integer, np.floating)):
        raise OptionError(f"beta must be a number in [0, 1], got {beta!r}")
    beta = float(beta)
    if not 0 <= beta <= 1:
        raise OptionError(f"beta must lie in [0, 1] (0: linear, 1/2: SiLU, 1: ReLU), got {beta}")
    return beta


def _slope(slope) -> float:
    if isinstance(slope, (bool, np.bool_)) or not isinstance(
            slope, (int, float, np.integer, np.floating)):
        raise OptionError(f"slope must be a number, got {slope!r}")
    slope = float(slope)
    if not (slope == -1 or 0 <= slope < 1):
        raise OptionError(f"slope must be -1 (abs) or lie in [0, 1) (leaky ReLU; 0: ReLU), got "
                          f"{slope}")
    return slope


def beta_vq(h, beta, *, slope=0.0) -> np.ndarray:
    """The beta-VQ activation (SPEC §7) of pre-activations ``h``, elementwise.

    The unit has pieces ``(slope h, h)`` weighted by ``t = softmax(c (slope h, h))`` with
    ``c = beta / (1 - beta)``: the solution of ``max_t beta <t, ell> + (1 - beta) H(t)``.
    So ``h (slope + (1 - slope) sigmoid(c (1 - slope) h))``, the authors'
    ``leaky_relu(alpha=slope, beta)``; ``beta = 0``: ``h (1 + slope) / 2`` (linear),
    ``beta = 1/2``: SiLU (``slope = 0``) or ``h tanh(h)`` (``slope = -1``), ``beta = 1``: the
    hard unit (ReLU, leaky ReLU, abs). The temperature of SPEC §7 is ``T = (1 - beta) / beta``.

    Raises
    ------
    OptionError
        For beta outside [0, 1] or a slope that is not -1 or in [0, 1).
    """
    beta, slope = _beta(beta), _slope(slope)
    h = np.asarray(h, dtype=np.float64)
    if beta == 1:
        return np.where(h > 0, h, slope * h)
    c = beta / (1.0 - beta)
    with np.errstate(over="ignore", under="ignore"):
        return h * (slope + (1.0 - slope) * _special().expit(c * (1.0 - slope) * h))


# ---------------------------------------------------------------------- torch modules
_TORCH_CLASSES: dict = {}


def _torch_classes() -> dict:
    if _TORCH_CLASSES:
        return _TORCH_CLASSES
    try:
        import torch
        from torch import nn
    except ImportError as exc:  # pragma: no cover - exercised without torch only
        raise ImportError("powercells.soft_vq.BetaVQ and SoftMaxPool2d need torch") from exc

    class BetaVQ(nn.Module):
        """The beta-VQ activation as a torch module: ``h (slope + (1 - slope)
        sigmoid(c (1 - slope) h))``, ``c = beta / (1 - beta)`` (see :func:`beta_vq`).

        ``beta = 0``: linear ``h (1 + slope) / 2``; ``beta = 1/2``: SiLU (``slope = 0``);
        ``beta = 1``: ReLU / leaky ReLU / abs exactly. ``beta`` can be changed between steps
        (``module.beta = 0.9``) to train along the family. ``from_torch(...,
        hard_limit=True)`` reads ``beta < 1`` as the hard unit (the limit ``beta -> 1``);
        ``beta = 1`` needs no option.

        Raises
        ------
        OptionError
            For beta outside [0, 1] or a slope that is not -1 or in [0, 1).
        """

        def __init__(self, beta: float = 0.5, *, slope: float = 0.0):
            super().__init__()
            self._beta = _beta(beta)
            self.slope = _slope(slope)

        @property
        def beta(self) -> float:
            return self._beta

        @beta.setter
        def beta(self, value):
            self._beta = _beta(value)

        @property
        def smooth(self) -> SmoothActivation | None:
            """The record of this unit in a hard-limit network (None at beta = 1)."""
            return None if self._beta == 1 else SmoothActivation("beta_vq", self._beta)

        def forward(self, x):
            slope = self.slope
            if self._beta == 1:
                return torch.where(x > 0, x, slope * x)
            c = self._beta / (1.0 - self._beta)
            return x * (slope + (1.0 - slope) * torch.sigmoid((c * (1.0 - slope)) * x))

        def extra_repr(self) -> str:
            return f"beta={self._beta:g}" + (f", slope={self.slope:g}" if self.slope else "")

    class SoftMaxPool2d(nn.Module):
        """Softmax-weighted pooling: each window outputs ``sum_i softmax(v / T)_i v_i``; its
        limit ``T -> 0`` is max-pooling (read so by ``from_torch(..., hard_limit=True)``).
        No padding; ``temperature = 0`` is ``nn.MaxPool2d`` itself.

        Raises
        ------
        OptionError
            For a negative temperature or a kernel or stride below 1.
        """

        def __init__(self, kernel_size, stride=None, *, temperature: float = 1.0):
            super().__init__()
            self.kernel_size = _pair(kernel_size, "kernel_size")
            self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
            t = _temperature(temperature)
            if t is None or math.isinf(t):
                raise OptionError(f"temperature must be a finite number >= 0, got "
                                  f"{temperature!r}")
            self.temperature = t

        @property
        def smooth(self) -> SmoothActivation | None:
            """The record of this pool in a hard-limit network (None at temperature 0)."""
            if self.temperature == 0:
                return None
            return SmoothActivation("soft_maxpool", 1.0 / self.temperature)

        def forward(self, x):
            if self.temperature == 0:
                return nn.functional.max_pool2d(x, self.kernel_size, self.stride)
            n, c, h, w = x.shape
            cols = nn.functional.unfold(x, self.kernel_size, stride=self.stride)
            cols = cols.reshape(n, c, self.kernel_size[0] * self.kernel_size[1], -1)
            weights = torch.softmax(cols / self.temperature, dim=2)
            out = (weights * cols).sum(dim=2)
            ho = (h - self.kernel_size[0]) // self.stride[0] + 1
            wo = (w - self.kernel_size[1]) // self.stride[1] + 1
            return out.reshape(n, c, ho, wo)

        def extra_repr(self) -> str:
            return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                    f"temperature={self.temperature:g}")

    for cls in (BetaVQ, SoftMaxPool2d):
        cls.__module__ = __name__           # pickled by name: powercells.soft_vq.<name>
        cls.__qualname__ = cls.__name__
        _TORCH_CLASSES[cls.__name__] = cls
    return _TORCH_CLASSES


def _pair(value, what: str) -> tuple[int, int]:
    values = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                               or v < 1 for v in values):
        raise OptionError(f"{what} must be a positive integer or two of them, got {value!r}")
    return int(values[0]), int(values[1])


def torch_module_class(name: str):
    """The class ``name`` (``"BetaVQ"``, ``"SoftMaxPool2d"``) if it has been built, else None
    (an object can only be an instance of a class that exists; torch is not imported)."""
    return _TORCH_CLASSES.get(name)


def __getattr__(name):
    if name in ("BetaVQ", "SoftMaxPool2d"):
        return _torch_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
