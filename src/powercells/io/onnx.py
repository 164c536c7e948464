"""ONNX models in: a graph of affine operations and piecewise-affine activations becomes a chain
of MASO layers (see :mod:`powercells.network.builder`).

Supported operators: Gemm (transA/transB, alpha/beta), MatMul in both orientations (``x @ W``
and ``W @ x``), Add / Sub / Mul / Div with constants (and Add / Sub of two tensors between the
same activations), Neg, Relu, LeakyRelu, Conv, MaxPool, AveragePool, GlobalAveragePool,
BatchNormalization (inference form), Flatten, Reshape, Squeeze / Unsqueeze, Identity, Dropout,
Constant. IR-3 files whose ``graph.input`` also lists the weights are read (the real input is
the one that is not an initializer). Anything else raises an error naming the node and its op.

Smooth activations (``hard_limit=True``, SPEC §7): Softplus, Gelu (both approximations),
HardSwish, Swish (alpha > 0) and Mish are read as a ReLU layer on their input, and the gated
patterns ``x * g(s x)`` with a gate ``g`` built from Sigmoid, Erf, Tanh or a centred
HardSigmoid (beta = 1/2) and constant scalars (``Add`` / ``Sub`` / ``Mul`` / ``Div``), where
``x`` is the same tensor up to a positive scalar ``s``: ``x * Sigmoid(s x)`` (SiLU / swish),
``x * (1 + Erf(x / sqrt 2)) / 2`` (GELU's erf form), ``x * HardSigmoid(x)`` (HardSwish),
``x * Tanh(s x)`` (soft abs: its limit is abs). The gate's limits at -inf and +inf must be
``0`` and ``c > 0`` (a ReLU scaled by ``c``) or ``-c`` and ``c`` (abs scaled by ``c``); the
scale lands in the next affine map, so the limit is exact. A gate used any other way (a plain
Sigmoid, Tanh or Erf activation, Softmax) has no MASO limit and is refused, naming the node.

Untrusted files
---------------
Any file either loads or raises :class:`~powercells.errors.NetworkError` (or its subclass
:class:`~powercells.errors.UnsupportedLayerError`) with a one-line message that names the file
and the node, initializer or attribute at fault. In order:

* the path must be a regular file of at most :data:`MAX_FILE_BYTES` (protobuf's 2 GiB limit);
  it is opened without blocking (a FIFO or device is refused, not read);
* it must parse as an ONNX ``ModelProto`` with a graph, and import the default ONNX domain at an
  opset in ``[MIN_OPSET, newest opset the installed onnx knows]`` (opsets before 7 broadcast
  differently and are refused); every node must be in the default domain (``""`` or
  ``"ai.onnx"``): a custom-domain ``Relu`` is not ONNX's ``Relu``;
* the graph is checked before anything is computed: single assignment, every input produced
  before its use (so no cycles), one real input of a real tensor type with a declared shape of
  at most :data:`MAX_RANK` axes and :data:`MAX_INPUT_ELEMENTS` entries (a symbolic or unset
  axis counts 1, an explicit axis <= 0 is refused), one output;
* every initializer and ``Constant`` tensor must have a real numeric data type (no string,
  complex, 8/4-bit float or int types), non-negative dims with at most
  :data:`MAX_TENSOR_ELEMENTS` entries, exactly its declared amount of data, and finite values;
* external data is refused unless its location is relative, free of ``..``, not a symbolic
  link, resolves inside the model's folder and names a regular file with one hard link that
  holds ``offset + length`` bytes; all of that is checked before any byte is read, and the bytes are
  then read by this module (``onnx.load``'s own external-data loader is never used);
* ``onnx.checker.check_model`` runs on the model (a graph output without a declared shape is
  tolerated: the importer never reads output shapes); its first line becomes the message;
* while the graph is walked, every attribute is type- and range-checked (strides, dilations and
  kernels >= 1, pads >= 0, ``auto_pad`` one of the four ONNX values, ``group`` dividing the
  channels, axes in range, reshape targets with at most one -1), operand shapes are checked,
  no array past :data:`~powercells.network.builder.MAX_ELEMENTS` entries is allocated (the
  sizes are computed first), and a node whose result is not finite is named.
"""

from __future__ import annotations

import math
import os
import re
import stat

import numpy as np

from ..errors import NetworkError, UnsupportedLayerError
from ..network.builder import (
    MAX_ELEMENTS,
    AffineTensor,
    NetworkBuilder,
    average_pool,
    check_elements,
    conv2d,
    pool_windows,
)
from ..network.layers import HARD_LIMIT_HINT, SmoothActivation

__all__ = ["MAX_FILE_BYTES", "MAX_INPUT_ELEMENTS", "MAX_RANK", "MAX_TENSOR_ELEMENTS",
           "MIN_OPSET", "from_onnx"]

#: Largest model file read: protobuf cannot parse a message of 2 GiB or more.
MAX_FILE_BYTES = 2**31 - 1
#: Most entries of one initializer, constant or computed tensor (2 GiB as float64).
MAX_TENSOR_ELEMENTS = MAX_ELEMENTS
#: Most entries of the network input: the builder tracks an n x n identity map of it.
MAX_INPUT_ELEMENTS = math.isqrt(MAX_ELEMENTS)
#: Most axes of any tensor (numpy allows 64; real models use up to 6).
MAX_RANK = 16
#: Oldest default-domain opset read: before opset 7, Add/Mul/... broadcast with an ``axis``
#: attribute and Gemm/BatchNormalization had other attributes.
MIN_OPSET = 7

_DEFAULT_DOMAINS = ("", "ai.onnx")
_NAME_CHARS = 80

# ONNX data type -> (bytes per element in raw_data, the typed field that may hold the values)
_DTYPES = {
    1: (4, "float_data"),       # FLOAT
    2: (1, "int32_data"),       # UINT8
    3: (1, "int32_data"),       # INT8
    4: (2, "int32_data"),       # UINT16
    5: (2, "int32_data"),       # INT16
    6: (4, "int32_data"),       # INT32
    7: (8, "int64_data"),       # INT64
    9: (1, "int32_data"),       # BOOL
    10: (2, "int32_data"),      # FLOAT16
    11: (8, "double_data"),     # DOUBLE
    12: (4, "uint64_data"),     # UINT32
    13: (8, "uint64_data"),     # UINT64
    16: (2, "int32_data"),      # BFLOAT16
}
_VALUE_FIELDS = ("raw_data", "float_data", "int32_data", "string_data", "int64_data",
                 "double_data", "uint64_data")
_INPUT_TYPES = set(_DTYPES) - {9}   # a boolean network input makes no sense


def from_onnx(path, *, hard_limit: bool = False):
    """Load an ONNX model as a :class:`~powercells.Network` (float64).

    The network's input is the model's input flattened in C order (batch dimension of size 1
    dropped from the count); its layers are named after the ONNX nodes that produced their
    pre-activations, e.g. ``"layer 3 (node Operation_3_Add)"``. The file is treated as
    untrusted: see the module docstring for what is checked.

    Parameters
    ----------
    path : str or path-like
    hard_limit : bool
        Read smooth activations (Softplus, Gelu, HardSwish, Swish, Mish, and the gated patterns
        ``x * Sigmoid(s x)``, GELU's erf form, ``x * Tanh(s x)``) as their MASO limit, same
        weights, recorded per layer (:attr:`Network.hard_limit`, SPEC §7). Without it they are
        refused with a message naming the option.

    Raises
    ------
    NetworkError
        For an unreadable or malformed file, several inputs or outputs, inconsistent shapes,
        bad attributes, or sizes past the module's limits; the message names the file and the
        node, initializer or attribute.
    UnsupportedLayerError
        For an operator that is not piecewise affine or not supported, naming the node.
    """
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - exercised without onnx only
        raise NetworkError("reading ONNX needs the onnx package: pip install 'powercells[onnx]'"
                           ) from exc
    where = _show_path(path)
    try:
        with np.errstate(all="ignore"):
            data, model_dir = _read_model_file(path)
            model = _parse(onnx, data)
            del data
            return _Importer(onnx, model, model_dir, hard_limit=hard_limit).run()
    except NetworkError as exc:
        raise type(exc)(_one_line(f"{where}: {exc}")) from None
    except RecursionError:
        raise NetworkError(f"{where}: the ONNX model is nested too deeply") from None
    except MemoryError:
        raise NetworkError(f"{where}: out of memory while importing the ONNX model") from None
    except Exception as exc:   # a last net: no other exception type leaves the importer
        raise NetworkError(_one_line(f"{where}: cannot import the ONNX model "
                                     f"({type(exc).__name__}: {exc})")) from None


# ---------------------------------------------------------------------- messages
def _show_path(path) -> str:
    try:
        text = os.fsdecode(os.fspath(path))
    except TypeError:
        return repr(path)
    return text if text.isprintable() else repr(text)


def _one_line(msg: str) -> str:
    msg = re.sub(r"\s*[\r\n]+\s*", " ", msg)
    return msg if len(msg) <= 2000 else msg[:2000] + "..."


def _q(name) -> str:
    """A name from the file, quoted on one line and cut to a readable length."""
    name = str(name)
    return repr(name if len(name) <= _NAME_CHARS else name[:_NAME_CHARS] + "...")


def _dtype_name(dt: int) -> str:
    from onnx import TensorProto

    try:
        return TensorProto.DataType.Name(dt)
    except ValueError:
        return f"<unknown data type {dt}>"


# ---------------------------------------------------------------------- file level
def _read_model_file(path):
    """The file's bytes and its folder; refuses directories, non-regular files, unreadable
    files and files past MAX_FILE_BYTES without blocking on FIFOs or devices."""
    try:
        fspath = os.fspath(path)
    except TypeError:
        raise NetworkError(f"a path is needed, got {type(path).__name__}") from None
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(fspath, flags)
    except FileNotFoundError:
        raise NetworkError("no such file") from None
    except IsADirectoryError:
        raise NetworkError("is a directory, not an ONNX file") from None
    except PermissionError:
        raise NetworkError("cannot read ONNX model: permission denied") from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise NetworkError(f"cannot read ONNX model: {reason}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise NetworkError("is a directory, not an ONNX file")
        if not stat.S_ISREG(st.st_mode):
            raise NetworkError("cannot read ONNX model: not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise NetworkError(f"cannot read ONNX model: {st.st_size} bytes, more than the "
                               f"{MAX_FILE_BYTES} bytes a protobuf message can hold")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 24, MAX_FILE_BYTES + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_FILE_BYTES:
                raise NetworkError("cannot read ONNX model: the file grew past "
                                   f"{MAX_FILE_BYTES} bytes while being read")
    except OSError as exc:
        raise NetworkError(f"cannot read ONNX model: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    model_dir = os.path.dirname(os.path.abspath(os.fsdecode(fspath)))
    return b"".join(chunks), model_dir


def _parse(onnx, data: bytes):
    if not data:
        raise NetworkError("cannot read ONNX model: the file is empty")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:   # DecodeError, RuntimeWarning-as-error, ...
        raise NetworkError(f"cannot read ONNX model: not an ONNX protobuf "
                           f"({type(exc).__name__}: {exc})") from None
    if not model.HasField("graph"):
        raise NetworkError("cannot read ONNX model: it has no graph (not an ONNX model?)")
    return model


# ---------------------------------------------------------------------- attributes
class _Attrs:
    """A node's attributes, read with their type and range checked."""

    def __init__(self, onnx, node):
        self.values = {}
        for a in node.attribute:
            if a.name in self.values:
                raise NetworkError(f"attribute {_q(a.name)} is given twice")
            try:
                self.values[a.name] = onnx.helper.get_attribute_value(a)
            except Exception as exc:
                raise NetworkError(f"attribute {_q(a.name)} cannot be read ({exc})") from None

    def __contains__(self, key):
        return key in self.values

    def int(self, key, default, lo=None, hi=None):
        v = self.values.get(key, default)
        if v is None:
            return None
        if key in self.values and (isinstance(v, bool) or not isinstance(v, int)):
            raise NetworkError(f"attribute {key!r} must be an integer, got {_short(v)}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            bounds = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise NetworkError(f"attribute {key!r} must be {bounds}, got {v}")
        return v

    def flag(self, key, default=0):
        return self.int(key, default, 0, 1)

    def float(self, key, default):
        v = self.values.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise NetworkError(f"attribute {key!r} must be a number, got {_short(v)}")
        if not math.isfinite(v):
            raise NetworkError(f"attribute {key!r} must be finite, got {v}")
        return float(v)

    def ints(self, key, default, length=None, lo=None):
        if key not in self.values:
            if default is _REQUIRED:
                raise NetworkError(f"attribute {key!r} is required")
            return default
        v = self.values[key]
        if not isinstance(v, (list, tuple)) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in v):
            raise NetworkError(f"attribute {key!r} must be a list of integers, got {_short(v)}")
        v = list(v)
        if length is not None and len(v) != length:
            raise NetworkError(f"attribute {key!r} must have {length} entries, got {_short(v)}")
        if lo is not None and any(i < lo for i in v):
            raise NetworkError(f"attribute {key!r} must be integers >= {lo}, got {_short(v)}")
        return v

    def str(self, key, default, choices):
        v = self.values.get(key, default)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        if not isinstance(v, str) or v not in choices:
            raise NetworkError(f"attribute {key!r} must be one of {', '.join(choices)}, got "
                               f"{_short(v)}")
        return v


_REQUIRED = object()


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:60] + "..."


# ---------------------------------------------------------------------- tensors
def _tensor_plan(t, what: str):
    """Check a TensorProto's type, dims and data amount without converting it; return
    (number of elements, bytes per element, external-data entries or None)."""
    from onnx import TensorProto

    dt = t.data_type
    if dt not in _DTYPES:
        raise NetworkError(f"{what}: data type {_dtype_name(dt)} is not supported (real "
                           "numeric types only: float, double, float16, bfloat16, integers)")
    dims = list(t.dims)
    if len(dims) > MAX_RANK:
        raise NetworkError(f"{what}: {len(dims)} dimensions, more than {MAX_RANK}")
    if any(d < 0 for d in dims):
        raise NetworkError(f"{what}: negative dimension in dims {_short(dims)}")
    n = math.prod(dims)
    if n > MAX_TENSOR_ELEMENTS:
        raise NetworkError(f"{what}: dims {_short(dims)} declare {n} elements, more than the "
                           f"limit of {MAX_TENSOR_ELEMENTS} (2**28)")
    if t.HasField("segment"):
        raise NetworkError(f"{what}: segmented tensors are not supported")
    itemsize, typed = _DTYPES[dt]
    present = [f for f in _VALUE_FIELDS
               if (t.HasField(f) if f == "raw_data" else len(getattr(t, f)) > 0)]
    if t.data_location == TensorProto.EXTERNAL:
        if present:
            raise NetworkError(f"{what}: stored externally but also holds {present[0]}")
        return n, itemsize, _external_entries(t, what)
    if t.data_location != TensorProto.DEFAULT:
        raise NetworkError(f"{what}: unknown data_location {t.data_location}")
    if not present:
        if n == 0:
            return n, itemsize, None
        raise NetworkError(f"{what}: declares {n} elements but holds no data")
    if len(present) > 1:
        raise NetworkError(f"{what}: holds data in several fields ({', '.join(present)})")
    field = present[0]
    if field == "raw_data":
        if len(t.raw_data) != n * itemsize:
            raise NetworkError(
                f"{what}: dims {_short(dims)} of {_dtype_name(dt)} need {n * itemsize} bytes, "
                f"raw_data holds {len(t.raw_data)}")
    elif field != typed:
        raise NetworkError(f"{what}: {_dtype_name(dt)} values stored in {field}")
    elif len(getattr(t, field)) != n:
        raise NetworkError(f"{what}: dims {_short(dims)} declare {n} elements, {field} holds "
                           f"{len(getattr(t, field))}")
    return n, itemsize, None


_INT_TEXT = re.compile(r"[0-9]{1,19}")


def _external_entries(t, what: str) -> dict:
    """The external_data entries of ``t``, with the location's form checked (no file access)."""
    info = {}
    for e in t.external_data:
        if e.key in info:
            raise NetworkError(f"{what}: external_data key {_q(e.key)} is given twice")
        info[e.key] = e.value
    loc = info.get("location", "")
    if not loc:
        raise NetworkError(f"{what}: external data without a location")
    if "\0" in loc or not loc.isprintable():
        raise NetworkError(f"{what}: external data location {_q(loc)} has control characters")
    if (os.path.isabs(loc) or loc.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", loc)):
        raise NetworkError(f"{what}: external data location {_q(loc)} is an absolute path")
    if ".." in re.split(r"[\\/]+", loc):
        raise NetworkError(f"{what}: external data location {_q(loc)} contains '..'")
    for key in ("offset", "length"):
        if key in info:
            if not _INT_TEXT.fullmatch(info[key]):
                raise NetworkError(f"{what}: external data {key} {_q(info[key])} is not a "
                                   "non-negative integer")
            info[key] = int(info[key])
    return info


def _external_file(info: dict, need: int, what: str, model_dir: str):
    """Where ``need`` bytes of external data lie: (real path, offset, (dev, inode)), after
    checking that the location is no symbolic link, stays in the model's folder, is a regular
    file and is long enough. Nothing is read."""
    loc = info["location"]
    full = os.path.join(model_dir, loc)
    base = os.path.realpath(model_dir)
    if os.path.islink(full):
        raise NetworkError(f"{what}: external data location {_q(loc)} is a symbolic link")
    real = os.path.realpath(full)
    try:
        inside = os.path.commonpath([base, real]) == base and real != base
    except ValueError:
        inside = False
    if not inside:
        raise NetworkError(f"{what}: external data location {_q(loc)} resolves outside the "
                           "model's folder")
    try:
        st = os.stat(real)
    except OSError as exc:
        raise NetworkError(f"{what}: external data file {_q(loc)} cannot be opened "
                           f"({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise NetworkError(f"{what}: external data location {_q(loc)} is not a regular file")
    if st.st_nlink > 1:     # as onnx >= 1.21: a hard link may be another file's contents
        raise NetworkError(f"{what}: external data file {_q(loc)} has {st.st_nlink} hard links")
    offset = info.get("offset", 0)
    length = info.get("length")
    if length is not None and length != need:
        raise NetworkError(f"{what}: external data length {length} does not match the "
                           f"{need} bytes its dims and type need")
    if offset + need > st.st_size:
        raise NetworkError(f"{what}: external data {_q(loc)} needs bytes {offset}.."
                           f"{offset + need} but the file has {st.st_size}")
    return real, offset, (st.st_dev, st.st_ino)


def _read_external(plan, need: int, what: str) -> bytes:
    real, offset, ident = plan
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | \
        getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise NetworkError(f"{what}: external data file cannot be opened "
                           f"({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != ident or not stat.S_ISREG(st.st_mode) \
                or offset + need > st.st_size:
            raise NetworkError(f"{what}: the external data file changed while being read")
        os.lseek(fd, offset, os.SEEK_SET)
        chunks, got = [], 0
        while got < need:
            chunk = os.read(fd, min(1 << 24, need - got))
            if not chunk:
                raise NetworkError(f"{what}: the external data file ended early")
            chunks.append(chunk)
            got += len(chunk)
    except OSError as exc:
        raise NetworkError(f"{what}: external data cannot be read ({exc.strerror or exc})"
                           ) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


# ---------------------------------------------------------------------- the importer
class _Importer:
    def __init__(self, onnx, model, model_dir, *, hard_limit=False):
        self.onnx = onnx
        self.model = model
        self.graph = model.graph
        self.model_dir = model_dir
        self.hard_limit = hard_limit

    # ------------------------------------------------------------ checks before computing
    def run(self):
        self._check_opsets()
        self._check_nodes()
        self._check_tensors()
        inp, dims = self._check_io()
        self._run_checker()
        return self._walk(inp, dims)

    def _check_opsets(self):
        versions = {}
        for op in self.model.opset_import:
            key = "" if op.domain in _DEFAULT_DOMAINS else op.domain
            if key in versions and versions[key] != op.version:
                raise NetworkError(f"the model imports opset {_q(op.domain)} twice, at "
                                   f"versions {versions[key]} and {op.version}")
            versions[key] = op.version
        if "" not in versions:
            raise NetworkError("the model imports no opset of the default ONNX domain")
        newest = self.onnx.defs.onnx_opset_version()
        v = versions[""]
        if not MIN_OPSET <= v <= newest:
            raise NetworkError(f"default-domain opset {v} is not supported (opsets "
                               f"{MIN_OPSET}..{newest}; {newest} is the newest the installed "
                               "onnx knows)")

    def _check_nodes(self):
        g = self.graph
        if g.sparse_initializer:
            raise UnsupportedLayerError(
                f"sparse initializer {_q(g.sparse_initializer[0].values.name)} is not supported")
        defined = set()
        for t in g.initializer:
            if not t.name:
                raise NetworkError("an initializer has no name")
            if t.name in defined:
                raise NetworkError(f"initializer {_q(t.name)} is defined twice")
            defined.add(t.name)
        seen_inputs = set()
        for i in g.input:
            if i.name in seen_inputs:
                raise NetworkError(f"graph input {_q(i.name)} is listed twice")
            seen_inputs.add(i.name)
        defined |= seen_inputs
        for node in g.node:
            name = _node_name(node)
            if node.domain not in _DEFAULT_DOMAINS:
                raise UnsupportedLayerError(
                    f"ONNX node {name}: operator {node.domain}.{node.op_type} is not supported "
                    "(only the default ONNX domain)")
            node.domain = ""            # "ai.onnx" is the default domain's other name
            for i in node.input:
                if i and i not in defined:
                    raise NetworkError(f"ONNX node {name}: input {_q(i)} is not produced before "
                                       "it (undefined, or the graph is cyclic or out of order)")
            if not node.output or not node.output[0]:
                raise NetworkError(f"ONNX node {name}: has no output")
            for o in node.output:
                if not o:
                    continue
                if o in defined:
                    raise NetworkError(f"ONNX node {name}: output {_q(o)} is already defined "
                                       "(names must be assigned once)")
                defined.add(o)

    def _tensors(self):
        """(description, TensorProto) of every tensor the importer may read."""
        for t in self.graph.initializer:
            yield f"initializer {_q(t.name)}", t
        for node in self.graph.node:
            if node.op_type == "Constant":
                for a in node.attribute:
                    if a.name == "value" and a.HasField("t"):
                        yield f"ONNX node {_node_name(node)} (Constant): attribute 'value'", a.t

    def _check_tensors(self):
        """Every tensor's type, dims, data amount and external file, before any is read."""
        for what, t in self._tensors():
            self._plan(t, what)

    def _plan(self, t, what):
        n, itemsize, external = _tensor_plan(t, what)
        plan = None
        if external is not None:
            plan = _external_file(external, n * itemsize, what, self.model_dir)
        return n, itemsize, plan

    def _check_io(self):
        g = self.graph
        inits = {t.name for t in g.initializer}
        inputs = [i for i in g.input if i.name not in inits]
        if len(inputs) != 1:
            raise NetworkError(f"expected one input, found "
                               f"{_short([i.name for i in inputs][:10])}")
        if len(g.output) != 1:
            raise NetworkError(f"expected one output, found "
                               f"{_short([o.name for o in g.output][:10])}")
        inp = inputs[0]
        what = f"input {_q(inp.name)}"
        if not inp.name:
            raise NetworkError("the graph input has no name")
        if inp.type.WhichOneof("value") != "tensor_type":
            kind = inp.type.WhichOneof("value") or "no type"
            raise NetworkError(f"{what}: expected a tensor, got {kind}")
        tt = inp.type.tensor_type
        if tt.elem_type not in _INPUT_TYPES:
            raise NetworkError(f"{what}: element type {_dtype_name(tt.elem_type)} is not a "
                               "real number type")
        if not tt.HasField("shape"):
            raise NetworkError(f"{what}: no shape declared; the importer needs static sizes")
        if len(tt.shape.dim) > MAX_RANK:
            raise NetworkError(f"{what}: {len(tt.shape.dim)} dimensions, more than {MAX_RANK}")
        dims = []
        for k, d in enumerate(tt.shape.dim):
            if d.WhichOneof("value") == "dim_value":
                if d.dim_value <= 0:
                    raise NetworkError(f"{what}: dimension {k} is {d.dim_value}; sizes must be "
                                       "positive")
                dims.append(d.dim_value)
            else:
                dims.append(1)          # symbolic (a batch axis) or unknown: one sample
        n = math.prod(dims)
        if n > MAX_INPUT_ELEMENTS:
            raise NetworkError(f"{what}: shape {_short(dims)} has {n} entries, more than the "
                               f"limit of {MAX_INPUT_ELEMENTS}")
        if not g.output[0].name:
            raise NetworkError("the graph output has no name")
        return inp, dims or [1]

    def _run_checker(self):
        """onnx.checker.check_model on the model, with two temporary changes undone after it:
        a graph output without a shape gets an empty one, and externally stored tensors (checked
        above, more strictly) become empty inline ones, since the checker of an in-memory model
        would look for their files relative to the working directory."""
        from onnx import TensorProto

        patched = []
        for o in self.graph.output:
            if o.type.WhichOneof("value") == "tensor_type" and \
                    not o.type.tensor_type.HasField("shape"):
                o.type.tensor_type.shape.SetInParent()
                patched.append(o)
        stubbed = []
        for _, t in self._tensors():
            if t.data_location == TensorProto.EXTERNAL:
                backup = TensorProto()
                backup.CopyFrom(t)
                t.ClearField("external_data")
                t.ClearField("data_location")
                del t.dims[:]
                t.dims.append(0)
                stubbed.append((t, backup))
        try:
            self.onnx.checker.check_model(self.model)
        except Exception as exc:
            text = str(exc).strip()
            first = text.splitlines()[0].strip() if text else type(exc).__name__
            m = re.search(r"==> Context:.*?Name:\s*(.*?)\s*OpType:\s*(\S+)", text, re.DOTALL)
            context = f" (node {_q(m.group(1))}, {m.group(2)})" if m else ""
            raise NetworkError(f"the ONNX checker refuses the model: {first}{context}") from None
        finally:
            for o in patched:
                o.type.tensor_type.ClearField("shape")
            for t, backup in stubbed:
                t.CopyFrom(backup)

    # ------------------------------------------------------------ conversion and walk
    def _array(self, t, what: str) -> np.ndarray:
        from onnx import TensorProto, numpy_helper

        n, itemsize, plan = self._plan(t, what)
        if plan is not None:
            raw = _read_external(plan, n * itemsize, what)
            inline = TensorProto()
            inline.CopyFrom(t)
            inline.ClearField("external_data")
            inline.data_location = TensorProto.DEFAULT
            inline.raw_data = raw
            t = inline
        try:
            arr = numpy_helper.to_array(t)
        except Exception as exc:
            raise NetworkError(f"{what}: cannot be converted ({type(exc).__name__}: {exc})"
                               ) from None
        if np.iscomplexobj(arr):
            raise NetworkError(f"{what}: complex values are not supported")
        arr = np.asarray(arr.astype(np.float64))
        _check_finite(arr, what)
        return arr

    def _walk(self, inp, dims):
        graph = self.graph
        const = {t.name: self._array(t, f"initializer {_q(t.name)}") for t in graph.initializer}
        builder = NetworkBuilder(dims)
        env: dict[str, AffineTensor] = {inp.name: builder.input}
        producer = {inp.name: inp.name}
        # how often each tensor is read: a max-pool merges into the ReLU layer before it only
        # when it is the sole reader of that ReLU's output (see NetworkBuilder.maxpool)
        self.readers = {}
        for name_ in [i for n in graph.node for i in n.input] + [graph.output[0].name]:
            self.readers[name_] = self.readers.get(name_, 0) + 1
        self.relu_outputs = {n.output[0] for n in graph.node if n.op_type == "Relu"}
        self.remaining = dict(self.readers)      # reads still to come, for smooth max-pools
        for node in graph.node:
            name = node.name or (node.output[0] if node.output else node.op_type)
            shown = _q(name)
            try:
                attrs = _Attrs(self.onnx, node)
                if node.op_type in _FOLD and not any(i in env for i in node.input):
                    # weights computed inside the graph: evaluate on the constants
                    out = _fold(node, [_available(const, i) for i in node.input if i], attrs)
                else:
                    out = self._apply(node, attrs, env, const, builder, producer, name)
                _check_result(out)
            except UnsupportedLayerError as exc:
                raise UnsupportedLayerError(f"ONNX node {shown} ({node.op_type}): {exc}"
                                            ) from None
            except NetworkError as exc:
                raise NetworkError(f"ONNX node {shown} ({node.op_type}): {exc}") from None
            except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError,
                    OverflowError, AttributeError) as exc:
                raise NetworkError(f"ONNX node {shown} ({node.op_type}): "
                                   f"{type(exc).__name__}: {exc}") from None
            except MemoryError:
                raise NetworkError(f"ONNX node {shown} ({node.op_type}): out of memory"
                                   ) from None
            for i in node.input:
                self.remaining[i] = self.remaining.get(i, 0) - 1
            if isinstance(out, (AffineTensor, _Gate)):
                env[node.output[0]] = out
                producer[node.output[0]] = name
            else:
                const[node.output[0]] = out
        out_name = graph.output[0].name
        if out_name not in env:
            raise NetworkError(f"the output {_q(out_name)} does not depend on the input")
        if isinstance(env[out_name], _Gate):
            raise UnsupportedLayerError(env[out_name].refusal("is the graph's output"))
        return builder.finish(env[out_name], producer[out_name])

    def _apply(self, node, attrs, env, const, builder, producer, name):
        handler = _OPS.get(node.op_type)
        if handler is None:
            raise UnsupportedLayerError(
                f"operator {node.op_type} is not supported (piecewise-affine operators: "
                f"{', '.join(sorted(set(_OPS) - _SMOOTH_OPS - {'Softmax'}))}; with "
                "hard_limit=True also "
                f"{', '.join(sorted(_SMOOTH_OPS))})")
        lo, hi = _ARITY[node.op_type]
        if not lo <= len(node.input) <= hi:
            raise NetworkError(f"takes {lo}..{hi} inputs, got {len(node.input)}")
        args = []
        for k, i in enumerate(node.input):
            if i == "":
                if k < lo:
                    raise NetworkError(f"input {k} is required")
                args.append(None)
            elif i in env:
                args.append(env[i])
            else:
                args.append(_available(const, i))
        ctx = _Ctx(self, attrs, builder, lambda t: producer.get(_input_name(node, t), name),
                   name)
        first = node.input[0] if node.input else ""
        ctx.sole_relu_reader = first in self.relu_outputs and self.readers.get(first) == 1
        # after the ReLU limit of a smooth unit (which may end in scalings, e.g. GELU's / 2), a
        # max-pool merges when no other tensor of that layer's output is read again
        stage = len(builder.layers)
        ctx.sole_stage_reader = bool(
            node.op_type == "MaxPool" and builder.layers and builder.layers[-1].smooth is not None
            and self.remaining.get(first, 0) == 1
            and not any(n != first and self.remaining.get(n, 0) > 0
                        and (t.arg if isinstance(t, _Gate) else t).stage == stage
                        for n, t in env.items()))
        gates = [a for a in args if isinstance(a, _Gate)]
        if gates:
            if node.op_type not in _GATE_OPS:
                raise UnsupportedLayerError(gates[0].refusal(f"is read by {node.op_type}"))
            return _GATE_OPS[node.op_type](args, ctx)
        return handler(args, ctx)


class _Ctx:
    """What an operator handler sees besides its inputs."""

    def __init__(self, importer, attrs, builder, src, name):
        self.importer = importer
        self.attrs = attrs
        self.builder = builder
        self.src = src
        self.name = name


def _node_name(node) -> str:
    return _q(node.name or (node.output[0] if node.output else node.op_type))


def _available(const, name):
    if name not in const:
        raise NetworkError(f"input {_q(name)} is not available (not produced before the node, "
                           "or a secondary output, which the importer does not compute)")
    return const[name]


def _input_name(node, k):
    return node.input[k] if k < len(node.input) else None


def _check_finite(a, what: str):
    a = np.asarray(a)
    if a.size and not np.all(np.isfinite(a)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise NetworkError(f"{what}: entry {bad} is {a[bad]} (not finite)")


def _check_result(out):
    if isinstance(out, _Gate):
        out = out.arg
    if isinstance(out, AffineTensor):
        if len(out.shape) > MAX_RANK:
            raise NetworkError(f"result has {len(out.shape)} dimensions, more than {MAX_RANK}")
        if not (np.all(np.isfinite(out.M)) and np.all(np.isfinite(out.c))):
            raise NetworkError("the result is not finite (an overflow, a division by zero or "
                               "a non-finite constant)")
        return
    if not isinstance(out, np.ndarray) or out.dtype != np.float64:
        raise NetworkError(f"internal: constant result of type {type(out).__name__}")
    if out.ndim > MAX_RANK:
        raise NetworkError(f"result has {out.ndim} dimensions, more than {MAX_RANK}")
    check_elements(out.size, "the constant result")
    _check_finite(out, "the constant result")


# ---------------------------------------------------------------------- argument helpers
def _tensor(args, k=0) -> AffineTensor:
    x = args[k] if k < len(args) else None
    if not isinstance(x, AffineTensor):
        raise NetworkError(f"input {k} must depend on the network input")
    return x


def _const(args, k, what) -> np.ndarray:
    x = args[k] if k < len(args) else None
    if x is None:
        raise NetworkError(f"{what} (input {k}) is required")
    if isinstance(x, AffineTensor):
        raise UnsupportedLayerError(f"{what} (input {k}) depends on the network input; only "
                                    "constant values are supported there")
    return np.asarray(x)


def _int_list(values, what) -> list[int]:
    a = np.asarray(values)
    if a.ndim > 1:
        raise NetworkError(f"{what} must be a list of integers, got shape {a.shape}")
    out = []
    for v in a.reshape(-1).tolist():
        if not float(v).is_integer():
            raise NetworkError(f"{what} must be integers, got {v}")
        out.append(int(v))
    return out


def _matmul_shape(a: tuple, b: tuple) -> tuple:
    """numpy.matmul's result shape, or a NetworkError naming both shapes."""
    if not a or not b:
        raise NetworkError(f"MatMul needs operands of rank >= 1, got {a} and {b}")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise NetworkError(f"shapes {a} and {b} do not match for a matrix product")
    try:
        batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    except ValueError:
        raise NetworkError(f"shapes {a} and {b} do not broadcast for a matrix product"
                           ) from None
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


# ---------------------------------------------------------------------- operators
def _tensor_and_const(args):
    a, b = args[0], args[1]
    if isinstance(a, AffineTensor) and not isinstance(b, AffineTensor):
        return a, b, False
    if isinstance(b, AffineTensor) and not isinstance(a, AffineTensor):
        return b, a, True
    if isinstance(a, AffineTensor):
        return a, b, None
    raise NetworkError("no input depends on the network input")


def _add(args, ctx):
    x, other, _ = _tensor_and_const(args)
    return x + other


def _sub(args, ctx):
    x, other, swapped = _tensor_and_const(args)
    if swapped is None:                 # tensor - tensor
        return x + other.scale(-1.0)
    if swapped:                         # constant - tensor
        return x.scale(-1.0) + other
    return x + (-np.asarray(other))     # tensor - constant


def _mul(args, ctx):
    x, other, swapped = _tensor_and_const(args)
    if swapped is None:
        raise UnsupportedLayerError("a product of two tensors is not affine")
    return x.scale(other)


def _div(args, ctx):
    x, other, swapped = _tensor_and_const(args)
    if swapped is not False:
        raise UnsupportedLayerError("dividing by a tensor is not affine")
    other = np.asarray(other)
    if np.any(other == 0):
        raise NetworkError("divides by a constant that has zero entries")
    return x.scale(1.0 / other)


def _neg(args, ctx):
    return _tensor(args).scale(-1.0)


def _matmul(args, ctx):
    x, W, swapped = _tensor_and_const(args)
    if swapped is None:
        raise UnsupportedLayerError("a product of two tensors is not affine")
    W = np.asarray(W)
    r = len(x.shape)
    if not swapped:                                   # x @ W
        _matmul_shape(x.shape, W.shape)
        if W.ndim <= max(r, 2):
            return x.affine(lambda T: np.matmul(T, W))
        return x.affine(_batched_matmul(x.shape, W, right=True))
    _matmul_shape(W.shape, x.shape)                   # W @ x
    if r == 1 and W.ndim <= 2:                        # W @ x with x a vector
        return x.affine(lambda T: T @ W.T)
    if r > 1 and W.ndim <= r:
        return x.affine(lambda T: np.matmul(W, T))    # W @ x, batched over the leading axis
    return x.affine(_batched_matmul(x.shape, W, right=False))


def _batched_matmul(shape, W, right):
    """``x @ W`` (right) or ``W @ x`` for every sample of a batch, when W has more axes than x:
    the batch axis is moved in front of W's extra axes so numpy's broadcasting is ONNX's."""
    r = len(shape)
    if r == 1:
        vec = (1, shape[0]) if right else (shape[0], 1)

        def fn(T):
            n = T.shape[0]
            Te = T.reshape((n,) + (1,) * (W.ndim - 2) + vec)
            out = np.matmul(Te, W) if right else np.matmul(W, Te)
            return out[..., 0, :] if right else out[..., 0]
        return fn
    pad = W.ndim - r

    def fn(T):
        n = T.shape[0]
        Te = T.reshape((n,) + (1,) * pad + tuple(shape))
        return np.matmul(Te, W) if right else np.matmul(W, Te)
    return fn


def _gemm(args, ctx):
    a_ = ctx.attrs
    alpha, beta = a_.float("alpha", 1.0), a_.float("beta", 1.0)
    ta, tb = a_.flag("transA"), a_.flag("transB")
    a, b = args[0], args[1]
    c = args[2] if len(args) > 2 and args[2] is not None else 0.0
    if isinstance(c, AffineTensor):
        raise UnsupportedLayerError("Gemm with a tensor as C is not supported")
    if isinstance(a, AffineTensor) == isinstance(b, AffineTensor):
        raise UnsupportedLayerError("Gemm needs exactly one tensor operand")
    sa, sb = tuple(np.shape(a)), tuple(np.shape(b))
    if len(sa) != 2 or len(sb) != 2:
        raise NetworkError(f"Gemm needs 2-D A and B, got shapes {sa} and {sb}")
    (m, k1), (k2, n) = (sa[::-1] if ta else sa), (sb[::-1] if tb else sb)
    if k1 != k2:
        raise NetworkError(f"A {sa} (transA={ta}) and B {sb} (transB={tb}) do not match")
    c = np.asarray(c, dtype=np.float64)
    try:
        if np.broadcast_shapes(c.shape, (m, n)) != (m, n):
            raise ValueError
    except ValueError:
        raise NetworkError(f"C of shape {c.shape} does not broadcast to the product's shape "
                           f"{(m, n)}") from None
    if isinstance(a, AffineTensor):
        B = np.asarray(b).T if tb else np.asarray(b)

        def fn(T):
            A = np.swapaxes(T, -1, -2) if ta else T
            return alpha * np.matmul(A, B)
        return a.affine(fn) + beta * c
    A = np.asarray(a).T if ta else np.asarray(a)

    def fn(T):
        Bm = np.swapaxes(T, -1, -2) if tb else T
        return alpha * np.matmul(A, Bm)
    return b.affine(fn) + beta * c


def _relu(args, ctx):
    return ctx.builder.activation(_tensor(args), "relu", ctx.src(0))


def _leaky(args, ctx):
    alpha = ctx.attrs.float("alpha", 0.01)
    return ctx.builder.activation(_tensor(args), f"leaky_relu:{alpha!r}", ctx.src(0))


def _identity(args, ctx):
    return args[0]


def _dropout(args, ctx):
    if len(args) > 2 and args[2] is not None:
        mode = args[2]
        if isinstance(mode, AffineTensor) or np.any(np.asarray(mode)):
            raise UnsupportedLayerError("Dropout in training mode is random, not affine")
    return args[0]


def _flatten(args, ctx):
    x = args[0]
    shape = tuple(np.shape(x))
    r = len(shape)
    axis = ctx.attrs.int("axis", 1, -r, r)
    axis = axis + r if axis < 0 else axis
    return x.reshape((math.prod(shape[:axis]), math.prod(shape[axis:])))


def _reshape(args, ctx):
    x = args[0]
    in_shape = tuple(np.shape(x))
    allowzero = ctx.attrs.flag("allowzero")
    target = _const(args, 1, "the shape")
    if target.ndim != 1:
        raise NetworkError(f"the shape must be 1-D, got shape {target.shape}")
    if target.size > MAX_RANK:
        raise NetworkError(f"the shape has {target.size} entries, more than {MAX_RANK}")
    vals = _int_list(target, "the shape")
    shape = []
    for i, t in enumerate(vals):
        if t == 0 and not allowzero:
            if i >= len(in_shape):
                raise NetworkError(f"shape entry {i} is 0 (copy the input's size) but the "
                                   f"input {in_shape} has no axis {i}")
            shape.append(in_shape[i])
        elif t < -1:
            raise NetworkError(f"shape entry {i} is {t}; sizes are >= 0, or -1 once")
        else:
            shape.append(t)
    if shape.count(-1) > 1:
        raise NetworkError(f"the shape {vals} has several -1 entries")
    total = math.prod(in_shape)
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or total % known:
            raise NetworkError(f"cannot reshape {in_shape} to {tuple(vals)}")
        shape[shape.index(-1)] = total // known
    if math.prod(shape) != total:
        raise NetworkError(f"cannot reshape {in_shape} to {tuple(vals)}")
    return x.reshape(tuple(shape))


def _axes(ctx, args, k, what):
    axes = ctx.attrs.ints("axes", None)
    if axes is None and len(args) > k and args[k] is not None:
        axes = _int_list(_const(args, k, "axes"), "axes")
    return axes


def _squeeze(args, ctx):
    x = args[0]
    shape = list(np.shape(x))
    r = len(shape)
    axes = _axes(ctx, args, 1, "Squeeze")
    if axes is None:
        shape = [s for s in shape if s != 1]
    else:
        norm = []
        for a in axes:
            if not -r <= a < r:
                raise NetworkError(f"axis {a} is out of range for a tensor of rank {r}")
            norm.append(a % r)
        if len(set(norm)) != len(norm):
            raise NetworkError(f"axes {axes} repeat an axis")
        for a in norm:
            if shape[a] != 1:
                raise NetworkError(f"cannot squeeze axis {a} of size {shape[a]} (shape "
                                   f"{tuple(shape)})")
        shape = [s for i, s in enumerate(shape) if i not in norm]
    return x.reshape(tuple(shape))


def _unsqueeze(args, ctx):
    x = args[0]
    shape = list(np.shape(x))
    axes = _axes(ctx, args, 1, "Unsqueeze")
    if axes is None:
        raise NetworkError("axes are required (attribute or input 1)")
    out_rank = len(shape) + len(axes)
    if out_rank > MAX_RANK:
        raise NetworkError(f"the result would have {out_rank} dimensions, more than {MAX_RANK}")
    norm = []
    for a in axes:
        if not -out_rank <= a < out_rank:
            raise NetworkError(f"axis {a} is out of range for a result of rank {out_rank}")
        norm.append(a % out_rank)
    if len(set(norm)) != len(norm):
        raise NetworkError(f"axes {axes} repeat an axis")
    for a in sorted(norm):
        shape.insert(a, 1)
    return x.reshape(tuple(shape))


def _image(x: AffineTensor):
    """(N=1, C, H, W) or (C, H, W) -> (C, H, W) and whether the batch axis is there."""
    if len(x.shape) == 4 and x.shape[0] == 1:
        return x.shape[1:], True
    if len(x.shape) == 3:
        return x.shape, False
    raise NetworkError(f"expected an image tensor (1, C, H, W), got shape {x.shape}")


_AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "")


def _window_attrs(attrs, kernel):
    """strides, dilations and pads (top, left, bottom, right) of a 2-D window op."""
    stride = attrs.ints("strides", [1, 1], length=2, lo=1)
    dilation = attrs.ints("dilations", [1, 1], length=2, lo=1)
    return stride, dilation


def _pads(attrs, chw, kernel, stride, dilation):
    auto = attrs.str("auto_pad", "NOTSET", _AUTO_PAD)
    if auto in ("NOTSET", ""):
        p = attrs.ints("pads", [0, 0, 0, 0], length=4, lo=0)
        return (p[0], p[1], p[2], p[3])
    if auto == "VALID":
        return (0, 0, 0, 0)
    pads = []
    for size, k, s, d in zip(chw[1:], kernel, stride, dilation, strict=True):
        out = -(-size // s)
        total = max(0, (out - 1) * s + d * (k - 1) + 1 - size)
        lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
        pads.append((lo, total - lo))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def _out_hw(chw, kernel, stride, pads, dilation, what):
    _, H, W = chw
    Ho = (H + pads[0] + pads[2] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    Wo = (W + pads[1] + pads[3] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    if Ho < 1 or Wo < 1:
        raise NetworkError(f"{what} {kernel[0]}x{kernel[1]} (dilations {list(dilation)}) does "
                           f"not fit the input {H}x{W} padded by {list(pads)}")
    return Ho, Wo


def _conv(args, ctx):
    attrs = ctx.attrs
    x = _tensor(args)
    weight = _const(args, 1, "the weight")
    bias = None if len(args) < 3 or args[2] is None else _const(args, 2, "the bias")
    if weight.ndim != 4:
        raise UnsupportedLayerError(f"only 2-D convolutions are supported (weight {weight.shape})")
    chw, batched = _image(x)
    C = chw[0]
    F, Cg, kh, kw = weight.shape
    if 0 in weight.shape:
        raise NetworkError(f"the weight {weight.shape} has an empty dimension")
    ks = attrs.ints("kernel_shape", None, length=2, lo=1)
    if ks is not None and tuple(ks) != (kh, kw):
        raise NetworkError(f"attribute 'kernel_shape' {ks} does not match the weight's kernel "
                           f"{kh}x{kw}")
    stride, dilation = _window_attrs(attrs, (kh, kw))
    group = attrs.int("group", 1, lo=1)
    if C % group or F % group or C // group != Cg:
        raise NetworkError(f"attribute 'group' {group}: {C} input channels and weight "
                           f"{weight.shape} do not split into {group} groups")
    if bias is not None and bias.shape != (F,):
        raise NetworkError(f"the bias has shape {bias.shape}, expected ({F},)")
    pads = _pads(attrs, chw, (kh, kw), stride, dilation)
    _out_hw(chw, (kh, kw), stride, pads, dilation, "the kernel")  # conv2d checks the sizes

    def fn(T):
        n = T.shape[0]
        out = conv2d(T.reshape((n,) + tuple(chw)), weight, bias, stride, pads, dilation, group)
        return out.reshape((n, 1) + out.shape[1:]) if batched else out
    return x.affine(fn)


def _batchnorm(args, ctx):
    attrs = ctx.attrs
    x = _tensor(args)
    scale, bias, mean, var = (_const(args, k, w) for k, w in
                              ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")))
    eps = attrs.float("epsilon", 1e-5)
    if attrs.flag("training_mode"):
        raise UnsupportedLayerError("batch normalisation in training mode is not affine")
    if "spatial" in attrs and attrs.int("spatial", 1) != 1:
        raise UnsupportedLayerError("batch normalisation with spatial=0 is not supported")
    if not x.shape:
        raise NetworkError("batch normalisation needs a tensor of rank >= 1")
    channels = x.shape[1 if len(x.shape) > 1 else 0]
    for what, v in (("scale", scale), ("bias", bias), ("mean", mean), ("var", var)):
        if v.size != channels:
            raise NetworkError(f"{what} has {v.size} entries for {channels} channels")
    denom = var.reshape(-1) + eps
    if np.any(~(denom > 0)):
        raise NetworkError("var + epsilon is not positive")
    factor = scale.reshape(-1) / np.sqrt(denom)
    shift = bias.reshape(-1) - mean.reshape(-1) * factor
    shape = [1] * len(x.shape)
    shape[1 if len(x.shape) > 1 else 0] = channels
    return x.scale(factor.reshape(shape)) + shift.reshape(shape)


def _pool_setup(args, ctx):
    attrs = ctx.attrs
    x = _tensor(args)
    chw, batched = _image(x)
    kernel = attrs.ints("kernel_shape", _REQUIRED, lo=1)
    if len(kernel) != 2:
        raise UnsupportedLayerError(f"only 2-D pooling is supported (attribute 'kernel_shape' "
                                    f"{_short(kernel)})")
    stride, dilation = _window_attrs(attrs, kernel)
    if attrs.flag("ceil_mode"):
        raise UnsupportedLayerError("pooling with ceil_mode=1 is not supported")
    attrs.int("storage_order", 0, 0, 1)
    pads = _pads(attrs, chw, kernel, stride, dilation)
    Ho, Wo = _out_hw(chw, kernel, stride, pads, dilation, "the window")
    check_elements((x.M.shape[-1], chw[0], Ho, Wo), "the pooling output")
    windows, out_chw = pool_windows(chw, kernel, stride, pads, dilation)
    out_shape = ((1,) + out_chw) if batched else out_chw
    return x, windows, out_shape, kernel


def _maxpool(args, ctx):
    x, windows, out_shape, _ = _pool_setup(args, ctx)
    return ctx.builder.maxpool(x, windows, out_shape, ctx.name,
                               merge=ctx.sole_relu_reader or ctx.sole_stage_reader)


def _avgpool(args, ctx):
    include_pad = ctx.attrs.flag("count_include_pad")
    x, windows, out_shape, kernel = _pool_setup(args, ctx)
    return average_pool(x, windows, out_shape, kernel[0] * kernel[1], bool(include_pad))


def _global_avgpool(args, ctx):
    x = _tensor(args)
    chw, batched = _image(x)
    C, H, W = chw
    out = ((1,) if batched else ()) + (C, 1, 1)
    return x.affine(lambda T: T.reshape((T.shape[0], C, H * W)).mean(axis=2).reshape(
        (T.shape[0],) + out))


def _constant(args, ctx):
    attrs = ctx.attrs
    keys = [k for k in attrs.values if k in _CONSTANT_KEYS]
    if len(keys) != 1:
        raise NetworkError(f"a Constant needs exactly one value attribute, got {keys}")
    key = keys[0]
    if key in ("sparse_value", "value_string", "value_strings"):
        raise UnsupportedLayerError(f"a Constant with attribute {key!r} is not supported "
                                    "(numeric dense values only)")
    v = attrs.values[key]
    if key == "value":
        if not hasattr(v, "data_type"):
            raise NetworkError("attribute 'value' must be a tensor")
        return ctx.importer._array(v, "attribute 'value'")
    if key in ("value_float", "value_int"):
        v = attrs.float(key, None) if key == "value_float" else attrs.int(key, None)
        return np.asarray(v, dtype=np.float64)
    if not isinstance(v, (list, tuple)) or not all(
            isinstance(i, (int, float)) and not isinstance(i, bool) for i in v):
        raise NetworkError(f"attribute {key!r} must be a list of numbers")
    if key == "value_ints" and not all(isinstance(i, int) for i in v):
        raise NetworkError("attribute 'value_ints' must be a list of integers")
    arr = np.asarray(list(v), dtype=np.float64)
    _check_finite(arr, f"attribute {key!r}")
    return arr


# ---------------------------------------------------------------------- smooth activations
# the gate functions g of x * g(s x) patterns: their values at -inf and +inf
_GATE_SPAN = {"Sigmoid": (0.0, 1.0), "Erf": (-1.0, 1.0), "Tanh": (-1.0, 1.0),
              "HardSigmoid": (0.0, 1.0)}
_GATE_FORMS = {"Sigmoid": "x * Sigmoid(s x) (SiLU/swish)",
               "Erf": "GELU's x * (1 + Erf(x / sqrt 2)) / 2",
               "Tanh": "x * Tanh(s x) (soft abs)",
               "HardSigmoid": "x * HardSigmoid(x) (HardSwish)"}
_GATE_LIMITS = {"Sigmoid": "ReLU", "Erf": "ReLU", "Tanh": "abs", "HardSigmoid": "ReLU"}
# relative agreement asked of a gate's argument and s times the gated tensor (entry by entry):
# both are computed from the same tensor, so they differ by a few roundings at most
_GATE_RTOL = 1e-12


class _Gate:
    """``u + v * g(arg)``, ``g`` a smooth gate (Sigmoid, Erf, Tanh; HardSigmoid as
    ``clip(arg + 1/2, 0, 1)``) of an affine tensor: not affine itself, so it may only be
    shifted and scaled by constants until it multiplies the tensor it gates."""

    def __init__(self, op: str, arg: AffineTensor, node: str, u=0.0, v=1.0):
        self.op, self.arg, self.node, self.u, self.v = op, arg, node, float(u), float(v)

    @property
    def shape(self):
        return self.arg.shape

    def with_affine(self, scale=1.0, shift=0.0) -> _Gate:
        """The gate ``scale * gate + shift``."""
        return _Gate(self.op, self.arg, self.node, self.u * scale + shift, self.v * scale)

    def limits(self) -> tuple[float, float]:
        lo, hi = _GATE_SPAN[self.op]
        return self.u + self.v * lo, self.u + self.v * hi

    def refusal(self, how: str) -> str:
        return (f"the {self.op} of node {_q(self.node)} {how}: {self.op} is smooth, not "
                "piecewise-affine, and has no MASO limit on its own (its sharp limit is a "
                f"step); only gated forms such as {_GATE_FORMS[self.op]} have one")


def _smooth_refusal(op: str, what: str, limit: str = "ReLU") -> UnsupportedLayerError:
    return UnsupportedLayerError(f"operator {op} is not supported: {what} is smooth, not "
                                 f"piecewise-affine; {HARD_LIMIT_HINT} to use its {limit} "
                                 "limit")


def _gate(op):
    def handler(args, ctx):
        if not ctx.importer.hard_limit:
            raise UnsupportedLayerError(
                f"operator {op} is not supported: {op} is smooth, not piecewise-affine; if it "
                f"is part of {_GATE_FORMS[op]}, {HARD_LIMIT_HINT} to use the "
                f"{_GATE_LIMITS[op]} limit")
        x = _tensor(args)
        if op == "HardSigmoid":
            alpha = ctx.attrs.float("alpha", 0.2)
            beta = ctx.attrs.float("beta", 0.5)
            if beta != 0.5 or not alpha > 0:
                raise UnsupportedLayerError(
                    f"a HardSigmoid gate with alpha {alpha:g} and beta {beta:g} is not "
                    "centred at 0 with a positive slope (alpha > 0, beta = 1/2), so "
                    "x * HardSigmoid(x) has no ReLU limit")
            x = x.scale(np.float64(alpha))
        return _Gate(op, x, ctx.name)
    return handler


def _smooth_op(op):
    """Softplus, Gelu, HardSwish, Swish, Mish: a ReLU layer on the input, recorded."""
    def handler(args, ctx):
        if op == "Gelu":
            approx = ctx.attrs.str("approximate", "none", ("none", "tanh"))
            record = SmoothActivation("gelu_tanh" if approx == "tanh" else "gelu", 1.0)
        elif op == "Swish":
            alpha = ctx.attrs.float("alpha", 1.0)
            if not alpha > 0:
                raise UnsupportedLayerError(f"Swish with alpha {alpha:g} <= 0 has no MASO "
                                            "limit (x * sigmoid(-x) tends to min(0, x), "
                                            "concave)")
            record = SmoothActivation("swish", alpha)
        else:
            record = SmoothActivation({"Softplus": "softplus", "HardSwish": "hardswish",
                                       "Mish": "mish"}[op], 1.0)
        if not ctx.importer.hard_limit:
            raise _smooth_refusal(op, record.name)
        return ctx.builder.activation(_tensor(args), "relu", ctx.src(0), smooth=record)
    return handler


def _scalar(c, gate: _Gate) -> float:
    """A constant that shifts or scales a gate: one value, not widening the gate's shape."""
    if isinstance(c, (AffineTensor, _Gate)) or c is None:
        raise UnsupportedLayerError(f"the {gate.op} of node {_q(gate.node)} is combined with "
                                    "another tensor: only x * gate(s x) forms have a MASO limit")
    c = np.asarray(c, dtype=np.float64)
    try:
        widened = np.broadcast_shapes(gate.shape, c.shape) != tuple(gate.shape)
    except ValueError:
        widened = True
    if c.size != 1 or widened:
        raise UnsupportedLayerError(f"the {gate.op} of node {_q(gate.node)} is combined with a "
                                    f"constant of shape {c.shape}; only single numbers are "
                                    "supported in a gate")
    return float(c.reshape(-1)[0])


def _gate_add(args, ctx):
    g, c = (args[0], args[1]) if isinstance(args[0], _Gate) else (args[1], args[0])
    return g.with_affine(shift=_scalar(c, g))


def _gate_sub(args, ctx):
    if isinstance(args[0], _Gate):
        return args[0].with_affine(shift=-_scalar(args[1], args[0]))
    return args[1].with_affine(scale=-1.0, shift=_scalar(args[0], args[1]))


def _gate_div(args, ctx):
    if not isinstance(args[0], _Gate):
        raise UnsupportedLayerError(args[1].refusal("divides a value"))
    c = _scalar(args[1], args[0])
    if c == 0:
        raise NetworkError("divides by zero")
    return args[0].with_affine(scale=1.0 / c)


def _gate_mul(args, ctx):
    a, b = args[0], args[1]
    if isinstance(a, _Gate) and isinstance(b, _Gate):
        raise UnsupportedLayerError(a.refusal(f"multiplies the {b.op} of node {_q(b.node)}"))
    g, k = (a, 1) if isinstance(a, _Gate) else (b, 0)
    x = args[k]
    if not isinstance(x, AffineTensor):
        return g.with_affine(scale=_scalar(x, g))
    return _gated_unit(x, g, ctx, ctx.src(k))


def _gated_unit(x: AffineTensor, g: _Gate, ctx, source):
    """``x * gate(s x)`` as the hard limit: a ReLU (or abs) layer on x, scaled by the gate's
    limit at +inf (folded into the next affine map, so exact)."""
    form = _GATE_FORMS[g.op]
    if tuple(x.shape) != tuple(g.shape):
        raise UnsupportedLayerError(f"{g.op} of node {_q(g.node)} gates a tensor of shape "
                                    f"{x.shape} but has shape {g.shape}; not {form}")
    s = _proportion(x, g.arg) if x.stage == g.arg.stage else None
    if s is None:
        raise UnsupportedLayerError(f"the {g.op} of node {_q(g.node)} gates a tensor that its "
                                    "argument is not a positive multiple of (x * gate(s x) with "
                                    f"one number s > 0 is needed for a MASO limit; {form})")
    lo, hi = g.limits()
    record = None
    if lo == 0 and hi > 0:
        limit = "relu"
        if g.op == "Sigmoid":
            record = SmoothActivation("swish", s)
        elif g.op == "Tanh":                  # (1 + tanh(s x)) / 2 = sigmoid(2 s x)
            record = SmoothActivation("swish", 2.0 * s)
        elif g.op == "Erf":                   # (1 + erf(s x)) / 2 = Phi(sqrt(2) s x)
            record = SmoothActivation("gelu", math.sqrt(2.0) * s)
        else:                                 # clip(s x + 1/2, 0, 1) = clip(6 s x / 6 + 1/2)
            record = SmoothActivation("hardswish", 6.0 * s)
    elif lo == -hi and hi > 0:
        limit = "abs"
        if g.op == "Tanh":
            record = SmoothActivation("soft_abs", s)
        elif g.op == "Sigmoid":               # 2 sigmoid(s x) - 1 = tanh(s x / 2)
            record = SmoothActivation("soft_abs", s / 2.0)
    if record is None:
        raise UnsupportedLayerError(
            f"x times the gate {g.u:g} + {g.v:g} * {g.op}(s x) of node {_q(g.node)} tends to "
            f"{lo:g} x for x < 0 and {hi:g} x for x > 0: not a ReLU or abs shape with a "
            "supported smooth form, so it is refused")
    out = ctx.builder.activation(x, limit, source, smooth=record)
    return out if hi == 1 else out.scale(np.float64(hi))


def _proportion(x: AffineTensor, arg: AffineTensor) -> float | None:
    """``s > 0`` with ``arg == s x`` entry by entry (relative rounding ``_GATE_RTOL``), else
    None."""
    X = np.concatenate([x.M.reshape(-1), x.c.reshape(-1)])
    A = np.concatenate([arg.M.reshape(-1), arg.c.reshape(-1)])
    if X.shape != A.shape:
        return None
    if not X.any():
        return 1.0 if not A.any() else None
    j = int(np.argmax(np.abs(X)))
    s = A[j] / X[j]
    if not (np.isfinite(s) and s > 0):
        return None
    if np.all(np.abs(A - s * X) <= _GATE_RTOL * np.abs(s * X)):
        return float(s)
    return None


def _softmax(args, ctx):
    raise UnsupportedLayerError("operator Softmax is not supported: softmax is smooth, not "
                                "piecewise-affine, and has no MASO limit (its sharp limit is a "
                                "one-hot argmax, not continuous)")


# what a gate may go through before it multiplies the tensor it gates
_GATE_OPS = {"Add": _gate_add, "Sub": _gate_sub, "Mul": _gate_mul, "Div": _gate_div,
             "Identity": _identity, "Dropout": _dropout}


_CONSTANT_KEYS = ("value", "value_float", "value_floats", "value_int", "value_ints",
                  "sparse_value", "value_string", "value_strings")

_OPS = {
    "Add": _add, "Sub": _sub, "Mul": _mul, "Div": _div, "Neg": _neg,
    "MatMul": _matmul, "Gemm": _gemm, "Relu": _relu, "LeakyRelu": _leaky,
    "Identity": _identity, "Dropout": _dropout, "Flatten": _flatten, "Reshape": _reshape,
    "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Conv": _conv,
    "BatchNormalization": _batchnorm, "MaxPool": _maxpool, "AveragePool": _avgpool,
    "GlobalAveragePool": _global_avgpool, "Constant": _constant,
    "Sigmoid": _gate("Sigmoid"), "Tanh": _gate("Tanh"), "Erf": _gate("Erf"),
    "HardSigmoid": _gate("HardSigmoid"), "Softplus": _smooth_op("Softplus"),
    "Gelu": _smooth_op("Gelu"), "HardSwish": _smooth_op("HardSwish"),
    "Swish": _smooth_op("Swish"), "Mish": _smooth_op("Mish"), "Softmax": _softmax,
}

# smooth operators, read only with hard_limit=True (a gate only inside x * gate(s x))
_SMOOTH_OPS = {"Sigmoid", "Tanh", "Erf", "HardSigmoid", "Softplus", "Gelu", "HardSwish", "Swish",
               "Mish"}

# (fewest, most) inputs of each operator, the optional ones counted
_ARITY = {
    "Add": (2, 2), "Sub": (2, 2), "Mul": (2, 2), "Div": (2, 2), "Neg": (1, 1),
    "MatMul": (2, 2), "Gemm": (2, 3), "Relu": (1, 1), "LeakyRelu": (1, 1),
    "Identity": (1, 1), "Dropout": (1, 3), "Flatten": (1, 1), "Reshape": (2, 2),
    "Squeeze": (1, 2), "Unsqueeze": (1, 2), "Conv": (2, 3), "BatchNormalization": (5, 5),
    "MaxPool": (1, 1), "AveragePool": (1, 1), "GlobalAveragePool": (1, 1), "Constant": (0, 0),
    "Sigmoid": (1, 1), "Tanh": (1, 1), "Erf": (1, 1), "HardSigmoid": (1, 1), "Softplus": (1, 1),
    "Gelu": (1, 1), "HardSwish": (1, 1), "Swish": (1, 1), "Mish": (1, 1), "Softmax": (1, 1),
}


# ---------------------------------------------------------------------- constant folding
def _fold(node, inputs, attrs):
    """Evaluate ``node`` on constants (weights computed inside the graph), sizes first."""
    op = node.op_type
    want = 2 if op in ("Add", "Sub", "Mul", "Div", "MatMul") else 1
    if len(inputs) != want or len(node.input) != want:
        raise NetworkError(f"takes {want} inputs, got {len(node.input)}")
    arrays = [np.asarray(a, dtype=np.float64) for a in inputs]
    if op == "MatMul":
        shape = _matmul_shape(arrays[0].shape, arrays[1].shape)
    elif want == 2:
        try:
            shape = np.broadcast_shapes(arrays[0].shape, arrays[1].shape)
        except ValueError:
            raise NetworkError(f"shapes {arrays[0].shape} and {arrays[1].shape} do not "
                               "broadcast") from None
    else:
        shape = arrays[0].shape
    if len(shape) > MAX_RANK:
        raise NetworkError(f"result has {len(shape)} dimensions, more than {MAX_RANK}")
    check_elements(shape, f"the constant result of shape {shape}")
    if op == "Transpose":
        perm = attrs.ints("perm", None)
        if perm is not None and sorted(perm) != list(range(arrays[0].ndim)):
            raise NetworkError(f"attribute 'perm' {_short(perm)} is not a permutation of the "
                               f"{arrays[0].ndim} axes")
        return np.transpose(arrays[0], perm)
    out = np.asarray(_FOLD[op](*arrays), dtype=np.float64)
    return out


# operators evaluated on constants when no input depends on the network input
_FOLD = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
    "Neg": np.negative, "MatMul": np.matmul, "Identity": lambda a: a,
    "Transpose": np.transpose, "Sqrt": np.sqrt,
}
