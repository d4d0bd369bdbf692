"""Reductions over axes (sum, prod, mean, max, min, any, all) with keepdims."""
from __future__ import annotations

import builtins

import numpy as np

from .. import lax
from ._base import asarray, convert, normalize_axes


def _keep(x, out, axes, keepdims):
    if not keepdims:
        return out
    shape = tuple(1 if i in axes else s for i, s in enumerate(lax.shape(x)))
    return lax.reshape(out, shape)


def sum(x, axis=None, keepdims=False, dtype=None):  # noqa: A001
    x = asarray(x)
    if dtype is not None:
        x = convert(x, np.dtype(dtype))
    elif lax.dtype(x) == np.bool_ or np.issubdtype(lax.dtype(x), np.integer):
        x = convert(x, np.int64) if lax.dtype(x) != np.uint64 else x
    axes = normalize_axes("sum", axis, len(lax.shape(x)))
    return _keep(x, lax.reduce_sum(x, axes), axes, keepdims)


def mean(x, axis=None, keepdims=False, dtype=None):
    x = asarray(x)
    if not np.issubdtype(lax.dtype(x), np.inexact):
        x = convert(x, np.float64)
    axes = normalize_axes("mean", axis, len(lax.shape(x)))
    count = int(np.prod([lax.shape(x)[a] for a in axes], dtype=np.int64))
    total = sum(x, axis, keepdims, dtype)
    return lax.div(total, lax.scalar(total, count))


def _chooser(name, fn):
    def op(x, axis=None, keepdims=False):
        x = asarray(x)
        axes = normalize_axes(name, axis, len(lax.shape(x)))
        if builtins.any(lax.shape(x)[a] == 0 for a in axes):
            raise ValueError(f"{name}: zero-size array to reduction operation has no identity")
        if not axes:
            return x
        return _keep(x, fn(x, axes), axes, keepdims)

    op.__name__ = name
    return op


max = amax = _chooser("max", lax.reduce_max)  # noqa: A001
min = amin = _chooser("min", lax.reduce_min)  # noqa: A001


def any(x, axis=None, keepdims=False):  # noqa: A001
    from .math import not_equal

    x = asarray(x)
    b = x if lax.dtype(x) == np.bool_ else not_equal(x, 0)
    return max(b, axis, keepdims)


def all(x, axis=None, keepdims=False):  # noqa: A001
    from .math import not_equal

    x = asarray(x)
    b = x if lax.dtype(x) == np.bool_ else not_equal(x, 0)
    return min(b, axis, keepdims)


def prod(x, axis=None, keepdims=False):
    """Product by a pairwise tree of multiplications: exact derivatives even with zeros."""
    x = asarray(x)
    if lax.dtype(x) == np.bool_:
        x = convert(x, np.int64)
    nd = len(lax.shape(x))
    axes = normalize_axes("prod", axis, nd)
    kept = [i for i in range(nd) if i not in axes]
    shape = lax.shape(x)
    y = lax.transpose(x, kept + list(axes))
    n = int(np.prod([shape[a] for a in axes], dtype=np.int64))
    outer = tuple(shape[i] for i in kept)
    y = lax.reshape(y, outer + (n,))
    if n == 0:
        return _keep(x, lax.full(outer, 1, lax.dtype(x)), axes, keepdims)
    while n > 1:
        if n % 2:
            one = lax.full(outer + (1,), 1, lax.dtype(x))
            y = lax.concatenate([y, one], len(outer))
            n += 1
        half = n // 2
        lo = lax.slice(y, (0,) * len(outer) + (0,), outer + (n,), (1,) * len(outer) + (2,))
        hi = lax.slice(y, (0,) * len(outer) + (1,), outer + (n,), (1,) * len(outer) + (2,))
        y = lax.mul(lo, hi)
        n = half
    return _keep(x, lax.reshape(y, outer), axes, keepdims)
