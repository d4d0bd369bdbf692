"""Markers shared by the differentiation transforms: symbolic zero tangents and undefined
(linear) primal inputs of transpose rules."""
from __future__ import annotations

from .aval import ShapedArray


class Zero:
    """A tangent or cotangent known to be zero; instantiated only when a rule needs an array."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"Zero({self.aval.str_short()})"


class UndefPrimal:
    """A linear input of a transpose rule: its value is unknown, only its type is."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self):
        return f"UndefPrimal({self.aval.str_short()})"


def is_undefined(x) -> bool:
    return type(x) is UndefPrimal


def instantiate(t, aval: ShapedArray | None = None):
    """Turn a symbolic Zero into an array of zeros (at the current trace level)."""
    if type(t) is Zero:
        from . import lax

        return lax.zeros(t.aval.shape, t.aval.dtype)
    return t


def add_tangents(a, b):
    if type(a) is Zero:
        return b
    if type(b) is Zero:
        return a
    from . import lax

    return lax.add(a, b)
