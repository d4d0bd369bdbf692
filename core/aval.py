"""Abstract values: the shape and dtype of an array, which is all tracing needs to know."""
from __future__ import annotations

import numpy as np

_SHORT = {
    "float64": "f64", "float32": "f32", "float16": "f16", "int64": "i64", "int32": "i32",
    "int16": "i16", "int8": "i8", "uint8": "u8", "uint32": "u32", "uint64": "u64",
    "bool": "bool", "complex128": "c128", "complex64": "c64",
}


class ShapedArray:
    """Shape and dtype of an array value (hashable; used in jit cache keys and the IR)."""

    __slots__ = ("shape", "dtype")
    array_abstraction_level = 1

    def __init__(self, shape, dtype):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def str_short(self) -> str:
        name = _SHORT.get(self.dtype.name, self.dtype.name)
        return f"{name}[{','.join(map(str, self.shape))}]"

    def __eq__(self, other):
        return (
            isinstance(other, ShapedArray)
            and self.shape == other.shape
            and self.dtype == other.dtype
        )

    def __hash__(self):
        return hash((self.shape, self.dtype))

    def __repr__(self):
        return f"ShapedArray({self.str_short()})"


def dtype_of(x) -> np.dtype:
    """The dtype a value gets as an array: Python float -> float64, int -> int64."""
    if isinstance(x, bool):
        return np.dtype(bool)
    if isinstance(x, int):
        return np.dtype(np.int64)
    if isinstance(x, float):
        return np.dtype(np.float64)
    if isinstance(x, complex):
        return np.dtype(np.complex128)
    return np.result_type(x)


def is_float(dtype) -> bool:
    return np.issubdtype(dtype, np.inexact)
