"""reaxgrad.core.numpy: a NumPy-like API whose functions work on concrete arrays and on traced
values alike (like jax.numpy). Float64 by default."""
from __future__ import annotations

import numpy as _np

from . import linalg, methods  # noqa: F401  (methods attaches operators to tracers)
from ._base import asarray, result_type
from .creation import (
    arange,
    array,
    empty,
    eye,
    full,
    full_like,
    identity,
    linspace,
    ones,
    ones_like,
    zeros,
    zeros_like,
)
from .indexing import getitem
from .math import (
    abs,
    absolute,
    add,
    arccos,
    arcsin,
    arctan,
    arctan2,
    astype,
    cbrt,
    ceil,
    clip,
    cos,
    cosh,
    divide,
    equal,
    exp,
    exp2,
    expm1,
    floor,
    floor_divide,
    greater,
    greater_equal,
    isfinite,
    isnan,
    less,
    less_equal,
    log,
    log1p,
    log2,
    log10,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    maximum,
    minimum,
    mod,
    multiply,
    negative,
    not_equal,
    positive,
    power,
    reciprocal,
    remainder,
    rint,
    sign,
    sin,
    sinh,
    sqrt,
    square,
    stop_gradient,
    subtract,
    tan,
    tanh,
    true_divide,
    where,
)
from .math import round_ as round  # noqa: A004
from .products import dot, einsum, inner, matmul, outer, tensordot, vdot
from .reductions import all, amax, amin, any, max, mean, min, prod, sum
from .shape import (
    atleast_1d,
    broadcast_arrays,
    broadcast_to,
    concatenate,
    expand_dims,
    hstack,
    moveaxis,
    ravel,
    reshape,
    split,
    squeeze,
    stack,
    swapaxes,
    take,
    transpose,
    vstack,
)

float16, float32, float64 = _np.float16, _np.float32, _np.float64
int8, int16, int32, int64 = _np.int8, _np.int16, _np.int32, _np.int64
uint8, uint32, uint64 = _np.uint8, _np.uint32, _np.uint64
bool_ = _np.bool_
pi, e, inf, nan, newaxis = _np.pi, _np.e, _np.inf, _np.nan, None
dtype = _np.dtype
ndarray = _np.ndarray


def shape(x):
    return tuple(asarray(x).shape)


def ndim(x):
    return len(shape(x))


def size(x):
    return int(_np.prod(shape(x), dtype=_np.int64))


def cross(a, b):
    """Cross product of 3-vectors along the last axis."""
    a, b = asarray(a), asarray(b)
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def cumsum(x, axis=None):
    """Cumulative sum as a lower-triangular contraction (small axes; differentiable)."""
    x = asarray(x)
    if axis is None:
        x, axis = ravel(x), 0
    n = shape(x)[axis]
    tri = _np.tril(_np.ones((n, n), dtype=x.dtype))
    moved = moveaxis(x, axis, -1)
    return moveaxis(matmul(moved, tri.T), -1, axis)
