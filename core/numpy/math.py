"""Arithmetic, ufuncs and comparisons with NumPy promotion and broadcasting."""
from __future__ import annotations

import numpy as np

from .. import lax
from ._base import asarray, broadcast_args, convert, is_traced, promote


def _binary(name, fn, to_float=False, out_bool=False):
    def op(x, y):
        x, y = promote(name, x, y, to_float=to_float)
        x, y = broadcast_args(name, x, y)
        return fn(x, y)

    op.__name__ = name
    op.__doc__ = f"Elementwise {name} with NumPy broadcasting and promotion."
    return op


def _unary(name, fn, to_float=True):
    def op(x):
        x = asarray(x)
        if to_float and not np.issubdtype(lax.dtype(x), np.inexact):
            x = convert(x, np.float64)
        return fn(x)

    op.__name__ = name
    op.__doc__ = f"Elementwise {name}."
    return op


add = _binary("add", lax.add)
subtract = _binary("subtract", lax.sub)
multiply = _binary("multiply", lax.mul)
divide = true_divide = _binary("divide", lax.div, to_float=True)
maximum = _binary("maximum", lax.max)
minimum = _binary("minimum", lax.min)
arctan2 = _binary("arctan2", lax.atan2, to_float=True)
less = _binary("less", lax.lt)
less_equal = _binary("less_equal", lax.le)
greater = _binary("greater", lax.gt)
greater_equal = _binary("greater_equal", lax.ge)
equal = _binary("equal", lax.eq)
not_equal = _binary("not_equal", lax.ne)
logical_and = _binary("logical_and", lambda x, y: lax.logical_and(_bool(x), _bool(y)))
logical_or = _binary("logical_or", lambda x, y: lax.logical_or(_bool(x), _bool(y)))
logical_xor = _binary("logical_xor", lambda x, y: lax.logical_xor(_bool(x), _bool(y)))


def _bool(x):
    return x if lax.dtype(x) == np.bool_ else lax.ne(x, lax.scalar(x, 0))


def logical_not(x):
    return lax.logical_not(_bool(asarray(x)))


exp = _unary("exp", lax.exp)
expm1 = _unary("expm1", lax.expm1)
log = _unary("log", lax.log)
log1p = _unary("log1p", lax.log1p)
sin = _unary("sin", lax.sin)
cos = _unary("cos", lax.cos)
tan = _unary("tan", lax.tan)
arcsin = _unary("arcsin", lax.asin)
arccos = _unary("arccos", lax.acos)
arctan = _unary("arctan", lax.atan)
sinh = _unary("sinh", lax.sinh)
cosh = _unary("cosh", lax.cosh)
tanh = _unary("tanh", lax.tanh)
sqrt = _unary("sqrt", lax.sqrt)
floor = _unary("floor", lax.floor)
ceil = _unary("ceil", lax.ceil)
rint = round_ = _unary("round", lax.round)
negative = _unary("negative", lax.neg, to_float=False)
abs = absolute = _unary("abs", lax.abs, to_float=False)  # noqa: A001
sign = _unary("sign", lax.sign, to_float=False)


def positive(x):
    return asarray(x)


def square(x):
    x = asarray(x)
    return lax.integer_pow(x, 2)


def reciprocal(x):
    x = asarray(x)
    if not np.issubdtype(lax.dtype(x), np.inexact):
        x = convert(x, np.float64)
    return lax.div(lax.scalar(x, 1), x)


def log10(x):
    return divide(log(x), np.log(10.0))


def log2(x):
    return divide(log(x), np.log(2.0))


def exp2(x):
    return power(2.0, x)


def cbrt(x):
    x = asarray(x)
    return multiply(sign(x), power(abs(x), 1.0 / 3.0))


def power(x, y):
    """x ** y; a Python integer exponent uses repeated multiplication (integer_pow)."""
    if isinstance(y, (int, np.integer)) and not isinstance(y, bool):
        x = asarray(x)
        if y < 0 and not np.issubdtype(lax.dtype(x), np.inexact):
            raise ValueError("Integers to negative integer powers are not allowed.")
        return lax.integer_pow(x, int(y))
    x, y = promote("power", x, y)
    x, y = broadcast_args("power", x, y)
    return lax.pow(x, y)


def floor_divide(x, y):
    x, y = promote("floor_divide", x, y)
    if np.issubdtype(lax.dtype(x), np.integer):
        if not (is_traced(x) or is_traced(y)):
            return asarray(np.floor_divide(x, y))
        xf, yf = convert(x, np.float64), convert(y, np.float64)
        return convert(floor(divide(xf, yf)), lax.dtype(x))
    return floor(divide(x, y))


def remainder(x, y):
    """x - floor(x / y) * y (the sign follows y, as NumPy)."""
    x, y = promote("remainder", x, y)
    if np.issubdtype(lax.dtype(x), np.integer) and not (is_traced(x) or is_traced(y)):
        return asarray(np.remainder(x, y))
    return subtract(x, multiply(floor_divide(x, y), y))


mod = remainder


def where(condition, x=None, y=None):
    """Elementwise choice; the three-argument form only (the one-argument form is nonzero)."""
    if x is None or y is None:
        raise TypeError("where: use the three-argument form where(condition, x, y)")
    c = _bool(asarray(condition))
    x, y = promote("where", x, y)
    c, x, y = broadcast_args("where", c, x, y)
    if lax.shape(x) != lax.shape(y) and lax.shape(x) != () and lax.shape(y) != ():
        raise ValueError(f"where: shapes {lax.shape(x)} and {lax.shape(y)} do not match")
    return lax.select(c, x, y)


def clip(x, a_min=None, a_max=None):
    out = asarray(x)
    if a_min is not None:
        out = maximum(out, a_min)
    if a_max is not None:
        out = minimum(out, a_max)
    return out


def isfinite(x):
    x = asarray(x)
    return logical_and(equal(x, x), less(abs(x), np.inf))


def isnan(x):
    x = asarray(x)
    return not_equal(x, x)


def stop_gradient(x):
    from ..api import stop_gradient as sg

    return sg(x)


def astype(x, dtype):
    return convert(asarray(x), np.dtype(dtype))

