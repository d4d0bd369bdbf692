"""Array-module selection: NumPy on the CPU, CuPy when the values live on a GPU."""
from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def cupy_module():
    """The cupy module if it imports and sees a GPU, else None."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy
    except Exception:  # no cupy, no driver, or no device
        return None
    return None


def array_module(*xs):
    """numpy, or cupy if any argument is a cupy array."""
    for x in xs:
        mod = type(x).__module__
        if mod.startswith("cupy"):
            return cupy_module() or np
    return np
