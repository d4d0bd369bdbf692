"""Shape manipulation: reshape, transpose, moveaxis, expand_dims, squeeze, broadcast_to,
concatenate, stack, take."""
from __future__ import annotations

import numpy as np

from .. import lax
from ._base import asarray, broadcast_shapes, convert, is_traced, normalize_axis, result_type


def reshape(x, *shape, order="C"):
    if order != "C":
        raise NotImplementedError("reshape: only order='C' is supported")
    x = asarray(x)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = tuple(int(s) for s in shape)
    size = int(np.prod(lax.shape(x), dtype=np.int64))
    if shape.count(-1) > 1:
        raise ValueError("reshape: can only specify one unknown dimension (-1)")
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise ValueError(f"reshape: cannot reshape array of size {size} into shape {shape}")
        shape = tuple(size // known if s == -1 else s for s in shape)
    if int(np.prod(shape, dtype=np.int64)) != size:
        raise ValueError(
            f"reshape: cannot reshape array of shape {lax.shape(x)} (size {size}) into {shape}"
        )
    return lax.reshape(x, shape)


def ravel(x):
    return reshape(x, (-1,))


def transpose(x, axes=None):
    x = asarray(x)
    nd = len(lax.shape(x))
    if axes is None:
        axes = tuple(range(nd))[::-1]
    axes = tuple(normalize_axis("transpose", a, nd) for a in axes)
    if sorted(axes) != list(range(nd)):
        raise ValueError(f"transpose: axes {axes} do not match an array of rank {nd}")
    return lax.transpose(x, axes)


def moveaxis(x, source, destination):
    x = asarray(x)
    nd = len(lax.shape(x))
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [normalize_axis("moveaxis", s, nd) for s in src]
    dst = [normalize_axis("moveaxis", d, nd) for d in dst]
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return lax.transpose(x, order)


def swapaxes(x, axis1, axis2):
    x = asarray(x)
    nd = len(lax.shape(x))
    perm = list(range(nd))
    a, b = normalize_axis("swapaxes", axis1, nd), normalize_axis("swapaxes", axis2, nd)
    perm[a], perm[b] = perm[b], perm[a]
    return lax.transpose(x, perm)


def expand_dims(x, axis):
    x = asarray(x)
    shape = list(lax.shape(x))
    axes = [axis] if isinstance(axis, int) else list(axis)
    nd = len(shape) + len(axes)
    for a in sorted(normalize_axis("expand_dims", a, nd) for a in axes):
        shape.insert(a, 1)
    return lax.reshape(x, shape)


def squeeze(x, axis=None):
    x = asarray(x)
    shape = lax.shape(x)
    if axis is None:
        axes = [i for i, s in enumerate(shape) if s == 1]
    else:
        axes = [normalize_axis("squeeze", a, len(shape)) for a in
                ([axis] if isinstance(axis, int) else axis)]
        for a in axes:
            if shape[a] != 1:
                raise ValueError(
                    f"squeeze: cannot select an axis to squeeze out which has size not equal "
                    f"to one (axis {a} of shape {shape})"
                )
    return lax.reshape(x, [s for i, s in enumerate(shape) if i not in axes])


def broadcast_to(x, shape):
    x = asarray(x)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    target = broadcast_shapes("broadcast_to", lax.shape(x), shape)
    if target != shape:
        raise ValueError(f"broadcast_to: cannot broadcast {lax.shape(x)} to {shape}")
    nd = len(shape)
    return lax.broadcast_in_dim(x, shape, tuple(range(nd - len(lax.shape(x)), nd)))


def broadcast_arrays(*xs):
    xs = [asarray(x) for x in xs]
    shape = broadcast_shapes("broadcast_arrays", *[lax.shape(x) for x in xs])
    return [broadcast_to(x, shape) for x in xs]


def atleast_1d(x):
    x = asarray(x)
    return reshape(x, (1,)) if lax.shape(x) == () else x


def concatenate(arrays, axis=0):
    arrays = [asarray(a) for a in arrays]
    if not arrays:
        raise ValueError("concatenate: need at least one array")
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    dt = result_type(*arrays)
    arrays = [convert(a, dt) for a in arrays]
    nd = len(lax.shape(arrays[0]))
    if nd == 0:
        raise ValueError("concatenate: zero-dimensional arrays cannot be concatenated")
    for a in arrays:
        if len(lax.shape(a)) != nd:
            raise ValueError(
                "concatenate: all input arrays must have the same number of dimensions, got "
                + ", ".join(str(lax.shape(b)) for b in arrays)
            )
    axis = normalize_axis("concatenate", axis, nd)
    for a in arrays:
        if any(s != t for i, (s, t) in enumerate(zip(lax.shape(a), lax.shape(arrays[0])))
               if i != axis):
            raise ValueError(
                "concatenate: shapes must match except along axis "
                f"{axis}: " + ", ".join(str(lax.shape(b)) for b in arrays)
            )
    if not any(is_traced(a) for a in arrays):
        return asarray(np.concatenate(arrays, axis=axis))
    return lax.concatenate(arrays, axis)


def stack(arrays, axis=0):
    arrays = [asarray(a) for a in arrays]
    if not arrays:
        raise ValueError("stack: need at least one array")
    shapes = {tuple(lax.shape(a)) for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"stack: all input arrays must have the same shape, got {sorted(shapes)}")
    nd = len(lax.shape(arrays[0])) + 1
    axis = normalize_axis("stack", axis, nd)
    return concatenate([expand_dims(a, axis) for a in arrays], axis)


def hstack(arrays):
    arrays = [atleast_1d(a) for a in arrays]
    return concatenate(arrays, 0 if len(lax.shape(arrays[0])) == 1 else 1)


def vstack(arrays):
    arrays = [asarray(a) for a in arrays]
    arrays = [reshape(a, (1, -1)) if len(lax.shape(a)) <= 1 else a for a in arrays]
    return concatenate(arrays, 0)


def take(x, indices, axis=None):
    """Gather along an axis (x flattened when axis is None), NumPy semantics."""
    from .indexing import take_along_axis0

    x = asarray(x)
    if axis is None:
        x, axis = ravel(x), 0
    nd = len(lax.shape(x))
    axis = normalize_axis("take", axis, nd)
    return take_along_axis0(x, indices, axis)


def split(x, indices_or_sections, axis=0):
    x = asarray(x)
    shape = lax.shape(x)
    axis = normalize_axis("split", axis, len(shape))
    n = shape[axis]
    if isinstance(indices_or_sections, int):
        if n % indices_or_sections:
            raise ValueError("split: array split does not result in an equal division")
        step = n // indices_or_sections
        bounds = list(range(0, n + 1, step))
    else:
        bounds = [0] + list(indices_or_sections) + [n]
    outs = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        start = [0] * len(shape)
        limit = list(shape)
        start[axis], limit[axis] = a, b
        outs.append(lax.slice(x, start, limit))
    return outs
