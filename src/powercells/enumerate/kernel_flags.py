"""A flag that compiled kernels poll while another thread may set it (numba; imported only by
the kernels)."""

from __future__ import annotations

from numba import types
from numba.extending import intrinsic

__all__ = ["read_flag"]


@intrinsic
def read_flag(typingctx, flags):
    """``flags[0]``, read from memory at every call (an atomic load): another thread sets it
    while the kernel runs, and a plain load could be hoisted out of the loops."""
    if not (isinstance(flags, types.Array) and flags.dtype == types.uint8):
        return None

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.load_atomic(array.data, "monotonic", 1)

    return types.uint8(flags), codegen
