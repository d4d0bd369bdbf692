"""Python operators and JAX-style array methods on tracers (eager results are NumPy arrays,
which already have them, plus `.at` from `Array`)."""
from __future__ import annotations

import numpy as np

from ..array import Array
from ..trace import Tracer
from . import indexing, math, products, reductions, shape


def _swap(f):
    return lambda self, other: f(other, self)


def _astype(self, dtype):
    return math.astype(self, dtype)


def _reshape(self, *new_shape, order="C"):
    return shape.reshape(self, *new_shape, order=order)

_METHODS = {
    "__add__": math.add, "__radd__": _swap(math.add),
    "__sub__": math.subtract, "__rsub__": _swap(math.subtract),
    "__mul__": math.multiply, "__rmul__": _swap(math.multiply),
    "__truediv__": math.divide, "__rtruediv__": _swap(math.divide),
    "__floordiv__": math.floor_divide, "__rfloordiv__": _swap(math.floor_divide),
    "__mod__": math.remainder, "__rmod__": _swap(math.remainder),
    "__pow__": math.power, "__rpow__": _swap(math.power),
    "__matmul__": products.matmul, "__rmatmul__": _swap(products.matmul),
    "__neg__": math.negative, "__pos__": math.positive, "__abs__": math.abs,
    "__lt__": math.less, "__le__": math.less_equal,
    "__gt__": math.greater, "__ge__": math.greater_equal,
    "__eq__": math.equal, "__ne__": math.not_equal,
    "__and__": math.logical_and, "__rand__": _swap(math.logical_and),
    "__or__": math.logical_or, "__ror__": _swap(math.logical_or),
    "__xor__": math.logical_xor, "__rxor__": _swap(math.logical_xor),
    "__invert__": math.logical_not,
    "__getitem__": indexing.getitem,
    "astype": _astype,
    "reshape": _reshape,
    "sum": reductions.sum, "mean": reductions.mean, "prod": reductions.prod,
    "max": reductions.max, "min": reductions.min, "any": reductions.any, "all": reductions.all,
    "transpose": lambda self, *axes: shape.transpose(
        self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list))
        else (axes or None)
    ),
    "squeeze": shape.squeeze, "ravel": shape.ravel, "flatten": shape.ravel,
    "swapaxes": shape.swapaxes, "take": shape.take,
    "dot": products.dot, "clip": math.clip,
    "round": lambda self, decimals=0: math.rint(self),
}

for _name, _fn in _METHODS.items():
    setattr(Tracer, _name, _fn)

Tracer.T = property(lambda self: shape.transpose(self))
Tracer.at = property(lambda self: indexing.IndexUpdateHelper(self))
Tracer.__hash__ = None  # tracers compare elementwise, so they are unhashable
Tracer.item = lambda self: np.asarray(self.concrete_value()).item()


def _has_tracer(idx) -> bool:
    items = idx if isinstance(idx, tuple) else (idx,)
    return any(isinstance(i, Tracer) for i in items)


def _array_getitem(self, idx, _ndarray_getitem=np.ndarray.__getitem__):
    """Eager arrays indexed by traced indices (e.g. a constant table gathered with vmapped
    indices) go through the traced indexing path instead of NumPy's, which would try to
    concretize the tracer."""
    if _has_tracer(idx):
        return indexing.getitem(self, idx)
    return _ndarray_getitem(self, idx)


Array.__getitem__ = _array_getitem
