"""reaxgrad.core.numpy.linalg: solve (differentiated implicitly), inv, norm, det-free helpers."""
from __future__ import annotations

import numpy as np

from .. import lax
from ._base import asarray, broadcast_shapes, broadcast_to_shape, normalize_axes, promote


def solve(a, b):
    """Solve a x = b. b is a vector if it is 1-D (NumPy 2 semantics), else (..., n, k)."""
    a, b = promote("solve", asarray(a), asarray(b), to_float=True)
    sa, sb = tuple(lax.shape(a)), tuple(lax.shape(b))
    if len(sa) < 2 or sa[-1] != sa[-2]:
        raise ValueError(f"solve: a must be a (..., n, n) square matrix, got shape {sa}")
    n = sa[-1]
    vector = len(sb) == 1
    if vector:
        if sb[0] != n:
            raise ValueError(f"solve: b of shape {sb} does not match a of shape {sa}")
        b, sb = lax.reshape(b, (n, 1)), (n, 1)
    if sb[-2] != n:
        raise ValueError(f"solve: b of shape {sb} does not match a of shape {sa}")
    batch = broadcast_shapes("solve", sa[:-2], sb[:-2])
    a = broadcast_to_shape(a, batch + sa[-2:])
    b = broadcast_to_shape(b, batch + sb[-2:])
    x = lax.solve(a, b)
    if vector:
        return lax.reshape(x, batch + (n,))
    return x


def inv(a):
    a = asarray(a)
    n = lax.shape(a)[-1]
    eye = np.eye(n, dtype=lax.dtype(a) if np.issubdtype(lax.dtype(a), np.inexact) else float)
    return solve(a, broadcast_to_shape(eye, tuple(lax.shape(a))))


def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    """Vector norms (ord None/2, 1, inf, -inf, p) and the Frobenius norm of matrices."""
    from .math import abs as _abs
    from .math import power, sqrt
    from .reductions import max as _max
    from .reductions import min as _min
    from .reductions import sum as _sum

    x = asarray(x)
    if not np.issubdtype(lax.dtype(x), np.inexact):
        x = lax.convert_element_type(x, np.float64)
    nd = len(lax.shape(x))
    axes = normalize_axes("norm", axis, nd)
    if len(axes) == 2 and ord not in (None, "fro"):
        raise NotImplementedError(f"norm: matrix norm ord={ord!r} (only 'fro' is supported)")
    if len(axes) > 2:
        raise ValueError("norm: improper number of dimensions to norm")
    if ord in (None, 2, "fro"):
        return sqrt(_sum(lax.mul(x, x), axes, keepdims))
    if ord == 1:
        return _sum(_abs(x), axes, keepdims)
    if ord == np.inf:
        return _max(_abs(x), axes, keepdims)
    if ord == -np.inf:
        return _min(_abs(x), axes, keepdims)
    if ord == 0:
        return _sum(lax.convert_element_type(lax.ne(x, lax.scalar(x, 0)), lax.dtype(x)), axes,
                    keepdims)
    return power(_sum(power(_abs(x), float(ord)), axes, keepdims), 1.0 / ord)
