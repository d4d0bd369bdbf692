"""Array creation: concrete arrays (eager `Array`s), float64 by default."""
from __future__ import annotations

import numpy as np

from .. import lax
from ..array import as_array
from ._base import asarray, is_traced


def array(x, dtype=None, copy=True):
    out = asarray(x, dtype)
    if copy and not is_traced(out) and isinstance(x, np.ndarray) and out.base is x:
        return as_array(np.array(x, dtype=dtype))
    return out


def _shape(shape):
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def zeros(shape, dtype=None):
    return as_array(np.zeros(_shape(shape), dtype or np.float64))


def ones(shape, dtype=None):
    return as_array(np.ones(_shape(shape), dtype or np.float64))


def empty(shape, dtype=None):
    return zeros(shape, dtype)


def full(shape, fill_value, dtype=None):
    if is_traced(fill_value):
        return lax.broadcast_in_dim(
            lax.convert_element_type(fill_value, dtype) if dtype else fill_value,
            _shape(shape), (),
        )
    return as_array(np.full(_shape(shape), fill_value, dtype))


def zeros_like(x, dtype=None):
    if is_traced(x):
        return lax.zeros(x.shape, dtype or x.dtype)
    return as_array(np.zeros_like(np.asarray(x), dtype=dtype))


def ones_like(x, dtype=None):
    if is_traced(x):
        return lax.full(x.shape, 1, dtype or x.dtype)
    return as_array(np.ones_like(np.asarray(x), dtype=dtype))


def full_like(x, fill_value, dtype=None):
    if is_traced(x) or is_traced(fill_value):
        return full(lax.shape(x), fill_value, dtype or lax.dtype(x))
    return as_array(np.full_like(np.asarray(x), fill_value, dtype=dtype))


def arange(start, stop=None, step=None, dtype=None):
    if is_traced(start) or is_traced(stop) or is_traced(step):
        raise TypeError(
            "arange: its bounds must be concrete (the result's shape depends on them); pass "
            "them as static arguments"
        )
    if stop is None:
        return as_array(np.arange(start, dtype=dtype))
    return as_array(np.arange(start, stop, step if step is not None else 1, dtype=dtype))


def linspace(start, stop, num=50, endpoint=True, dtype=None):
    return as_array(np.linspace(start, stop, num, endpoint=endpoint, dtype=dtype))


def eye(N, M=None, k=0, dtype=None):  # noqa: N803
    return as_array(np.eye(N, M, k, dtype=dtype or np.float64))


def identity(n, dtype=None):
    return eye(n, dtype=dtype)
