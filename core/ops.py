"""Segment operations: reduce rows of `data` into buckets named by `segment_ids`."""
from __future__ import annotations

import numpy as np

from . import lax
from .numpy._base import asarray, convert, is_traced


def segment_sum(data, segment_ids, num_segments=None):
    """out[s] = sum of data[i] over i with segment_ids[i] == s (out of range ids are an error).
    `num_segments` must be a Python int under jit (it fixes the output shape)."""
    data = asarray(data)
    if num_segments is None:
        if is_traced(segment_ids):
            raise TypeError("segment_sum: pass num_segments (a Python int) for traced ids")
        num_segments = int(np.max(segment_ids)) + 1 if np.size(segment_ids) else 0
    ids = segment_ids if is_traced(segment_ids) else np.asarray(segment_ids)
    if not np.issubdtype(lax.dtype(ids), np.integer):
        raise TypeError(f"segment_sum: segment_ids must be integers, got {lax.dtype(ids).name}")
    ids = convert(ids, np.int64) if not is_traced(ids) else ids
    k = len(lax.shape(ids))
    if tuple(lax.shape(data))[:k] != tuple(lax.shape(ids)):
        raise ValueError(
            f"segment_sum: segment_ids of shape {lax.shape(ids)} do not match the leading "
            f"dimensions of data {lax.shape(data)}"
        )
    out_shape = (int(num_segments),) + tuple(lax.shape(data))[k:]
    return lax.scatter_add(lax.zeros(out_shape, lax.dtype(data)), ids, data)
