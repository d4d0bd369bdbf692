"""Helpers of the numpy-like layer: conversion, dtype promotion (NumPy 2 rules, Python scalars
weakly typed), explicit broadcasting, axis normalization."""
from __future__ import annotations

import numpy as np

from .. import lax
from ..array import as_array
from ..trace import Tracer, get_aval


def is_traced(x) -> bool:
    return isinstance(x, Tracer)


def asarray(x, dtype=None):
    """A traced value or an eager `Array` (NumPy data, float64 by default for Python floats)."""
    if isinstance(x, Tracer):
        return lax.convert_element_type(x, dtype) if dtype is not None else x
    if isinstance(x, (list, tuple)) and _contains_tracer(x):
        from .shape import stack

        return stack([asarray(v, dtype) for v in x])
    return as_array(np.asarray(x, dtype=dtype))


def _contains_tracer(xs) -> bool:
    for v in xs:
        if isinstance(v, Tracer):
            return True
        if isinstance(v, (list, tuple)) and _contains_tracer(v):
            return True
    return False


def _is_weak(x) -> bool:
    return isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic)


def _dtype(x) -> np.dtype:
    dt = getattr(x, "dtype", None)  # arrays, NumPy scalars and tracers carry one
    return dt if dt is not None else get_aval(x).dtype


def result_type(*xs) -> np.dtype:
    """NumPy 2 promotion where Python scalars are weak (float32 * 2.0 stays float32)."""
    strong = [_dtype(x) for x in xs if not _is_weak(x)]
    if len(strong) == len(xs) and all(d == strong[0] for d in strong):
        return strong[0]  # the common case: one dtype, no Python scalars
    weak = [x for x in xs if _is_weak(x)]
    if not strong:
        return np.result_type(*[np.asarray(w).dtype for w in weak])
    return np.result_type(*strong, *weak)


def convert(x, dtype):
    if isinstance(x, Tracer):
        return lax.convert_element_type(x, dtype)
    if isinstance(x, np.ndarray) and x.dtype == dtype:
        return x
    return np.asarray(x, dtype=dtype)


def promote(name: str, *xs, to_float: bool = False):
    dt = result_type(*xs)
    if to_float and not np.issubdtype(dt, np.inexact):
        dt = np.dtype(np.float64)
    return [convert(x, dt) for x in xs]


def broadcast_shapes(name: str, *shapes) -> tuple:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(
            f"{name}: shapes {', '.join(str(tuple(s)) for s in shapes)} cannot be broadcast "
            f"together"
        ) from None


def broadcast_to_shape(x, shape):
    s = tuple(lax.shape(x))
    if s == tuple(shape):
        return x
    nd = len(shape)
    return lax.broadcast_in_dim(x, shape, tuple(range(nd - len(s), nd)))


def broadcast_args(name: str, *xs):
    """Broadcast arguments to one shape; rank-0 ones stay rank 0 (primitives accept them)."""
    shapes = [tuple(lax.shape(x)) for x in xs]
    if all(s == shapes[0] for s in shapes):
        return list(xs)
    shape = broadcast_shapes(name, *shapes)
    return [
        x if s == () or s == shape else broadcast_to_shape(x, shape)
        for x, s in zip(xs, shapes)
    ]


def normalize_axis(name: str, axis: int, ndim: int) -> int:
    if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise ValueError(
            f"{name}: axis {axis} is out of bounds for array of dimension {ndim}"
        )
    return axis % ndim if ndim else 0


def normalize_axes(name: str, axis, ndim: int) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = tuple(normalize_axis(name, a, ndim) for a in axis)
        if len(set(axes)) != len(axes):
            raise ValueError(f"{name}: repeated axis in {axis}")
        return axes
    return (normalize_axis(name, int(axis), ndim),)
