"""A network as a validated chain of max-affine spline layers (SPEC §1)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import NetworkError, PointError
from .layers import Layer

__all__ = ["Network"]


class Network:
    """A chain of MASO layers in float64: ``z^(l) = S^(l)(z^(l-1))``, ``z^(0) = x``.

    Parameters
    ----------
    layers : sequence of Layer
        Each layer's input dimension must equal the previous layer's number of units.

    Raises
    ------
    NetworkError
        If there are no layers or the shapes do not chain; the message names the layer.

    Examples
    --------
    >>> import numpy as np
    >>> net = Network.from_weights([(np.eye(2), [0.0, -1.0]), (np.array([[1.0, -1.0]]), [0.5])],
    ...                            activations=["relu", "relu"])
    >>> net.codes(np.array([[2.0, 3.0]]))
    [array([[1, 1]], dtype=int16), array([[1]], dtype=int16)]
    """

    def __init__(self, layers: Sequence[Layer]):
        layers = tuple(layers)
        if not layers:
            raise NetworkError("a network needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise NetworkError(f"layer {i + 1}: expected a Layer, got {type(layer).__name__}")
            if i and layer.in_dim != layers[i - 1].out_dim:
                raise NetworkError(
                    f"layer {i + 1} ({layer.name}): takes {layer.in_dim} inputs but layer {i} "
                    f"({layers[i - 1].name}) outputs {layers[i - 1].out_dim} values"
                )
        self.layers = layers
        self._balanced_codes = None         # the balanced network, for codes (see codes)
        self._magnitude = None

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_weights(cls, weights, activations=None, *, hard_limit: bool = False) -> Network:
        """Build a network from ``(W, b)`` pairs, W of shape (out, in).

        Parameters
        ----------
        weights : sequence of (W, b)
        activations : sequence of str, optional
            One per layer: ``"relu"``, ``"leaky_relu:<slope>"``, ``"abs"``, ``"identity"``,
            ``"maxout:<R>"``. Default: ReLU after every layer except the last, which is linear.
            With ``hard_limit=True`` also the smooth activations of
            :data:`~powercells.network.layers.SMOOTH_SPELLINGS` (``"silu"``, ``"gelu"``, ...).
        hard_limit : bool
            Read smooth activations as their MASO limit (SPEC §7; see :meth:`Layer.dense` and
            :attr:`hard_limit`).

        Raises
        ------
        NetworkError, UnsupportedLayerError
        """
        weights = list(weights)
        if not weights:
            raise NetworkError("a network needs at least one (W, b) pair")
        if activations is None:
            activations = ["relu"] * (len(weights) - 1) + ["identity"]
        activations = list(activations)
        if len(activations) != len(weights):
            raise NetworkError(
                f"got {len(activations)} activations for {len(weights)} layers; give one per layer"
            )
        layers = []
        for i, (pair, act) in enumerate(zip(weights, activations)):
            try:
                W, b = pair
            except (TypeError, ValueError):
                raise NetworkError(f"layer {i + 1}: expected a (W, b) pair") from None
            layers.append(Layer.dense(W, b, act, name=f"layer {i + 1}", hard_limit=hard_limit))
        return cls(layers)

    # ----------------------------------------------------------------- shape
    @property
    def input_dim(self) -> int:
        """d, the input dimension."""
        return self.layers[0].in_dim

    @property
    def output_dim(self) -> int:
        return self.layers[-1].out_dim

    @property
    def depth(self) -> int:
        """L, the number of layers (the linear head included)."""
        return len(self.layers)

    @property
    def widths(self) -> tuple[int, ...]:
        """Number of units of each layer."""
        return tuple(layer.out_dim for layer in self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def hard_limit(self) -> dict:
        """``{layer: SmoothActivation}`` for the layers that are the hard limit of a smooth
        activation (1-based layer numbers, as in messages); empty for a network that was
        piecewise-affine as given. See :mod:`powercells.soft_vq`."""
        return {i: layer.smooth for i, layer in enumerate(self.layers, 1)
                if layer.smooth is not None}

    def __repr__(self) -> str:
        return f"Network({self.input_dim} -> {list(self.widths)})"

    def summary(self) -> str:
        """One line per layer: kind, widths and pieces."""
        return "\n".join(layer.describe() for layer in self.layers)

    def unit_name(self, layer: int, unit: int) -> str:
        """``"layer 3 (node linear_3_Add), unit 17"``: a unit named with its layer's source
        (``layer`` is 1-based, as everywhere in powercells' messages).

        Raises
        ------
        NetworkError
            If the layer or the unit does not exist.
        """
        if not 1 <= layer <= self.depth:
            raise NetworkError(f"layer {layer} does not exist; layers are 1..{self.depth}")
        if not 0 <= unit < self.layers[layer - 1].out_dim:
            raise NetworkError(f"{self.layers[layer - 1].name} has units "
                               f"0..{self.layers[layer - 1].out_dim - 1}, not {unit}")
        return f"{self.layers[layer - 1].name}, unit {unit}"

    # ----------------------------------------------------------------- evaluation
    def _points(self, X) -> np.ndarray:
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise PointError(f"points are not numeric ({exc})") from None
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.input_dim:
            raise PointError(
                f"points must have shape (n, {self.input_dim}) for this network, got {X.shape}"
            )
        if not np.all(np.isfinite(X)):
            raise PointError("points contain NaN or infinite values")
        return X

    def forward(self, X) -> np.ndarray:
        """The network's output at each row of X.

        Parameters
        ----------
        X : array_like, shape (n, d) or (d,)

        Returns
        -------
        ndarray, shape (n, K_L)

        Raises
        ------
        PointError
            If X has the wrong shape or non-finite entries.
        """
        Z = self._points(X)
        for layer in self.layers:
            Z = layer.codes_and_outputs(Z)[1]
        return Z

    def codes(self, X) -> list[np.ndarray]:
        """Per-layer codes (piece indices) at each row of X (SPEC §1.3).

        Returns
        -------
        list of ndarray of int16, one of shape (n, K_l) per layer
        """
        Z = self._points(X)
        # the balanced network has the same codes, and its values stay in float64's range for
        # weights like 1e300 or 1e-300, where this network's own values overflow or vanish
        if self._balanced_codes is None:
            self._balanced_codes = self.balanced().layers
        out = []
        for layer in self._balanced_codes:
            code, Z = layer.codes_and_outputs(Z)
            out.append(code)
        return out

    def affine_map_of_codes(self, code_path, *, layer: int | None = None):
        """The affine map ``z^(l) = A x + B`` of a region from its code path (SPEC §3.1).

        Parameters
        ----------
        code_path : sequence of array_like
            One code of shape (K_l,) per layer, for layers 1..l.
        layer : int, optional
            Use only the first ``layer`` codes: the map into layer ``layer``'s output (default:
            all given).

        Returns
        -------
        A : ndarray, shape (K_l, d)
        B : ndarray, shape (K_l,)
        """
        code_path = list(code_path)[: layer if layer is not None else None]
        if len(code_path) > self.depth:
            raise NetworkError(f"code path has {len(code_path)} layers; network has {self.depth}")
        A = np.eye(self.input_dim)
        B = np.zeros(self.input_dim)
        for step, code in zip(self.layers, code_path):
            code = np.asarray(code)
            if code.shape != (step.out_dim,):
                raise NetworkError(
                    f"{step.name}: code must have shape ({step.out_dim},), got {code.shape}"
                )
            Aq, Bq = step.selected(code)
            A, B = Aq @ A, Aq @ B + Bq
        return A, B

    def affine_map(self, x):
        """The local affine map ``f(y) = A y + B`` of the whole network at the point x, with the
        tie-breaking of SPEC §1.3.

        Returns
        -------
        A : ndarray, shape (K_L, d)
        B : ndarray, shape (K_L,)
        """
        x = self._points(x)
        if x.shape[0] != 1:
            raise PointError(f"affine_map takes one point, got {x.shape[0]}")
        return self.affine_map_of_codes([c[0] for c in self.codes(x)])

    def balanced(self, input_exp: int = 0) -> Network:
        """The network with the same partition (every layer's codes, as functions of the
        input) and every unit scaled by a power of two so that its largest coefficient lies in
        ``[0.5, 1)``, each unit's scale carried into the next layer's input (see
        :meth:`Layer.rescaled`). Engines enumerate this one: a unit's hyperplane does not change
        when its row is scaled, and weights like 1e300 or 1e-300 stop overflowing or vanishing
        in the pulled-back maps. On ordinary weights every product and sum the engines form is
        the original's times a power of two, so their decisions are the same bit for bit.

        Its outputs are the original's up to a positive factor per unit; use the original for
        values, maps and geometry.

        Parameters
        ----------
        input_exp : int
            The result takes ``t = x / 2**input_exp`` as its input (the engines' coordinates
            for a domain far from unit size), folded in exactly.
        """
        return Network(self._balance(int(input_exp))[0])

    def _balance(self, input_exp: int):
        """The balanced layers and every layer's unit exponents (see :meth:`balanced`)."""
        exp = np.full(self.input_dim, input_exp, dtype=np.int64)
        layers, exps = [], []
        for layer in self.layers:
            layer, exp = layer.rescaled(exp)
            layers.append(layer)
            exps.append(exp)
        return layers, exps

    def magnitude(self) -> int:
        """The largest ``|e|`` such that some unit's output is about ``2**e`` times what a unit
        with coefficients of size 1 would give (the exponents :meth:`balanced` divides out):
        0 to ~10 for ordinary networks; past ~400, products and squares of the network's own
        values overflow or underflow float64."""
        if self._magnitude is None:
            exps = self._balance(0)[1]
            self._magnitude = int(max(int(np.max(np.abs(e), initial=0)) for e in exps))
        return self._magnitude

    def with_input_map(self, M, c) -> Network:
        """The network composed with the affine map ``x = M t + c`` (M of shape (d, k)).

        A slice through input space folds into the first layer this way, so engines see a
        network on R^k.
        """
        M = np.asarray(M, dtype=np.float64)
        c = np.asarray(c, dtype=np.float64)
        if M.ndim != 2 or M.shape[0] != self.input_dim or c.shape != (self.input_dim,):
            raise NetworkError(
                f"input map must be M ({self.input_dim}, k) and c ({self.input_dim},), got "
                f"{M.shape} and {c.shape}"
            )
        return Network((self.layers[0].with_input_map(M, c),) + self.layers[1:])
