"""Contractions (dot_general) and linear solves, with their transposes and batching."""
from __future__ import annotations

import numpy as np

from .. import lax as L
from ..ad_util import Zero, add_tangents, is_undefined
from ..aval import ShapedArray
from ..backend import array_module
from ..primitive import (
    Primitive,
    batch_rules,
    impl_rules,
    jvp_rules,
    shape_rules,
    transpose_rules,
)

# ---- dot_general --------------------------------------------------------------------------------
# dimension_numbers = ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch));
# output axes: batch, then lhs free axes, then rhs free axes (as jax.lax.dot_general).

dot_general_p = Primitive("dot_general")


def _free(ndim, contract, batch):
    return [i for i in range(ndim) if i not in contract and i not in batch]


def _dot_impl(x, y, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    xp = array_module(x, y)
    xs, ys = np.shape(x), np.shape(y)
    lf, rf = _free(len(xs), lc, lb), _free(len(ys), rc, rb)
    bshape = tuple(xs[i] for i in lb)
    m = int(np.prod([xs[i] for i in lf], dtype=np.int64))
    n = int(np.prod([ys[i] for i in rf], dtype=np.int64))
    k = int(np.prod([xs[i] for i in lc], dtype=np.int64))
    b = int(np.prod(bshape, dtype=np.int64))
    a = xp.transpose(x, list(lb) + lf + list(lc)).reshape(b, m, k)
    c = xp.transpose(y, list(rb) + list(rc) + rf).reshape(b, k, n)
    if not lc:  # no contraction: a (batched) outer product, cheaper as a broadcast multiply
        out = a * c
    elif b == 1:
        out = xp.dot(a[0], c[0])[None]
    else:
        out = xp.matmul(a, c)
    return out.reshape(bshape + tuple(xs[i] for i in lf) + tuple(ys[i] for i in rf))


def _dot_shape(x, y, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    ok = len(lc) == len(rc) and len(lb) == len(rb)
    ok = ok and all(x.shape[i] == y.shape[j] for i, j in zip(lc, rc))
    ok = ok and all(x.shape[i] == y.shape[j] for i, j in zip(lb, rb))
    if not ok:
        raise TypeError(
            f"dot_general: incompatible shapes {x.shape} and {y.shape} for contracting "
            f"dims {lc}/{rc} and batch dims {lb}/{rb}"
        )
    if x.dtype != y.dtype:
        raise TypeError(f"dot_general: dtypes differ ({x.dtype.name}, {y.dtype.name})")
    lf, rf = _free(x.ndim, lc, lb), _free(y.ndim, rc, rb)
    shape = tuple(x.shape[i] for i in lb) + tuple(x.shape[i] for i in lf)
    return ShapedArray(shape + tuple(y.shape[i] for i in rf), x.dtype)


def _dot_jvp(primals, tangents, *, dimension_numbers):
    x, y = primals
    tx, ty = tangents
    ans = dot_general_p.bind(x, y, dimension_numbers=dimension_numbers)
    out = Zero(ShapedArray(L.shape(ans), L.dtype(ans)))
    if type(tx) is not Zero:
        out = dot_general_p.bind(tx, y, dimension_numbers=dimension_numbers)
    if type(ty) is not Zero:
        out = add_tangents(out, dot_general_p.bind(x, ty, dimension_numbers=dimension_numbers))
    return [ans], [out]


def _ranges(*lengths):
    out, start = [], 0
    for n in lengths:
        out.append(list(range(start, start + n)))
        start += n
    return out


def _transpose_lhs(ct, x_aval, y, dimension_numbers, swap_ans=False):
    """Cotangent of x in out = dot_general(x, y): contract ct with y over y's free axes,
    then permute into x's axis order."""
    (xc, yc), (xb, yb) = dimension_numbers
    x_ndim, y_ndim = x_aval.ndim, L.ndim(y)
    x_kept = _free(x_ndim, xc, xb)
    y_kept = _free(y_ndim, yc, yb)
    if swap_ans:
        ans_batch, ans_y, _ = _ranges(len(xb), len(y_kept), len(x_kept))
    else:
        ans_batch, _, ans_y = _ranges(len(xb), len(x_kept), len(y_kept))
    dims = ((tuple(ans_y), tuple(y_kept)), (tuple(ans_batch), tuple(yb)))
    # result axes: batch, ct's remaining (x kept) axes, then y's contracted axes in y order
    x_contract_by_y = [xc[i] for i in np.argsort(yc)]
    out_axes = np.argsort(list(xb) + x_kept + x_contract_by_y)
    return L.transpose(dot_general_p.bind(ct, y, dimension_numbers=dims), tuple(out_axes))


def _dot_transpose(ct, x, y, *, dimension_numbers):
    if is_undefined(x) and is_undefined(y):
        raise TypeError("dot_general: transpose of a product of two linear values")
    if is_undefined(x):
        return [_transpose_lhs(ct, x.aval, y, dimension_numbers), None]
    (xc, yc), (xb, yb) = dimension_numbers
    swapped = ((yc, xc), (yb, xb))
    return [None, _transpose_lhs(ct, y.aval, x, swapped, swap_ans=True)]


def _dot_batch(n, vals, dims, *, dimension_numbers):
    (x, y), (dx, dy) = vals, dims
    (lc, rc), (lb, rb) = dimension_numbers
    shift = lambda axes, d: tuple(a + 1 if a >= d else a for a in axes)
    if dx is not None and dy is not None:
        x, y = L.moveaxis(x, dx, 0), L.moveaxis(y, dy, 0)
        dn = ((shift(lc, 0), shift(rc, 0)), ((0,) + shift(lb, 0), (0,) + shift(rb, 0)))
        return dot_general_p.bind(x, y, dimension_numbers=dn), 0
    if dx is not None:
        dn = ((shift(lc, dx), rc), (shift(lb, dx), rb))
        lf = _free(L.ndim(x), dn[0][0], dn[1][0])
        return dot_general_p.bind(x, y, dimension_numbers=dn), len(lb) + lf.index(dx)
    dn = ((lc, shift(rc, dy)), (lb, shift(rb, dy)))
    lf = _free(L.ndim(x), lc, lb)
    rf = _free(L.ndim(y), dn[0][1], dn[1][1])
    return dot_general_p.bind(x, y, dimension_numbers=dn), len(lb) + len(lf) + rf.index(dy)


impl_rules[dot_general_p] = _dot_impl
shape_rules[dot_general_p] = _dot_shape
jvp_rules[dot_general_p] = _dot_jvp
transpose_rules[dot_general_p] = _dot_transpose
batch_rules[dot_general_p] = _dot_batch

# ---- solve --------------------------------------------------------------------------------------
# solve(a, b): a (..., n, n), b (..., n, k) with equal leading (batch) shapes.

solve_p = Primitive("solve")


def _solve_shape(a, b):
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise TypeError(f"solve: the matrix must be square (..., n, n), got {a.shape}")
    if b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2] or b.shape[-2] != a.shape[-1]:
        raise TypeError(f"solve: right-hand side {b.shape} does not match matrix {a.shape}")
    if a.dtype != b.dtype:
        raise TypeError(f"solve: dtypes differ ({a.dtype.name}, {b.dtype.name})")
    return ShapedArray(b.shape, b.dtype)


def _solve_impl(a, b):
    return array_module(a, b).linalg.solve(a, b)


def _mT(x):
    n = L.ndim(x)
    return L.transpose(x, tuple(range(n - 2)) + (n - 1, n - 2))


def _batched_matmul(x, y):
    n = L.ndim(x)
    batch = tuple(range(n - 2))
    return L.dot_general(x, y, (((n - 1,), (n - 2,)), (batch, batch)))


def _solve_jvp(primals, tangents):
    """x = a^-1 b  =>  dx = a^-1 (db - da x): differentiated implicitly by solving again."""
    a, b = primals
    ta, tb = tangents
    x = solve_p.bind(a, b)
    rhs = Zero(ShapedArray(L.shape(x), L.dtype(x)))
    if type(tb) is not Zero:
        rhs = tb
    if type(ta) is not Zero:
        da_x = _batched_matmul(ta, x)
        rhs = L.neg(da_x) if type(rhs) is Zero else L.sub(rhs, da_x)
    return [x], [solve_p.bind(a, rhs)]


def _solve_transpose(ct, a, b):
    if is_undefined(a):
        raise TypeError("solve: transpose with respect to the matrix (not linear)")
    return [None, solve_p.bind(_mT(a), ct)]


def _solve_batch(n, vals, dims):
    (a, b), (da, db) = vals, dims

    def front(v, d):
        if d is None:
            s = L.shape(v)
            return L.broadcast_in_dim(v, (n,) + tuple(s), tuple(range(1, len(s) + 1)))
        return L.moveaxis(v, d, 0)

    return solve_p.bind(front(a, da), front(b, db)), 0


impl_rules[solve_p] = _solve_impl
shape_rules[solve_p] = _solve_shape
jvp_rules[solve_p] = _solve_jvp
transpose_rules[solve_p] = _solve_transpose
batch_rules[solve_p] = _solve_batch
