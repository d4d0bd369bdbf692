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
