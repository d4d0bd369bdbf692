"""Gather and scatter along axis 0 with integer index arrays; the numpy-like layer maps any
axis and `.at[...]` updates onto these."""
from __future__ import annotations

import numpy as np

from .. import lax as L
from ..ad_util import Zero, instantiate, is_undefined
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


def _check_index(name, idx):
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"{name}: indices must be integers, got {idx.dtype.name}")


# ---- gather -------------------------------------------------------------------------------------

gather_p = Primitive("gather")


def _gather_shape(x, idx):
    _check_index("gather", idx)
    if x.ndim == 0:
        raise TypeError("gather: cannot index a 0-d array")
    return ShapedArray(idx.shape + x.shape[1:], x.dtype)


def _gather_impl(x, idx):
    return array_module(x).take(x, idx, axis=0)


def _gather_jvp(primals, tangents):
    x, idx = primals
    return [gather_p.bind(x, idx)], [gather_p.bind(instantiate(tangents[0]), idx)]


def _gather_transpose(ct, x, idx):
    zeros = L.zeros(x.aval.shape, x.aval.dtype)
    return [scatter_add_p.bind(zeros, idx, ct), None]


def _batch_offsets(idx, n, rows):
    """Indices (B, ...) into a (B*rows, ...) flattened batch. Out-of-range indices are clamped
    into their own example's rows (as JAX clamps), never reaching another example."""
    idx = L.min(L.max(idx, L.scalar(idx, 0)), L.scalar(idx, rows - 1))
    shape = L.shape(idx)
    offs = np.arange(n, dtype=L.dtype(idx)) * rows
    offs = L.broadcast_in_dim(offs, shape, (0,))
    return L.add(idx, offs)


def _gather_batch(n, vals, dims):
    (x, idx), (dx, di) = vals, dims
    if di is None:  # only x batched: keep gathering along x's axis 0
        x = L.moveaxis(x, dx, 1)
        return gather_p.bind(x, idx), L.ndim(idx)
    if dx is None:  # only the indices batched
        return gather_p.bind(x, idx), di
    x = L.moveaxis(x, dx, 0)
    idx = L.moveaxis(idx, di, 0)
    shape = L.shape(x)
    flat = L.reshape(x, (shape[0] * shape[1],) + tuple(shape[2:]))
    return gather_p.bind(flat, _batch_offsets(idx, n, shape[1])), 0


impl_rules[gather_p] = _gather_impl
shape_rules[gather_p] = _gather_shape
jvp_rules[gather_p] = _gather_jvp
transpose_rules[gather_p] = _gather_transpose
batch_rules[gather_p] = _gather_batch

# ---- scatters -----------------------------------------------------------------------------------


def _scatter_shape(name):
    def rule(operand, idx, updates):
        _check_index(name, idx)
        expected = idx.shape + operand.shape[1:]
        if updates.shape != expected:
            raise TypeError(
                f"{name}: updates of shape {updates.shape} do not match indices "
                f"{idx.shape} into an operand {operand.shape} (expected {expected})"
            )
        if updates.dtype != operand.dtype:
            raise TypeError(f"{name}: dtypes differ ({operand.dtype.name}, {updates.dtype.name})")
        return ShapedArray(operand.shape, operand.dtype)

    return rule


def _scatter_add_impl(operand, idx, updates):
    xp = array_module(operand, updates)
    n = operand.shape[0]
    if xp is np and operand.dtype.kind == "f" and idx.size:
        flat = np.ravel(idx)
        if flat.min() < 0:
            flat = np.where(flat < 0, flat + n, flat)
        upd = np.reshape(updates, (flat.size, -1))
        if upd.shape[1] <= 16:
            cols = [np.bincount(flat, upd[:, k], minlength=n) for k in range(upd.shape[1])]
            summed = np.stack(cols, axis=1).reshape(operand.shape)
            return operand + summed.astype(operand.dtype, copy=False)
    out = operand.copy()
    if xp is np:
        np.add.at(out, idx, updates)
    else:
        import cupyx

        cupyx.scatter_add(out, idx, updates)
    return out


def _scatter_set_impl(operand, idx, updates):
    out = operand.copy()
    out[idx] = updates
    return out


def _scatter_mul_impl(operand, idx, updates):
    out = operand.copy()
    np.multiply.at(out, idx, updates)
    return out


scatter_add_p = Primitive("scatter_add")
scatter_set_p = Primitive("scatter_set")
scatter_mul_p = Primitive("scatter_mul")
impl_rules[scatter_add_p] = _scatter_add_impl
impl_rules[scatter_set_p] = _scatter_set_impl
impl_rules[scatter_mul_p] = _scatter_mul_impl
for _p in (scatter_add_p, scatter_set_p, scatter_mul_p):
    shape_rules[_p] = _scatter_shape(_p.name)


def _linear_scatter_jvp(p):
    def jvp(primals, tangents):
        operand, idx, updates = primals
        t_op, _, t_up = (instantiate(t) for t in tangents)
        return [p.bind(operand, idx, updates)], [p.bind(t_op, idx, t_up)]

    return jvp


jvp_rules[scatter_add_p] = _linear_scatter_jvp(scatter_add_p)
jvp_rules[scatter_set_p] = _linear_scatter_jvp(scatter_set_p)


def _scatter_add_transpose(ct, operand, idx, updates):
    return [
        ct if is_undefined(operand) else None,
        None,
        gather_p.bind(ct, idx) if is_undefined(updates) else None,
    ]


def _scatter_set_transpose(ct, operand, idx, updates):
    ct_op = None
    if is_undefined(operand):
        ct_op = scatter_set_p.bind(ct, idx, L.zeros(updates.aval.shape if is_undefined(updates)
                                                    else L.shape(updates), L.dtype(ct)))
    return [ct_op, None, gather_p.bind(ct, idx) if is_undefined(updates) else None]


transpose_rules[scatter_add_p] = _scatter_add_transpose
transpose_rules[scatter_set_p] = _scatter_set_transpose


def _scatter_mul_jvp(primals, tangents):
    """out[j] = operand[j] * prod_{k: idx[k]=j} u[k]. The derivative w.r.t. u[k] needs the
    product of the other factors of its segment, computed exactly even when some are zero."""
    operand, idx, u = primals
    t_op, _, t_u = tangents
    ans = scatter_mul_p.bind(operand, idx, u)
    out = Zero(ShapedArray(L.shape(ans), L.dtype(ans)))
    if type(t_op) is not Zero:
        out = scatter_mul_p.bind(t_op, idx, u)
    if type(t_u) is not Zero:
        ones = L.full(L.shape(operand), 1, L.dtype(u))
        zero = L.scalar(u, 0)
        is_zero = L.eq(u, zero)
        nonzero_u = L.select(is_zero, L.scalar(u, 1), u)
        prod_nonzero = scatter_mul_p.bind(ones, idx, nonzero_u)  # product of nonzero factors
        zero_count = scatter_add_p.bind(
            L.zeros(L.shape(operand), L.dtype(u)), idx, L.convert_element_type(is_zero, L.dtype(u))
        )
        pn = gather_p.bind(prod_nonzero, idx)
        zc = gather_p.bind(zero_count, idx)
        others = L.select(
            is_zero,
            L.select(L.eq(zc, L.scalar(u, 1)), pn, L.scalar(u, 0)),
            L.select(L.eq(zc, L.scalar(u, 0)), L.div(pn, nonzero_u), L.scalar(u, 0)),
        )
        contrib = L.mul(L.mul(t_u, others), gather_p.bind(operand, idx))
        zeros = L.zeros(L.shape(operand), L.dtype(u))
        du = scatter_add_p.bind(zeros, idx, contrib)
        out = du if type(out) is Zero else L.add(out, du)
    return [ans], [out]


def _scatter_mul_transpose(ct, operand, idx, updates):
    if is_undefined(updates):
        raise TypeError("scatter_mul: transpose with respect to the factors (not linear)")
    return [scatter_mul_p.bind(ct, idx, updates), None, None]


jvp_rules[scatter_mul_p] = _scatter_mul_jvp
transpose_rules[scatter_mul_p] = _scatter_mul_transpose


def _scatter_batch(p):
    def rule(n, vals, dims):
        (operand, idx, updates), (do, di, du) = vals, dims
        op_shape = L.shape(operand)
        if di is None:
            # operand batched at axis 1 so that the scatter stays along axis 0
            if do is None:
                operand = L.broadcast_in_dim(
                    operand, (op_shape[0], n) + tuple(op_shape[1:]),
                    (0,) + tuple(range(2, len(op_shape) + 1)),
                )
            else:
                operand = L.moveaxis(operand, do, 1)
            k = L.ndim(idx)
            if du is None:
                up_shape = L.shape(updates)
                updates = L.broadcast_in_dim(
                    updates, up_shape[:k] + (n,) + tuple(up_shape[k:]),
                    tuple(range(k)) + tuple(range(k + 1, len(up_shape) + 1)),
                )
            else:
                updates = L.moveaxis(updates, du, k)
            return p.bind(operand, idx, updates), 1
        # batched indices: flatten the batch into the scattered axis
        def front(v, d):
            if d is None:
                s = L.shape(v)
                return L.broadcast_in_dim(v, (n,) + tuple(s), tuple(range(1, len(s) + 1)))
            return L.moveaxis(v, d, 0)

        operand, idx, updates = front(operand, do), front(idx, di), front(updates, du)
        s = L.shape(operand)
        flat = L.reshape(operand, (s[0] * s[1],) + tuple(s[2:]))
        out = p.bind(flat, _batch_offsets(idx, n, s[1]), updates)
        return L.reshape(out, s), 0

    return rule


for _p in (scatter_add_p, scatter_set_p, scatter_mul_p):
    batch_rules[_p] = _scatter_batch(_p)
