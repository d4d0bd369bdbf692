"""Indexing of traced arrays (basic slices, integers, None, Ellipsis, integer-array gathers,
concrete boolean masks) and functional `.at[idx]` updates, mapped onto slice / gather /
scatter primitives."""
from __future__ import annotations

import numpy as np

from .. import lax
from ._base import asarray, broadcast_shapes, broadcast_to_shape, convert, is_traced


def _is_int_scalar(i) -> bool:
    return isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))


def _is_array_index(i) -> bool:
    if is_traced(i):
        return True
    return isinstance(i, np.ndarray) and i.ndim >= 0 and not _is_int_scalar(i)


def _canonical_items(idx):
    """Tuple of index items with lists -> arrays, boolean masks -> integer arrays."""
    idx = idx if isinstance(idx, tuple) else (idx,)
    out = []
    for i in idx:
        if isinstance(i, list):
            i = np.asarray(i)
        if is_traced(i):
            dt = lax.dtype(i)
            if dt == np.bool_:
                raise IndexError(
                    "boolean mask indexing of a traced array needs a concrete mask (its result "
                    "shape depends on the values); use where(mask, x, 0) instead"
                )
            if not np.issubdtype(dt, np.integer):
                raise IndexError(f"indices must be integers, got a traced array of {dt.name}")
            out.append(i)
        elif isinstance(i, np.ndarray) and i.dtype == np.bool_:
            out.extend(np.nonzero(i))
        elif isinstance(i, np.ndarray):
            if i.ndim and not np.issubdtype(i.dtype, np.integer):
                raise IndexError(f"indices must be integers, got an array of {i.dtype.name}")
            out.append(int(i) if i.ndim == 0 else i)
        elif i is None or i is Ellipsis or isinstance(i, slice) or _is_int_scalar(i):
            out.append(i)
        else:
            raise IndexError(
                f"only integers, slices, None, Ellipsis and integer or boolean arrays are valid "
                f"indices, got {type(i).__name__}"
            )
    return out


def _expand_ellipsis(items, ndim):
    n_ell = sum(1 for i in items if i is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = sum(1 for i in items if i is not None and i is not Ellipsis)
    if consumed > ndim:
        raise IndexError(
            f"too many indices for array: array is {ndim}-dimensional, but {consumed} were indexed"
        )
    if n_ell:
        k = items.index(Ellipsis)
        items = items[:k] + [slice(None)] * (ndim - consumed) + items[k + 1 :]
    else:
        items = items + [slice(None)] * (ndim - consumed)
    return items


def _normalize_index_array(i, n):
    """Non-negative indices (bounds-checked when concrete)."""
    if is_traced(i):
        zero = lax.scalar(i, 0)
        return lax.select(lax.lt(i, zero), lax.add(i, lax.scalar(i, n)), i)
    i = np.asarray(i)
    if i.size and (i.max() >= n or i.min() < -n):
        bad = i.max() if i.max() >= n else i.min()
        raise IndexError(f"index {bad} is out of bounds for axis with size {n}")
    return np.where(i < 0, i + n, i).astype(np.int64) if i.size else i.astype(np.int64)


def take_along_axis0(x, idx, axis):
    """x gathered with an integer index array along `axis`; idx's dims replace that axis."""
    shape = lax.shape(x)
    if not is_traced(idx):
        idx = np.asarray(idx)
    idx = _normalize_index_array(idx, shape[axis])
    moved = lax.moveaxis(x, axis, 0)
    out = lax.gather(moved, idx)
    k = len(lax.shape(idx))
    if axis == 0:
        return out
    perm = list(range(k, k + axis)) + list(range(k)) + list(range(k + axis, len(lax.shape(out))))
    return lax.transpose(out, perm)


def getitem(x, idx):
    x = asarray(x)
    shape = lax.shape(x)
    items = _expand_ellipsis(_canonical_items(idx), len(shape))
    has_adv = any(_is_array_index(i) for i in items)
    if has_adv and any(i is None for i in items):
        raise IndexError("combining None (newaxis) with array indices is not supported")
    starts, limits, strides = [], [], []
    squeeze, reversed_axes, adv, new_axes = [], [], {}, []
    axis = 0
    for pos, item in enumerate(items):
        if item is None:
            new_axes.append(pos)
            continue
        n = shape[axis]
        if isinstance(item, slice):
            s, e, st = item.indices(n)
            if st > 0:
                starts.append(s)
                limits.append(max(s, e))
                strides.append(st)
            else:
                starts.append(0)
                limits.append(n)
                strides.append(1)
                reversed_axes.append((axis, np.arange(s, e, st, dtype=np.int64)))
        elif _is_int_scalar(item):
            if not -n <= item < n:
                raise IndexError(f"index {item} is out of bounds for axis {axis} with size {n}")
            if has_adv:
                adv[axis] = np.asarray(item % n, dtype=np.int64)
                starts.append(0)
                limits.append(n)
                strides.append(1)
            else:
                starts.append(item % n)
                limits.append(item % n + 1)
                strides.append(1)
                squeeze.append(axis)
        else:
            adv[axis] = item
            starts.append(0)
            limits.append(n)
            strides.append(1)
        axis += 1
    out = x
    if any(s != 0 for s in starts) or tuple(limits) != tuple(shape) or any(s != 1 for s in strides):
        out = lax.slice(out, starts, limits, strides)
    for ax, ind in reversed_axes:
        out = take_along_axis0(out, ind, ax)
    if squeeze:
        out = lax.reshape(out, [s for i, s in enumerate(lax.shape(out)) if i not in squeeze])
    if new_axes:
        res_shape = list(lax.shape(out))
        for pos in new_axes:
            res_shape.insert(pos, 1)
        out = lax.reshape(out, res_shape)
    if not adv:
        return out
    return _advanced(out, adv)


def _advanced(x, adv: dict):
    """NumPy advanced indexing with integer arrays on the axes in `adv`."""
    shape = lax.shape(x)
    axes = sorted(adv)
    if len(axes) == 1:
        return take_along_axis0(x, adv[axes[0]], axes[0])
    idx_shapes = [tuple(lax.shape(adv[a])) for a in axes]
    bshape = broadcast_shapes("index arrays", *idx_shapes)
    contiguous = axes == list(range(axes[0], axes[0] + len(axes)))
    dest = axes[0] if contiguous else 0
    # bring the indexed axes together at `dest`, merge them, gather with a flat index
    rest = [i for i in range(len(shape)) if i not in axes]
    order = rest[:dest] + axes + rest[dest:]
    x = lax.transpose(x, order)
    sizes = [shape[a] for a in axes]
    merged = (
        tuple(shape[i] for i in rest[:dest]) + (int(np.prod(sizes)),)
        + tuple(shape[i] for i in rest[dest:])
    )
    x = lax.reshape(x, merged)
    flat = None
    stride = 1
    for a, n in reversed(list(zip(axes, sizes))):
        i = adv[a]
        i = _normalize_index_array(i if is_traced(i) else np.asarray(i), n)
        i = broadcast_to_shape(convert(i, np.int64), bshape)
        term = i if stride == 1 else lax.mul(i, lax.scalar(i, stride))
        flat = term if flat is None else lax.add(flat, term)
        stride *= n
    return take_along_axis0(x, flat, dest)


# ---- .at[...] ----------------------------------------------------------------------------------

def _scatter_target(x, idx):
    """(operand viewed so the update is along axis 0, integer indices, restore shape)."""
    shape = lax.shape(x)
    items = list(idx) if isinstance(idx, tuple) else [idx]
    while items and isinstance(items[-1], slice) and items[-1] == slice(None):
        items.pop()
    items = [np.asarray(i) if isinstance(i, list) else i for i in items]
    leading = items and len(items) <= len(shape) and all(
        _is_int_scalar(i)
        or (is_traced(i) and np.issubdtype(lax.dtype(i), np.integer))
        or (isinstance(i, np.ndarray) and np.issubdtype(i.dtype, np.integer))
        for i in items
    )
    if leading:
        k = len(items)
        sizes = shape[:k]
        bshape = broadcast_shapes(".at", *[tuple(lax.shape(i)) for i in items])
        flat, stride = None, 1
        for i, n in reversed(list(zip(items, sizes))):
            i = _normalize_index_array(i if is_traced(i) else np.asarray(i), n)
            i = broadcast_to_shape(convert(i, np.int64), bshape)
            term = i if stride == 1 else lax.mul(i, lax.scalar(i, stride))
            flat = term if flat is None else lax.add(flat, term)
            stride *= n
        operand = lax.reshape(x, (int(np.prod(sizes, dtype=np.int64)),) + tuple(shape[k:]))
        return operand, flat, shape
    if any(is_traced(i) for i in items):
        raise IndexError(
            ".at[]: traced indices are supported as integer arrays on the leading axes "
            "(x.at[i], x.at[i, j]); other traced index forms are not"
        )
    positions = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)
    positions = positions[tuple(items)] if items else positions
    return lax.reshape(x, (int(np.prod(shape, dtype=np.int64)),)), positions, shape


class _IndexedRef:
    __slots__ = ("x", "idx")

    def __init__(self, x, idx):
        self.x = x
        self.idx = idx

    def get(self):
        return getitem(self.x, self.idx)

    def _update(self, prim_fn, values):
        x = asarray(self.x)
        operand, flat, shape = _scatter_target(x, self.idx)
        values = convert(asarray(values), lax.dtype(x))
        target = tuple(lax.shape(flat)) + tuple(lax.shape(operand)[1:])
        try:
            values = broadcast_to_shape(values, target)
        except (TypeError, ValueError):
            raise ValueError(
                f".at[]: values of shape {lax.shape(values)} cannot be broadcast to the indexed "
                f"shape {target}"
            ) from None
        vshape = tuple(lax.shape(values))
        if vshape != target:
            values = broadcast_to_shape(values, broadcast_shapes(".at", vshape, target))
        out = prim_fn(operand, flat, values)
        return lax.reshape(out, shape)

    def set(self, values):
        return self._update(lax.scatter_set, values)

    def add(self, values):
        return self._update(lax.scatter_add, values)

    def multiply(self, values):
        return self._update(lax.scatter_mul, values)

    mul = multiply

    def subtract(self, values):
        from .math import negative

        return self.add(negative(values))

    def divide(self, values):
        from .math import reciprocal

        return self.multiply(reciprocal(values))


class IndexUpdateHelper:
    """`x.at[idx]`: functional updates returning a new array, as in JAX. Duplicate indices
    accumulate for add/multiply; for set one of the duplicates wins."""

    __slots__ = ("x",)

    def __init__(self, x):
        self.x = x

    def __getitem__(self, idx):
        return _IndexedRef(self.x, idx)
