"""Structural primitives: broadcast, reshape, transpose, reductions, slice, pad, concatenate."""
from __future__ import annotations

import numpy as np

from .. import lax as L
from ..ad_util import instantiate, is_undefined
from ..aval import ShapedArray
from ..primitive import (
    Primitive,
    batch_rules,
    impl_rules,
    jvp_rules,
    shape_rules,
    transpose_rules,
)


def _linear_jvp(p):
    """JVP of a primitive linear in all its inputs: apply it to the tangents."""

    def jvp(primals, tangents, **params):
        ans = p.bind(*primals, **params)
        ts = [instantiate(t) for t in tangents]
        return [ans], [p.bind(*ts, **params)]

    jvp_rules[p] = jvp


def _move_to_front(x, d):
    return L.moveaxis(x, d, 0) if d is not None else x


# ---- broadcast_in_dim -------------------------------------------------------------------------

broadcast_in_dim_p = Primitive("broadcast_in_dim")


def _broadcast_impl(x, *, shape, broadcast_dimensions):
    expanded = [1] * len(shape)
    for src, dst in enumerate(broadcast_dimensions):
        expanded[dst] = np.shape(x)[src]
    return np.broadcast_to(np.reshape(x, expanded), shape)


def _broadcast_shape(x, *, shape, broadcast_dimensions):
    if len(broadcast_dimensions) != x.ndim or any(
        x.shape[i] not in (1, shape[d]) for i, d in enumerate(broadcast_dimensions)
    ):
        raise TypeError(
            f"broadcast_in_dim: cannot broadcast shape {x.shape} to {shape} "
            f"with broadcast_dimensions {broadcast_dimensions}"
        )
    return ShapedArray(shape, x.dtype)


def _broadcast_transpose(ct, x, *, shape, broadcast_dimensions):
    in_shape = x.aval.shape
    new_dims = [d for d in range(len(shape)) if d not in broadcast_dimensions]
    expanded = [
        d for i, d in enumerate(broadcast_dimensions) if in_shape[i] == 1 and shape[d] != 1
    ]
    summed = L.reduce_sum(ct, tuple(new_dims) + tuple(expanded))
    return [L.reshape(summed, in_shape)]


def _broadcast_batch(axis_size, vals, dims, *, shape, broadcast_dimensions):
    (x,), (d,) = vals, dims
    x = _move_to_front(x, d)
    return (
        L.broadcast_in_dim(
            x, (axis_size,) + shape, (0,) + tuple(b + 1 for b in broadcast_dimensions)
        ),
        0,
    )


impl_rules[broadcast_in_dim_p] = _broadcast_impl
shape_rules[broadcast_in_dim_p] = _broadcast_shape
transpose_rules[broadcast_in_dim_p] = _broadcast_transpose
batch_rules[broadcast_in_dim_p] = _broadcast_batch
_linear_jvp(broadcast_in_dim_p)

# ---- reshape ------------------------------------------------------------------------------------

reshape_p = Primitive("reshape")


def _reshape_shape(x, *, new_sizes):
    if int(np.prod(new_sizes, dtype=np.int64)) != x.size:
        raise TypeError(f"reshape: cannot reshape array of shape {x.shape} into {new_sizes}")
    return ShapedArray(new_sizes, x.dtype)


impl_rules[reshape_p] = lambda x, *, new_sizes: np.reshape(x, new_sizes)
shape_rules[reshape_p] = _reshape_shape
transpose_rules[reshape_p] = lambda ct, x, *, new_sizes: [L.reshape(ct, x.aval.shape)]
batch_rules[reshape_p] = lambda n, vals, dims, *, new_sizes: (
    L.reshape(_move_to_front(vals[0], dims[0]), (n,) + new_sizes),
    0,
)
_linear_jvp(reshape_p)

# ---- transpose ----------------------------------------------------------------------------------

transpose_p = Primitive("transpose")


def _transpose_shape(x, *, permutation):
    if sorted(permutation) != list(range(x.ndim)):
        raise TypeError(f"transpose: {permutation} is not a permutation of the axes of {x.shape}")
    return ShapedArray(tuple(x.shape[p] for p in permutation), x.dtype)


impl_rules[transpose_p] = lambda x, *, permutation: np.transpose(x, permutation)
shape_rules[transpose_p] = _transpose_shape
transpose_rules[transpose_p] = lambda ct, x, *, permutation: [
    L.transpose(ct, tuple(np.argsort(permutation)))
]
batch_rules[transpose_p] = lambda n, vals, dims, *, permutation: (
    L.transpose(_move_to_front(vals[0], dims[0]), (0,) + tuple(p + 1 for p in permutation)),
    0,
)
_linear_jvp(transpose_p)

# ---- reductions ---------------------------------------------------------------------------------


def _reduce_shape(name):
    def rule(x, *, axes):
        if any(a < 0 or a >= x.ndim for a in axes):
            raise ValueError(f"{name}: axes {axes} out of range for shape {x.shape}")
        return ShapedArray(tuple(s for i, s in enumerate(x.shape) if i not in axes), x.dtype)

    return rule


def _reduce_batch(p):
    def rule(n, vals, dims, *, axes):
        (x,), (d,) = vals, dims
        new_axes = tuple(a + 1 if a >= d else a for a in axes)
        out_dim = d - sum(1 for a in axes if a < d)
        return p.bind(x, axes=new_axes), out_dim

    return rule


def _kept_dims(ndim, axes):
    return tuple(i for i in range(ndim) if i not in axes)


reduce_sum_p = Primitive("reduce_sum")


def _reduce_sum_impl(x, *, axes):
    """np.sum, except for sums over inner axes of float arrays, which NumPy does slowly: a
    short trailing block becomes a matrix-vector product, other inner axes an einsum."""
    nd = np.ndim(x)
    if nd < 2 or axes[0] == 0 or x.dtype.kind != "f" or len(axes) == nd:
        return np.sum(x, axis=axes)
    if not x.flags.c_contiguous:  # e.g. Fortran-ordered: NumPy's own reduction is fast
        return np.sum(x, axis=axes)
    shape = np.shape(x)
    if axes == tuple(range(nd - len(axes), nd)):
        k = int(np.prod([shape[a] for a in axes]))
        if k <= 32:
            from ..backend import array_module

            xp = array_module(x)
            flat = xp.reshape(x, (-1, k))
            return (flat @ xp.ones(k, dtype=x.dtype)).reshape(shape[: nd - len(axes)])
    kept = [i for i in range(nd) if i not in axes]
    return np.einsum(x, list(range(nd)), kept)


impl_rules[reduce_sum_p] = _reduce_sum_impl
shape_rules[reduce_sum_p] = _reduce_shape("reduce_sum")
batch_rules[reduce_sum_p] = _reduce_batch(reduce_sum_p)
transpose_rules[reduce_sum_p] = lambda ct, x, *, axes: [
    L.broadcast_in_dim(ct, x.aval.shape, _kept_dims(x.aval.ndim, axes))
]
_linear_jvp(reduce_sum_p)


def _reduce_chooser_jvp(p):
    """Tangent of max/min reductions: mean of the tangents at the locations of the extremum."""

    def jvp(primals, tangents, *, axes):
        (x,), (t,) = primals, tangents
        ans = p.bind(x, axes=axes)
        shape = L.shape(x)
        kept = _kept_dims(len(shape), axes)
        location = L.eq(x, L.broadcast_in_dim(ans, shape, kept))
        weights = L.convert_element_type(location, L.dtype(t))
        counts = L.reduce_sum(weights, axes)
        return [ans], [L.div(L.reduce_sum(L.mul(t, weights), axes), counts)]

    return jvp


reduce_max_p = Primitive("reduce_max")
reduce_min_p = Primitive("reduce_min")
for _p, _f in ((reduce_max_p, np.max), (reduce_min_p, np.min)):
    impl_rules[_p] = lambda x, *, axes, _f=_f: _f(x, axis=axes)
    shape_rules[_p] = _reduce_shape(_p.name)
    batch_rules[_p] = _reduce_batch(_p)
    jvp_rules[_p] = _reduce_chooser_jvp(_p)

# ---- slice and pad ------------------------------------------------------------------------------

slice_p = Primitive("slice")


def _slice_impl(x, *, start_indices, limit_indices, strides):
    return x[tuple(slice(s, e, st) for s, e, st in zip(start_indices, limit_indices, strides))]


def _slice_shape(x, *, start_indices, limit_indices, strides):
    if not (len(start_indices) == len(limit_indices) == len(strides) == x.ndim):
        raise TypeError(f"slice: index lengths do not match the rank of {x.shape}")
    shape = []
    for s, e, st, n in zip(start_indices, limit_indices, strides, x.shape):
        if not (0 <= s <= e <= n) or st < 1:
            raise IndexError(f"slice: [{s}:{e}:{st}] out of range for a dimension of size {n}")
        shape.append(max(0, (e - s + st - 1) // st))
    return ShapedArray(tuple(shape), x.dtype)


def _slice_transpose(ct, x, *, start_indices, limit_indices, strides):
    config = []
    for s, st, n, m in zip(start_indices, strides, x.aval.shape, L.shape(ct)):
        used = s + (m - 1) * st + 1 if m else s
        config.append((s, n - used, st - 1) if m else (s, n - s, 0))
    if any(m == 0 for m in L.shape(ct)):
        return [L.zeros(x.aval.shape, x.aval.dtype)]
    return [L.pad(ct, config)]


def _slice_batch(n, vals, dims, *, start_indices, limit_indices, strides):
    (x,), (d,) = vals, dims
    size = L.shape(x)[d]
    ins = lambda t, v: t[:d] + (v,) + t[d:]
    return (
        L.slice(x, ins(start_indices, 0), ins(limit_indices, size), ins(strides, 1)),
        d,
    )


impl_rules[slice_p] = _slice_impl
shape_rules[slice_p] = _slice_shape
transpose_rules[slice_p] = _slice_transpose
batch_rules[slice_p] = _slice_batch
_linear_jvp(slice_p)

pad_p = Primitive("pad")


def _pad_impl(x, *, padding_config):
    shape = tuple(
        lo + hi + n + max(0, n - 1) * interior
        for (lo, hi, interior), n in zip(padding_config, np.shape(x))
    )
    from ..backend import array_module

    xp = array_module(x)
    out = xp.zeros(shape, dtype=x.dtype)
    out[
        tuple(
            slice(lo, lo + max(0, n - 1) * (interior + 1) + 1, interior + 1)
            for (lo, hi, interior), n in zip(padding_config, np.shape(x))
        )
    ] = x
    return out


def _pad_shape(x, *, padding_config):
    if len(padding_config) != x.ndim or any(v < 0 for c in padding_config for v in c):
        raise TypeError(f"pad: bad padding {padding_config} for shape {x.shape}")
    shape = tuple(
        lo + hi + n + max(0, n - 1) * interior
        for (lo, hi, interior), n in zip(padding_config, x.shape)
    )
    return ShapedArray(shape, x.dtype)


def _pad_transpose(ct, x, *, padding_config):
    starts, limits, strides = [], [], []
    for (lo, _hi, interior), n in zip(padding_config, x.aval.shape):
        starts.append(lo)
        limits.append(lo + max(0, n - 1) * (interior + 1) + 1 if n else lo)
        strides.append(interior + 1)
    return [L.slice(ct, starts, limits, strides)]


impl_rules[pad_p] = _pad_impl
shape_rules[pad_p] = _pad_shape
transpose_rules[pad_p] = _pad_transpose
batch_rules[pad_p] = lambda n, vals, dims, *, padding_config: (
    L.pad(vals[0], padding_config[: dims[0]] + ((0, 0, 0),) + padding_config[dims[0] :]),
    dims[0],
)
_linear_jvp(pad_p)

# ---- concatenate --------------------------------------------------------------------------------

concatenate_p = Primitive("concatenate")


def _concat_shape(*xs, dimension):
    x0 = xs[0]
    if not 0 <= dimension < x0.ndim:
        raise ValueError(f"concatenate: axis {dimension} out of range for rank {x0.ndim}")
    for x in xs:
        if x.ndim != x0.ndim or any(
            a != b for i, (a, b) in enumerate(zip(x.shape, x0.shape)) if i != dimension
        ):
            raise TypeError(
                "concatenate: shapes must agree except along the axis, got "
                + ", ".join(str(y.shape) for y in xs)
            )
        if x.dtype != x0.dtype:
            raise TypeError("concatenate: dtypes must match")
    size = sum(x.shape[dimension] for x in xs)
    return ShapedArray(x0.shape[:dimension] + (size,) + x0.shape[dimension + 1 :], x0.dtype)


def _concat_transpose(ct, *xs, dimension):
    outs, start = [], 0
    shape = L.shape(ct)
    for x in xs:
        aval = x.aval if is_undefined(x) else None
        size = (aval.shape if aval else L.shape(x))[dimension]
        if aval is not None:
            starts = [0] * len(shape)
            limits = list(shape)
            starts[dimension], limits[dimension] = start, start + size
            outs.append(L.slice(ct, starts, limits))
        else:
            outs.append(None)
        start += size
    return outs


def _concat_batch(n, vals, dims, *, dimension):
    moved = []
    for v, d in zip(vals, dims):
        if d is None:
            shape = L.shape(v)
            v = L.broadcast_in_dim(v, (n,) + tuple(shape), tuple(range(1, len(shape) + 1)))
        else:
            v = L.moveaxis(v, d, 0)
        moved.append(v)
    return L.concatenate(moved, dimension + 1), 0


impl_rules[concatenate_p] = lambda *xs, dimension: np.concatenate(xs, axis=dimension)
shape_rules[concatenate_p] = _concat_shape
transpose_rules[concatenate_p] = _concat_transpose
batch_rules[concatenate_p] = _concat_batch
_linear_jvp(concatenate_p)

