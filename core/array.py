"""Eager results: a thin NumPy subclass that adds JAX's `.at[...]` updates. NumPy and SciPy
accept it unchanged."""
from __future__ import annotations

import numpy as np


class Array(np.ndarray):
    """numpy.ndarray plus `.at[idx].add/set/multiply/get` (functional updates, as in JAX)."""

    @property
    def at(self):
        from .numpy.indexing import IndexUpdateHelper

        return IndexUpdateHelper(self)


def as_array(x):
    """Wrap an eager result (ndarray or NumPy scalar) as an `Array` without copying."""
    if type(x) is Array:
        return x
    if isinstance(x, np.ndarray):
        return x.view(Array)
    return np.asarray(x).view(Array)


def as_writable_array(x):
    """as_array, copying read-only results (e.g. broadcast views) so that callers may write."""
    out = as_array(x)
    return out if out.flags.writeable else out.copy()
