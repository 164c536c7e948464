"""Networks as chains of max-affine spline operator layers (SPEC §1)."""

from .layers import ACTIVATION_KINDS, Layer, parse_activation
from .network import Network

__all__ = ["ACTIVATION_KINDS", "Layer", "Network", "parse_activation"]
