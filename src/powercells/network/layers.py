"""One layer of a piecewise-affine network, stored as a max-affine spline operator (SPEC §1.2).

Unit ``k`` of a layer outputs ``max_r (A[k, r] @ z + B[k, r])``. Its code is the index of the
winning piece, the smallest index on ties (SPEC §1.3). Every supported activation is written in
this form (SPEC §1.4); the constructors below build the pieces and keep the original affine part
for the kinds that have one.

For the ReLU-type kinds (relu, leaky_relu, abs) a unit has two pieces and a single *switch*
hyperplane ``switch_W[k] @ z + switch_b[k] = 0``: the unit is active (code 1) iff the
pre-activation ``W[k] @ z + b[k]`` is strictly positive. Engines use the switch rows directly, so
the hyperplane they split on is ``W A_w`` and ``W B_w + b`` exactly as in SPEC §3.4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import NetworkError, UnsupportedLayerError

__all__ = ["ACTIVATION_KINDS", "HARD_LIMIT_HINT", "SMOOTH_ACTIVATIONS", "SMOOTH_SPELLINGS",
           "Layer", "SmoothActivation", "parse_activation", "parse_smooth"]

#: Activation kinds a dense layer can carry, with the spelling used in ``.npz`` files.
ACTIVATION_KINDS = ("relu", "leaky_relu:<slope>", "abs", "identity", "maxout:<R>")

#: Smooth activations read with ``hard_limit=True`` as their MASO limit (SPEC §7), with the
#: spelling used in ``.npz`` files; ``<s>`` is the gate's scale (inverse temperature), 1 if left
#: out.
SMOOTH_SPELLINGS = ("silu", "swish:<s>", "gelu", "gelu:<s>", "gelu_tanh", "softplus:<s>",
                    "soft_abs:<s>", "hardswish:<s>", "mish:<s>", "beta_vq:<beta>[:<slope>]")

#: What the error for a smooth activation read without the option tells the user to do.
HARD_LIMIT_HINT = "pass hard_limit=True (CLI: --hard-limit)"

#: Smooth activations with a MASO limit: kind -> (name, MASO limit, formula of the soft unit at
#: pre-activation ``h``; ``s`` is :attr:`SmoothActivation.param`).
SMOOTH_ACTIVATIONS = {
    "swish": ("SiLU/swish", "relu", "h * sigmoid(s h)"),
    "gelu": ("GELU", "relu", "h * Phi(s h), Phi the standard normal CDF"),
    "gelu_tanh": ("GELU (tanh approximation)", "relu",
                  "h/2 * (1 + tanh(sqrt(2/pi) (h + 0.044715 h^3)))"),
    "softplus": ("softplus", "relu", "log(1 + exp(s h)) / s"),
    "soft_abs": ("soft abs", "abs", "h * tanh(s h)"),
    "hardswish": ("HardSwish", "relu", "h * clip(s h / 6 + 1/2, 0, 1)"),
    "mish": ("Mish", "relu", "h * tanh(softplus(s h))"),
    "beta_vq": ("beta-VQ", "relu, leaky_relu or abs (the layer's slope)",
                "pieces (eta h, h) weighted by softmax(c (eta h, h)), c = beta / (1 - beta)"),
    "soft_maxpool": ("soft max-pool", "max-pool", "sum_i softmax(s v)_i v_i over the window"),
}

_LIMIT_NAMES = {"relu": "ReLU", "abs": "abs", "leaky_relu": "leaky-ReLU", "max-pool": "max-pool"}


@dataclass(frozen=True)
class SmoothActivation:
    """The smooth activation a layer's MASO is the hard limit of (SPEC §7).

    A network read with ``hard_limit=True`` replaces each smooth activation by its limit as the
    gate sharpens (temperature -> 0) and keeps this record on the layer (:attr:`Layer.smooth`),
    so the smooth network can still be evaluated (:mod:`powercells.soft_vq`) and saved.

    Parameters
    ----------
    kind : str
        A key of :data:`SMOOTH_ACTIVATIONS`: ``"swish"`` (SiLU when ``param == 1``),
        ``"gelu"``, ``"gelu_tanh"``, ``"softplus"``, ``"soft_abs"``, ``"hardswish"``,
        ``"mish"``, ``"beta_vq"``, ``"soft_maxpool"``.
    param : float
        The gate's scale ``s > 0`` (its inverse temperature; 1 for the standard activation),
        or for ``"beta_vq"`` the family's ``beta`` in ``[0, 1)``. ``"gelu_tanh"`` takes 1 only.

    Raises
    ------
    NetworkError
        For an unknown kind or a parameter out of range.
    """

    kind: str
    param: float = 1.0

    def __post_init__(self):
        if self.kind not in SMOOTH_ACTIVATIONS:
            raise NetworkError(f"unknown smooth activation {self.kind!r}; known: "
                               f"{', '.join(SMOOTH_ACTIVATIONS)}")
        try:
            param = float(self.param)
        except (TypeError, ValueError):
            raise NetworkError(f"{self.kind}: parameter {self.param!r} is not a number") from None
        if isinstance(self.param, bool) or not math.isfinite(param):
            raise NetworkError(f"{self.kind}: parameter must be a finite number, got "
                               f"{self.param!r}")
        if self.kind == "beta_vq":
            if not 0 <= param < 1:
                raise NetworkError(f"beta_vq: beta must lie in [0, 1) (beta = 1 is the hard "
                                   f"unit itself), got {param}")
        elif param <= 0:
            raise NetworkError(f"{self.kind}: the scale must be positive, got {param} (a "
                               "non-positive scale has no MASO limit)")
        if self.kind == "gelu_tanh" and param != 1:
            raise NetworkError(f"gelu_tanh takes no scale, got {param}")
        object.__setattr__(self, "param", param)

    @property
    def name(self) -> str:
        """How messages and summaries name it: ``"SiLU"``, ``"swish (s=2)"``, ``"GELU"``."""
        if self.kind == "swish" and self.param == 1:
            return "SiLU"
        if self.kind == "beta_vq":
            return f"beta-VQ (beta={self.param:.10g})"
        base = SMOOTH_ACTIVATIONS[self.kind][0]
        if self.kind == "swish":
            base = "swish"
        return base if self.param == 1 else f"{base} (s={self.param:.10g})"

    @property
    def limit(self) -> str:
        """The MASO limit's kind: ``"relu"``, ``"abs"``, ``"max-pool"``, or for beta-VQ
        ``"relu-type"`` (relu, leaky_relu or abs: the layer's slope says which)."""
        return "relu-type" if self.kind == "beta_vq" else SMOOTH_ACTIVATIONS[self.kind][1]

    def spelling(self, slope: float | None = None) -> str:
        """The ``.npz`` activation string (``slope``: the beta-VQ layer's low slope)."""
        if self.kind == "swish" and self.param == 1:
            return "silu"
        if self.kind == "gelu_tanh" or (self.param == 1 and self.kind != "beta_vq"):
            return self.kind
        text = f"{self.kind}:{self.param!r}"
        if self.kind == "beta_vq" and slope:
            text += f":{float(slope)!r}"
        return text

    def __str__(self) -> str:
        return self.name

# Activations people ask for that are not MASOs and have no MASO limit; named so that the error
# can say why not.
_NOT_MASO = {
    "sigmoid": "sigmoid is smooth, not piecewise-affine, and has no MASO limit (its sharp "
               "limit is a step function); the gated form x * sigmoid(x) ('silu') has one",
    "tanh": "tanh is smooth, not piecewise-affine, and has no MASO limit (its sharp limit is "
            "a step function); the gated form x * tanh(x) ('soft_abs') has one",
    "softmax": "softmax is smooth, not piecewise-affine, and has no MASO limit (its sharp "
               "limit is a one-hot selection, not continuous)",
    "elu": "ELU is smooth for negative inputs, not piecewise-affine",
    "min": "a minimum is concave, not a max-affine spline",
}

# spelling -> smooth kind (aliases included)
_SMOOTH_NAMES = {"silu": "swish", "swish": "swish", "gelu": "gelu", "gelu_tanh": "gelu_tanh",
                 "softplus": "softplus", "soft_abs": "soft_abs", "softabs": "soft_abs",
                 "hardswish": "hardswish", "hard_swish": "hardswish", "mish": "mish",
                 "beta_vq": "beta_vq", "betavq": "beta_vq"}


def _limit_name(kind: str, slope: float | None = None) -> str:
    if kind == "leaky_relu":
        return f"leaky-ReLU (slope {slope:g})"
    return _LIMIT_NAMES.get(kind, kind)


def parse_smooth(spec: str, *, where: str = "layer"):
    """Parse a smooth activation string into its record and the spelling of its MASO limit.

    Parameters
    ----------
    spec : str
        One of :data:`SMOOTH_SPELLINGS`: ``"silu"`` (also ``"swish"``), ``"swish:<s>"``,
        ``"gelu"``, ``"gelu:<s>"``, ``"gelu_tanh"``, ``"softplus:<s>"``, ``"soft_abs:<s>"``,
        ``"hardswish:<s>"``, ``"mish:<s>"`` (``<s>`` the gate's scale, default 1) or
        ``"beta_vq:<beta>[:<slope>]"`` (beta in [0, 1]; slope 0, a leaky slope in (0, 1) or -1
        for abs; beta = 1 is the hard unit itself).
    where : str
        Names the layer in error messages.

    Returns
    -------
    smooth : SmoothActivation or None
        None for a beta-VQ unit with ``beta = 1`` (piecewise-affine as it is).
    limit : str
        The MASO activation string, e.g. ``"relu"``.
    Or None when ``spec`` is not a smooth activation with a MASO limit.

    Raises
    ------
    NetworkError
        For a malformed parameter.
    """
    if not isinstance(spec, str):
        return None
    text = spec.strip().lower()
    name, _, arg = text.partition(":")
    name = name.replace("-", "_")
    if name not in _SMOOTH_NAMES:
        return None
    kind = _SMOOTH_NAMES[name]
    args = arg.split(":") if arg else []
    if len(args) > (2 if kind == "beta_vq" else 1):
        raise NetworkError(f"{where}: activation {spec!r} has too many parameters")
    if kind == "beta_vq" and not args:
        raise NetworkError(f"{where}: beta_vq needs its beta, e.g. 'beta_vq:0.5'")
    numbers = []
    for a in args:
        try:
            numbers.append(float(a))
        except ValueError:
            raise NetworkError(f"{where}: parameter {a!r} of {spec!r} is not a number") from None
    try:
        if kind != "beta_vq":
            return SmoothActivation(kind, numbers[0] if numbers else 1.0), \
                SMOOTH_ACTIVATIONS[kind][1]
        beta = numbers[0]
        slope = numbers[1] if len(numbers) > 1 else 0.0
        if not (slope == -1 or 0 <= slope < 1):
            raise NetworkError(f"beta_vq slope must be -1 (abs) or lie in [0, 1), got {slope}")
        limit = "relu" if slope == 0 else "abs" if slope == -1 else f"leaky_relu:{slope!r}"
        if beta == 1:
            return None, limit
        return SmoothActivation("beta_vq", beta), limit
    except NetworkError as exc:
        raise NetworkError(f"{where}: {exc}") from None


def _smooth_refusal(smooth: SmoothActivation, limit: str, where: str) -> str:
    """The message for a smooth activation met without ``hard_limit=True``."""
    kind, _, arg = limit.partition(":")
    name = _limit_name(kind, float(arg) if arg else None)
    return (f"{where}: {smooth.name} is smooth, not piecewise-affine; {HARD_LIMIT_HINT} to use "
            f"its {name} limit")


def parse_activation(spec: str, *, where: str = "layer") -> tuple[str, float | int | None]:
    """Parse an activation string into ``(kind, parameter)``.

    Parameters
    ----------
    spec : str
        ``"relu"``, ``"leaky_relu:<slope>"``, ``"abs"``, ``"identity"`` (also ``"linear"``) or
        ``"maxout:<R>"``.
    where : str
        Names the layer in error messages.

    Returns
    -------
    kind : str
    parameter : float or int or None
        The leaky slope, the number of maxout pieces, or None.

    Raises
    ------
    UnsupportedLayerError
        For an activation that is not convex piecewise-affine (sigmoid, leaky slope >= 1, ...);
        for a smooth activation with a MASO limit (:data:`SMOOTH_SPELLINGS`) the message says
        to pass ``hard_limit=True`` (see :meth:`Layer.dense`).
    NetworkError
        For a string that is not an activation at all.
    """
    if not isinstance(spec, str):
        raise NetworkError(f"{where}: activation must be a string, got {spec!r}")
    text = spec.strip().lower()
    name, _, arg = text.partition(":")
    name = name.replace("-", "_")
    if name in ("relu", "abs", "identity", "linear"):
        if arg:
            raise NetworkError(f"{where}: activation {spec!r} takes no parameter")
        return ("identity" if name == "linear" else name), None
    if name in ("leaky_relu", "leakyrelu"):
        try:
            slope = float(arg) if arg else 0.01
        except ValueError:
            raise NetworkError(f"{where}: leaky_relu slope {arg!r} is not a number") from None
        _check_leaky_slope(slope, where)
        return "leaky_relu", slope
    if name == "maxout":
        try:
            pieces = int(arg)
        except ValueError:
            raise NetworkError(
                f"{where}: maxout needs its number of pieces, e.g. 'maxout:3', got {spec!r}"
            ) from None
        if pieces < 1:
            raise NetworkError(f"{where}: maxout needs at least 1 piece, got {pieces}")
        return "maxout", pieces
    smooth = parse_smooth(spec, where=where)
    if smooth is not None:
        if smooth[0] is None:           # beta_vq with beta = 1: the hard unit itself
            return parse_activation(smooth[1], where=where)
        raise UnsupportedLayerError(_smooth_refusal(*smooth, where))
    if name in _NOT_MASO:
        raise UnsupportedLayerError(
            f"{where}: activation {spec!r} is not supported: {_NOT_MASO[name]}; "
            f"supported: {', '.join(ACTIVATION_KINDS)}"
        )
    raise NetworkError(
        f"{where}: unknown activation {spec!r}; supported: {', '.join(ACTIVATION_KINDS)} "
        f"(with hard_limit=True also {', '.join(SMOOTH_SPELLINGS)})"
    )


def _check_leaky_slope(slope: float, where: str) -> None:
    if not np.isfinite(slope):
        raise NetworkError(f"{where}: leaky_relu slope must be finite, got {slope}")
    if slope > 1:
        raise UnsupportedLayerError(
            f"{where}: leaky_relu slope {slope} > 1 makes the activation concave, "
            "so the layer is not a max-affine spline"
        )
    if not 0 <= slope < 1:
        raise UnsupportedLayerError(
            f"{where}: leaky_relu slope must lie in [0, 1), got {slope} "
            "(slope 1 is the identity; use 'abs' for |h|)"
        )


def _real_array(x, where: str, what: str) -> np.ndarray:
    """``x`` as a float64 array; complex, string, date and object arrays that do not hold real
    numbers are refused by name (a cast would drop an imaginary part or raise deep inside)."""
    try:
        a = np.asarray(x)
        if np.iscomplexobj(a):
            raise NetworkError(f"{where}: {what} is complex ({a.dtype}); networks have real "
                               "weights")
        if a.dtype.kind not in "biufO":
            raise NetworkError(f"{where}: {what} has dtype {a.dtype}, not a real number type")
        return a.astype(np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, NetworkError):
            raise
        raise NetworkError(f"{where}: {what} is not a numeric array ({exc})") from None


def _as_matrix(W, where: str, what: str = "W") -> np.ndarray:
    W = _real_array(W, where, what)
    if W.ndim != 2:
        raise NetworkError(f"{where}: {what} must be 2-D (out, in), got shape {W.shape}")
    if W.shape[0] == 0 or W.shape[1] == 0:
        raise NetworkError(f"{where}: {what} has an empty dimension, shape {W.shape}")
    _check_finite(W, where, what)
    return W


def _as_bias(b, n: int, where: str) -> np.ndarray:
    if b is None:
        return np.zeros(n)
    b = _real_array(b, where, "b")
    if b.ndim == 2 and 1 in b.shape:
        b = b.reshape(-1)
    if b.shape != (n,):
        raise NetworkError(f"{where}: b must have shape ({n},) to match W, got {b.shape}")
    _check_finite(b, where, "b")
    return b


def _check_finite(a: np.ndarray, where: str, what: str) -> None:
    if not np.all(np.isfinite(a)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        index = ", ".join(str(i) for i in bad)
        raise NetworkError(f"{where}: {what}[{index}] = {a[bad]} is not finite")


class Layer:
    """A max-affine spline operator layer (SPEC §1.2).

    Use the constructors :meth:`dense`, :meth:`maxout`, :meth:`relu_maxpool` and :meth:`maso`
    rather than calling ``Layer(...)`` directly.

    Attributes
    ----------
    kind : str
        ``"relu"``, ``"leaky_relu"``, ``"abs"``, ``"identity"``, ``"maxout"``,
        ``"relu_maxpool"`` or ``"maso"``.
    A : ndarray, shape (K, R, D)
        Slopes of the pieces; unit ``k`` has pieces ``A[k, :n_pieces[k]]``. Ragged units are
        padded by repeating their last piece, which never changes the max nor the code.
    B : ndarray, shape (K, R)
        Offsets of the pieces.
    n_pieces : ndarray of int, shape (K,)
    slope : float or None
        The leaky-ReLU slope.
    switch_W, switch_b : ndarray or None
        For ReLU-type kinds, the pre-activation ``W z + b`` whose sign is the code.
    weight, bias : ndarray or None
        The affine part of dense, maxout and pooling layers as given.
    groups : tuple of ndarray or None
        For ``relu_maxpool``, the rows of ``weight`` pooled by each unit.
    name : str
        Used in error messages and summaries.
    smooth : SmoothActivation or None
        For a layer read with ``hard_limit=True``: the smooth activation (SiLU, GELU, ...) whose
        hard limit this layer is (SPEC §7); None for a layer that was piecewise-affine already.
    """

    __slots__ = (
        "A",
        "B",
        "bias",
        "groups",
        "kind",
        "n_pieces",
        "name",
        "slope",
        "smooth",
        "switch_W",
        "switch_b",
        "weight",
    )

    def __init__(self, A, B, *, kind="maso", n_pieces=None, slope=None, switch=None,
                 weight=None, bias=None, groups=None, name="layer", smooth=None):
        A = _real_array(A, name, "A")
        B = _real_array(B, name, "B")
        if A.ndim != 3 or B.shape != A.shape[:2]:
            raise NetworkError(
                f"{name}: pieces must have shapes A (K, R, D) and B (K, R), got {A.shape} and "
                f"{B.shape}"
            )
        _check_finite(A, name, "A")
        _check_finite(B, name, "B")
        self.kind = kind
        self.A = A
        self.B = B
        self.n_pieces = (np.full(A.shape[0], A.shape[1], dtype=np.int64) if n_pieces is None
                         else np.asarray(n_pieces, dtype=np.int64))
        self.slope = slope
        self.switch_W, self.switch_b = (None, None) if switch is None else switch
        self.weight = weight
        self.bias = bias
        self.groups = groups
        self.name = name
        if smooth is not None and not isinstance(smooth, SmoothActivation):
            raise NetworkError(f"{name}: smooth must be a SmoothActivation or None, got "
                               f"{type(smooth).__name__}")
        self.smooth = smooth
        for arr in (self.A, self.B, self.switch_W, self.switch_b, self.weight, self.bias):
            if arr is not None:
                arr.setflags(write=False)

    # ----------------------------------------------------------------- constructors
    @classmethod
    def dense(cls, W, b=None, activation: str = "relu", *, name: str = "layer",
              hard_limit: bool = False) -> Layer:
        """A dense layer ``h = W z + b`` followed by an activation.

        Parameters
        ----------
        W : array_like, shape (K, D)
        b : array_like, shape (K,), optional
        activation : str
            ``"relu"``, ``"leaky_relu:<slope>"``, ``"abs"``, ``"identity"`` or ``"maxout:<R>"``
            (then W has ``R*K`` rows, the pieces of unit k in rows ``k*R .. k*R+R-1``); with
            ``hard_limit=True`` also a smooth activation of :data:`SMOOTH_SPELLINGS`.
        hard_limit : bool
            Read a smooth activation (SiLU, GELU, softplus, ...) as its MASO limit (ReLU, or abs
            for the soft abs), with the same W and b, and record it in :attr:`smooth`. Without
            it a smooth activation raises UnsupportedLayerError.

        Raises
        ------
        NetworkError, UnsupportedLayerError
        """
        smooth = parse_smooth(activation, where=name)
        if smooth is not None and smooth[0] is not None:
            if not hard_limit:
                raise UnsupportedLayerError(_smooth_refusal(*smooth, name))
            layer = cls.dense(W, b, smooth[1], name=name)
            layer.smooth = smooth[0]
            return layer
        kind, param = parse_activation(activation, where=name)
        if kind == "maxout":
            return cls.maxout(W, b, pieces=int(param), name=name)
        W = _as_matrix(W, name)
        b = _as_bias(b, W.shape[0], name)
        K, D = W.shape
        if kind == "identity":
            return cls(W[:, None, :], b[:, None], kind="identity", weight=W, bias=b, name=name)
        if kind == "relu":
            lo_A, lo_B = np.zeros_like(W), np.zeros_like(b)
            switch = (W, b)
        elif kind == "leaky_relu":
            lo_A, lo_B = param * W, param * b
            switch = (W, b)
        else:  # abs
            lo_A, lo_B = -W, -b
            switch = (W, b)
        A = np.stack([lo_A, W], axis=1)
        B = np.stack([lo_B, b], axis=1)
        return cls(A, B, kind=kind, slope=param, switch=switch, weight=W, bias=b, name=name)

    @classmethod
    def maxout(cls, W, b=None, *, pieces: int, name: str = "layer") -> Layer:
        """A maxout layer: unit k is the max of rows ``k*pieces .. k*pieces+pieces-1`` of
        ``W z + b``.

        Raises
        ------
        NetworkError
            If the number of rows of W is not a multiple of ``pieces``.
        """
        W = _as_matrix(W, name)
        b = _as_bias(b, W.shape[0], name)
        if pieces < 1 or W.shape[0] % pieces:
            raise NetworkError(
                f"{name}: maxout with {pieces} pieces needs a multiple of {pieces} rows in W, "
                f"got {W.shape[0]}"
            )
        K = W.shape[0] // pieces
        A = W.reshape(K, pieces, W.shape[1])
        B = b.reshape(K, pieces)
        return cls(A, B, kind="maxout", weight=W, bias=b, name=name)

    @classmethod
    def relu_maxpool(cls, W, b=None, groups=None, *, name: str = "layer") -> Layer:
        """Dense -> ReLU -> max-pool: unit k is ``max(0, max_{i in groups[k]} W[i] z + b[i])``.

        Piece 0 is the zero piece (the whole window inactive); piece ``j >= 1`` is row
        ``groups[k][j-1]`` (SPEC §1.4). Windows may have different sizes and may overlap.

        Raises
        ------
        NetworkError
            If a group is empty or names a row outside W.
        """
        W = _as_matrix(W, name)
        b = _as_bias(b, W.shape[0], name)
        if groups is None or len(groups) == 0:
            raise NetworkError(f"{name}: relu_maxpool needs at least one pooling group")
        groups = tuple(np.asarray(g, dtype=np.int64).reshape(-1) for g in groups)
        for k, g in enumerate(groups):
            if g.size == 0:
                raise NetworkError(f"{name}: pooling group {k} is empty")
            if g.min() < 0 or g.max() >= W.shape[0]:
                raise NetworkError(
                    f"{name}: pooling group {k} names row "
                    f"{int(g.max() if g.max() >= W.shape[0] else g.min())}"
                    f" but W has {W.shape[0]} rows"
                )
        R = 1 + max(g.size for g in groups)
        K, D = len(groups), W.shape[1]
        A = np.zeros((K, R, D))
        B = np.zeros((K, R))
        for k, g in enumerate(groups):
            rows = np.concatenate([g, np.repeat(g[-1:], R - 1 - g.size)])
            A[k, 1:] = W[rows]
            B[k, 1:] = b[rows]
        n_pieces = np.array([1 + g.size for g in groups])
        return cls(A, B, kind="relu_maxpool", n_pieces=n_pieces, weight=W, bias=b,
                   groups=groups, name=name)

    @classmethod
    def maso(cls, A, B, *, name: str = "layer") -> Layer:
        """A general max-affine spline operator from its pieces ``A (K, R, D)``, ``B (K, R)``."""
        return cls(A, B, kind="maso", name=name)

    # ----------------------------------------------------------------- properties
    @property
    def in_dim(self) -> int:
        """D, the dimension of the layer's input."""
        return self.A.shape[2]

    @property
    def out_dim(self) -> int:
        """K, the number of units."""
        return self.A.shape[0]

    @property
    def max_pieces(self) -> int:
        """R, the largest number of pieces of a unit."""
        return self.A.shape[1]

    @property
    def is_switch(self) -> bool:
        """True for ReLU-type layers, whose units switch on a single hyperplane."""
        return self.switch_W is not None

    def with_input_map(self, M: np.ndarray, c: np.ndarray) -> Layer:
        """The layer applied to ``M t + c``: pieces ``A M`` and ``A c + B`` (used to fold a slice
        or an affine pre-processing step into the first layer)."""
        A = self.A @ M
        B = self.A @ c + self.B
        switch = None
        if self.is_switch:
            switch = (self.switch_W @ M, self.switch_W @ c + self.switch_b)
        weight = bias = None
        if self.weight is not None:
            weight, bias = self.weight @ M, self.weight @ c + self.bias
        return Layer(A, B, kind=self.kind, n_pieces=self.n_pieces, slope=self.slope,
                     switch=switch, weight=weight, bias=bias, groups=self.groups,
                     name=self.name, smooth=self.smooth)

    def rescaled(self, in_exp: np.ndarray) -> tuple[Layer, np.ndarray]:
        """The layer for inputs scaled by ``2**-in_exp``, every unit divided by a power of two.

        Unit ``k`` of the result computes ``2**-e[k]`` times unit ``k`` of this layer at the
        unscaled input, with ``e[k]`` chosen so that its largest coefficient lies in
        ``[0.5, 1)``. Powers of two scale floating-point products and sums exactly, and a
        positive factor changes no max, tie or sign, so the codes (the partition) are those of
        this layer; magnitudes like 1e300 or 1e-300 become 1 (entries more than 2^1074 below a
        unit's largest underflow to 0). Computed with ``frexp``/``ldexp``, so no intermediate
        product overflows.

        Returns
        -------
        layer : Layer
            Without ``weight``/``bias``/``groups`` (its pieces and switch carry everything).
        e : ndarray of int, shape (K,)
            The units' exponents: the next layer's ``in_exp``.
        """
        in_exp = np.asarray(in_exp, dtype=np.int64)
        mA, eA = np.frexp(self.A)
        mB, eB = np.frexp(self.B)
        eA = eA.astype(np.int64) + in_exp[None, None, :]
        eB = eB.astype(np.int64)
        low = np.iinfo(np.int64).min
        top = np.maximum(np.where(mA != 0, eA, low).max(axis=(1, 2), initial=low),
                         np.where(mB != 0, eB, low).max(axis=1, initial=low))
        e = np.where(top == low, 0, top)                  # a unit that is identically 0
        # shifts are <= 0 (no overflow) and >= -2^12 (a float's exponent range): int32 holds
        # them, and anything below -1100 is 0 anyway
        A = np.ldexp(mA, np.maximum(eA - e[:, None, None], -1100).astype(np.int32))
        B = np.ldexp(mB, np.maximum(eB - e[:, None], -1100).astype(np.int32))
        switch = None
        if self.is_switch:
            mW, eW = np.frexp(self.switch_W)
            mb, eb = np.frexp(self.switch_b)
            shift_W = eW.astype(np.int64) + in_exp[None, :] - e[:, None]
            shift_b = eb.astype(np.int64) - e
            switch = (np.ldexp(mW, np.maximum(shift_W, -1100).astype(np.int32)),
                      np.ldexp(mb, np.maximum(shift_b, -1100).astype(np.int32)))
        layer = Layer(A, B, kind=self.kind, n_pieces=self.n_pieces, slope=self.slope,
                      switch=switch, name=self.name, smooth=self.smooth)
        return layer, e

    # ----------------------------------------------------------------- evaluation
    def codes_and_outputs(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes (n, K) and outputs (n, K) of the layer at inputs Z (n, D).

        Ties go to the smallest piece index; for ReLU-type units active means ``h > 0``.
        """
        if self.kind == "identity":
            out = Z @ self.A[:, 0, :].T + self.B[:, 0]
            return np.zeros(out.shape, dtype=np.int16), out
        if self.is_switch:
            h = Z @ self.switch_W.T + self.switch_b
            code = (h > 0).astype(np.int16)
            if self.kind == "relu":
                out = np.where(code == 1, h, 0.0)
            elif self.kind == "abs":
                out = np.abs(h)
            else:
                out = np.where(code == 1, h, self.slope * h)
            return code, out
        vals = np.einsum("krd,nd->nkr", self.A, Z) + self.B
        code = np.argmax(vals, axis=2).astype(np.int16)
        out = np.take_along_axis(vals, code[:, :, None].astype(np.intp), axis=2)[:, :, 0]
        return code, out

    @property
    def switch_factors(self) -> np.ndarray:
        """For ReLU-type kinds, the factor of the pre-activation in piece 0 and piece 1:
        ``(0, 1)`` for relu, ``(slope, 1)`` for leaky ReLU, ``(-1, 1)`` for abs."""
        if not self.is_switch:
            raise NetworkError(f"{self.name}: a {self.kind} layer has no switch hyperplanes")
        low = {"relu": 0.0, "leaky_relu": float(self.slope or 0.0), "abs": -1.0}[self.kind]
        return np.array([low, 1.0])

    def compose(self, A: np.ndarray, B: np.ndarray, code: np.ndarray):
        """The layer after ``n`` affine maps at once, each with its own code.

        Parameters
        ----------
        A, B : ndarray, shapes (n, D, k) and (n, D)
            Maps ``t -> A[i] t + B[i]`` into the layer's input.
        code : ndarray, shape (n, K)

        Returns
        -------
        A_out, B_out : ndarray, shapes (n, K, k) and (n, K)
            ``t -> A_q (A[i] t + B[i]) + B_q`` with ``q = code[i]``.
        """
        code = np.asarray(code, dtype=np.intp)
        if self.is_switch:
            W, b = self.switch_W, self.switch_b
            f = self.switch_factors[code]
            return f[:, :, None] * np.matmul(W, A), f * (B @ W.T + b)
        if self.kind == "identity":
            W = self.A[:, 0, :]
            return np.matmul(W, A), B @ W.T + self.B[:, 0]
        idx = np.arange(self.out_dim)
        Aq = self.A[idx[None, :], code]                      # (n, K, D)
        Bq = self.B[idx[None, :], code]
        return np.matmul(Aq, A), np.einsum("nkd,nd->nk", Aq, B) + Bq

    def selected(self, code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The layer's affine map ``(A_q, B_q)`` for one code ``q`` of shape (K,) (SPEC §1.3)."""
        code = np.asarray(code, dtype=np.intp)
        idx = np.arange(self.out_dim)
        return self.A[idx, code], self.B[idx, code]

    def describe(self) -> str:
        """One line: kind, widths and pieces."""
        extra = ""
        if self.kind == "leaky_relu":
            extra = f" slope={self.slope:g}"
        elif self.kind in ("maxout", "relu_maxpool", "maso"):
            extra = f" pieces<={self.max_pieces}"
        limit = "" if self.smooth is None else f" (hard limit of {self.smooth.name})"
        return f"{self.name}: {self.kind}{extra} {self.in_dim} -> {self.out_dim}{limit}"

    def __repr__(self) -> str:
        return f"Layer({self.describe()})"
