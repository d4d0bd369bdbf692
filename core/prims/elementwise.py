"""Elementwise primitives: operands share one shape (rank-0 operands broadcast), one dtype."""
from __future__ import annotations

import numpy as np

from .. import lax
from ..ad_util import Zero, add_tangents, instantiate, is_undefined
from ..aval import ShapedArray
from ..primitive import (
    Primitive,
    batch_rules,
    c_exprs,
    impl_rules,
    jvp_rules,
    shape_rules,
    transpose_rules,
)


def _common_shape(name, avals):
    shape = ()
    for a in avals:
        if a.shape == ():
            continue
        if shape == ():
            shape = a.shape
        elif a.shape != shape:
            shapes = ", ".join(str(b.shape) for b in avals)
            raise TypeError(f"{name}: operand shapes must be equal (or rank 0), got {shapes}")
    return shape


def _shape_rule(name, out_dtype=None, skip_dtype_check=0):
    def rule(*avals, **params):
        shape = _common_shape(name, avals)
        checked = avals[skip_dtype_check:]
        dtypes = {a.dtype for a in checked}
        if len(dtypes) > 1:
            raise TypeError(
                f"{name}: operand dtypes must match, got "
                f"{', '.join(a.dtype.name for a in checked)}"
            )
        return ShapedArray(shape, out_dtype or checked[0].dtype)

    return rule


def _batch_rule(prim):
    def rule(axis_size, vals, dims, **params):
        batched = [d for d in dims if d is not None]
        d0 = batched[0]
        per_example = [
            (v.shape[:d] + v.shape[d + 1 :]) if d is not None else v.shape
            for v, d in zip(vals, dims)
        ]
        full = max(per_example, key=len)
        simple = all(
            (d == d0 and pe == full) or (d is None and pe == ())
            for d, pe in zip(dims, per_example)
        )
        if simple:
            return prim.bind(*vals, **params), d0
        shape = (axis_size,) + full
        moved = []
        for v, d, pe in zip(vals, dims, per_example):
            if d is None:
                moved.append(
                    v if pe == () else lax.broadcast_in_dim(v, shape, tuple(range(1, len(shape))))
                )
            else:
                v = lax.moveaxis(v, d, 0)
                if pe != full:
                    v = lax.broadcast_in_dim(v, shape, (0,))
                moved.append(v)
        return prim.bind(*moved, **params), 0

    return rule


def _define(name, impl, nargs, c=None, out_dtype=None, skip_dtype_check=0):
    p = Primitive(name)
    impl_rules[p] = impl
    shape_rules[p] = _shape_rule(name, out_dtype, skip_dtype_check)
    batch_rules[p] = _batch_rule(p)
    if c is not None:
        c_exprs[p] = c
    return p


def _bcast(t, like):
    """Broadcast a (possibly rank-0) tangent to the shape of `like`."""
    shape = np.shape(like) if not hasattr(like, "aval") else like.aval.shape
    if type(t) is Zero or lax.shape(t) == shape:
        return t
    return lax.broadcast_in_dim(t, shape, ())


def unbroadcast(ct, aval):
    """Undo the rank-0 broadcasting of an elementwise op for the cotangent of a scalar input."""
    if type(ct) is Zero or lax.shape(ct) == aval.shape:
        return ct
    return lax.reduce_sum(ct, tuple(range(len(lax.shape(ct)))))


def _aval(x):
    from ..trace import get_aval

    return get_aval(x)


# ---- unary -----------------------------------------------------------------------------------

def _unary(name, impl, deriv, c):
    """deriv(x, ans, t) -> tangent of the output for input tangent t."""
    p = _define(name, impl, 1, c)

    def jvp(primals, tangents, **params):
        (x,), (t,) = primals, tangents
        ans = p.bind(x, **params)
        return [ans], [deriv(x, ans, t)]

    jvp_rules[p] = jvp
    return p


def _zero_jvp(p):
    def jvp(primals, tangents, **params):
        ans = p.bind(*primals, **params)
        return [ans], [Zero(_aval(ans))]

    jvp_rules[p] = jvp


L = lax
neg_p = _unary("neg", np.negative, lambda x, a, t: L.neg(t), "(-{0})")
exp_p = _unary("exp", np.exp, lambda x, a, t: L.mul(t, a), "exp({0})")
expm1_p = _unary(
    "expm1", np.expm1, lambda x, a, t: L.mul(t, L.add(a, L.scalar(a, 1))), "expm1({0})"
)
log_p = _unary("log", np.log, lambda x, a, t: L.div(t, x), "log({0})")
log1p_p = _unary(
    "log1p", np.log1p, lambda x, a, t: L.div(t, L.add(x, L.scalar(x, 1))), "log1p({0})"
)
sin_p = _unary("sin", np.sin, lambda x, a, t: L.mul(t, L.cos(x)), "sin({0})")
cos_p = _unary("cos", np.cos, lambda x, a, t: L.neg(L.mul(t, L.sin(x))), "cos({0})")
tan_p = _unary(
    "tan", np.tan, lambda x, a, t: L.mul(t, L.add(L.scalar(a, 1), L.mul(a, a))), "tan({0})"
)
asin_p = _unary(
    "asin", np.arcsin,
    lambda x, a, t: L.div(t, L.sqrt(L.sub(L.scalar(x, 1), L.mul(x, x)))), "asin({0})",
)
acos_p = _unary(
    "acos", np.arccos,
    lambda x, a, t: L.neg(L.div(t, L.sqrt(L.sub(L.scalar(x, 1), L.mul(x, x))))), "acos({0})",
)
atan_p = _unary(
    "atan", np.arctan, lambda x, a, t: L.div(t, L.add(L.scalar(x, 1), L.mul(x, x))), "atan({0})"
)
sinh_p = _unary("sinh", np.sinh, lambda x, a, t: L.mul(t, L.cosh(x)), "sinh({0})")
cosh_p = _unary("cosh", np.cosh, lambda x, a, t: L.mul(t, L.sinh(x)), "cosh({0})")
tanh_p = _unary(
    "tanh", np.tanh, lambda x, a, t: L.mul(t, L.sub(L.scalar(a, 1), L.mul(a, a))), "tanh({0})"
)
sqrt_p = _unary("sqrt", np.sqrt, lambda x, a, t: L.div(t, L.mul(L.scalar(a, 2), a)), "sqrt({0})")
abs_p = _unary(
    "abs", np.abs, lambda x, a, t: L.select(L.ge(x, L.scalar(x, 0)), t, L.neg(t)), "fabs({0})"
)
sign_p = _define("sign", np.sign, 1, "(({0}) > 0 ? 1.0 : (({0}) < 0 ? -1.0 : 0.0))")
floor_p = _define("floor", np.floor, 1, "floor({0})")
ceil_p = _define("ceil", np.ceil, 1, "ceil({0})")
round_p = _define("round", np.rint, 1, "rint({0})")
stop_gradient_p = _define("stop_gradient", lambda x: x, 1, "({0})")
for _p in (sign_p, floor_p, ceil_p, round_p, stop_gradient_p):
    _zero_jvp(_p)


def _integer_pow_impl(x, *, y):
    """Small powers by repeated multiplication (much faster than np.power)."""
    n = abs(y)
    if n == 0 or n > 8:
        return np.power(x, y)
    acc, base = None, x
    while n:
        if n & 1:
            acc = base if acc is None else acc * base
        n >>= 1
        if n:
            base = base * base
    if y < 0:
        return 1 / acc
    if acc is x:  # y == 1: a fresh array (Python scalars, e.g. jit arguments, are immutable)
        return x.copy() if hasattr(x, "copy") else x
    return acc


integer_pow_p = _define("integer_pow", _integer_pow_impl, 1)
c_exprs[integer_pow_p] = "pow({0}, {y})"


def _integer_pow_jvp(primals, tangents, *, y):
    (x,), (t,) = primals, tangents
    ans = integer_pow_p.bind(x, y=y)
    if y == 0:
        return [ans], [Zero(_aval(ans))]
    if y == 1:
        return [ans], [t]
    xm = x if y == 2 else L.integer_pow(x, y - 1)
    dydx = L.mul(L.scalar(x, y), xm)
    return [ans], [L.mul(t, dydx)]


jvp_rules[integer_pow_p] = _integer_pow_jvp


def _neg_transpose(ct, x):
    return [L.neg(ct)]


transpose_rules[neg_p] = _neg_transpose


# ---- binary arithmetic ------------------------------------------------------------------------


def _broadcast_aware(ufunc):
    """A binary ufunc that lays out its output in Fortran order when broadcast (zero-stride)
    inputs of rank >= 3 end in a short axis: NumPy's default order then iterates the short
    axis innermost, ~4x slower (e.g. pairwise displacements r[:, None] - r[None, :])."""

    def impl(x, y):
        xs = getattr(x, "strides", ())
        ys = getattr(y, "strides", ())
        if (len(xs) >= 3 or len(ys) >= 3) and (0 in xs or 0 in ys):
            shape = np.shape(x) if len(xs) >= len(ys) else np.shape(y)
            if shape[-1] <= 4 < shape[0]:
                return ufunc(x, y, order="F")
        return ufunc(x, y)

    impl.__name__ = ufunc.__name__
    impl.plain = ufunc  # what impl reduces to when no input has rank >= 3 (see interpreter)
    return impl


add_p = _define("add", _broadcast_aware(np.add), 2, "({0} + {1})")
sub_p = _define("sub", _broadcast_aware(np.subtract), 2, "({0} - {1})")
mul_p = _define("mul", _broadcast_aware(np.multiply), 2, "({0} * {1})")
div_p = _define("div", _broadcast_aware(np.true_divide), 2, "({0} / {1})")
pow_p = _define("pow", np.power, 2, "pow({0}, {1})")
max_p = _define("max", np.maximum, 2, "fmax({0}, {1})")
min_p = _define("min", np.minimum, 2, "fmin({0}, {1})")
atan2_p = _define("atan2", np.arctan2, 2, "atan2({0}, {1})")


def _add_jvp(primals, tangents):
    x, y = primals
    ans = add_p.bind(x, y)
    tx, ty = (_bcast(t, ans) for t in tangents)
    return [ans], [add_tangents(tx, ty)]


def _sub_jvp(primals, tangents):
    x, y = primals
    ans = sub_p.bind(x, y)
    tx, ty = (_bcast(t, ans) for t in tangents)
    if type(ty) is Zero:
        return [ans], [tx]
    if type(tx) is Zero:
        return [ans], [L.neg(ty)]
    return [ans], [L.sub(tx, ty)]


def _mul_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    ans = mul_p.bind(x, y)
    if x is y and tx is ty:  # x * x: one product instead of two
        return [ans], [L.mul(L.mul(tx, x), L.scalar(x, 2))]
    a = Zero(_aval(ans)) if type(tx) is Zero else _bcast(L.mul(tx, y), ans)
    b = Zero(_aval(ans)) if type(ty) is Zero else _bcast(L.mul(x, ty), ans)
    return [ans], [add_tangents(a, b)]


def _div_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    ans = div_p.bind(x, y)
    a = Zero(_aval(ans)) if type(tx) is Zero else _bcast(L.div(tx, y), ans)
    if type(ty) is Zero:
        return [ans], [a]
    b = _bcast(L.neg(L.div(L.mul(ty, ans), y)), ans)
    return [ans], [add_tangents(a, b)]


def _replace_zero(x):
    return L.select(L.eq(x, L.scalar(x, 0)), L.scalar(x, 1), x)


def _pow_jvp(primals, tangents):
    x, y = primals
    tx, ty = tangents
    ans = pow_p.bind(x, y)
    out = Zero(_aval(ans))
    if type(tx) is not Zero:
        # d/dx x**y = y * x**(y-1), defined as 0 where y == 0
        jac = L.select(
            L.eq(y, L.scalar(y, 0)),
            L.scalar(y, 0),
            # y == 0 uses exponent 0 here (not -1) so that x == 0 does not overflow
            L.mul(_replace_zero(y), L.pow(x, L.sub(_replace_zero(y), L.scalar(y, 1)))),
        )
        out = add_tangents(out, _bcast(L.mul(tx, jac), ans))
    if type(ty) is not Zero:
        # d/dy x**y = log(x) * x**y, defined as 0 where x == 0
        out = add_tangents(out, _bcast(L.mul(ty, L.mul(L.log(_replace_zero(x)), ans)), ans))
    return [ans], [out]


def _minmax_jvp(p, pick_x):
    """Tangent of max/min: the tangent of the selected operand; ties take the mean (as JAX)."""

    def jvp(primals, tangents):
        x, y = primals
        ans = p.bind(x, y)
        tx, ty = (_bcast(instantiate(t), ans) for t in tangents)
        half = L.scalar(ans, 0.5)
        tie = L.mul(half, L.add(tx, ty))
        chosen = L.select(pick_x(x, y), tx, ty)
        return [ans], [L.select(L.eq(x, y), tie, chosen)]

    return jvp


def _atan2_jvp(primals, tangents):
    y, x = primals
    ty, tx = (instantiate(t) for t in tangents)
    ans = atan2_p.bind(y, x)
    denom = L.add(L.mul(x, x), L.mul(y, y))
    num = L.sub(L.mul(x, ty), L.mul(y, tx))
    return [ans], [_bcast(L.div(num, denom), ans)]


jvp_rules[add_p] = _add_jvp
jvp_rules[sub_p] = _sub_jvp
jvp_rules[mul_p] = _mul_jvp
jvp_rules[div_p] = _div_jvp
jvp_rules[pow_p] = _pow_jvp
jvp_rules[max_p] = _minmax_jvp(max_p, lambda x, y: L.gt(x, y))
jvp_rules[min_p] = _minmax_jvp(min_p, lambda x, y: L.lt(x, y))
jvp_rules[atan2_p] = _atan2_jvp


def _add_transpose(ct, x, y):
    return [
        unbroadcast(ct, x.aval) if is_undefined(x) else None,
        unbroadcast(ct, y.aval) if is_undefined(y) else None,
    ]


def _sub_transpose(ct, x, y):
    return [
        unbroadcast(ct, x.aval) if is_undefined(x) else None,
        unbroadcast(L.neg(ct), y.aval) if is_undefined(y) else None,
    ]


def _mul_transpose(ct, x, y):
    if is_undefined(x) and is_undefined(y):
        raise TypeError("mul: transpose of a product of two linear values (not linear)")
    if is_undefined(x):
        return [unbroadcast(L.mul(ct, y), x.aval), None]
    return [None, unbroadcast(L.mul(x, ct), y.aval)]


def _div_transpose(ct, x, y):
    if is_undefined(y):
        raise TypeError("div: transpose with respect to the divisor (not linear)")
    return [unbroadcast(L.div(ct, y), x.aval), None]


transpose_rules[add_p] = _add_transpose
transpose_rules[sub_p] = _sub_transpose
transpose_rules[mul_p] = _mul_transpose
transpose_rules[div_p] = _div_transpose


# ---- comparisons and logic ---------------------------------------------------------------------

_BOOL = np.dtype(bool)
lt_p = _define("lt", np.less, 2, "({0} < {1})", out_dtype=_BOOL)
le_p = _define("le", np.less_equal, 2, "({0} <= {1})", out_dtype=_BOOL)
gt_p = _define("gt", np.greater, 2, "({0} > {1})", out_dtype=_BOOL)
ge_p = _define("ge", np.greater_equal, 2, "({0} >= {1})", out_dtype=_BOOL)
eq_p = _define("eq", np.equal, 2, "({0} == {1})", out_dtype=_BOOL)
ne_p = _define("ne", np.not_equal, 2, "({0} != {1})", out_dtype=_BOOL)
and_p = _define("and", np.logical_and, 2, "({0} && {1})", out_dtype=_BOOL)
or_p = _define("or", np.logical_or, 2, "({0} || {1})", out_dtype=_BOOL)
xor_p = _define("xor", np.logical_xor, 2, "(!({0}) != !({1}))", out_dtype=_BOOL)
not_p = _define("not", np.logical_not, 1, "(!({0}))", out_dtype=_BOOL)
for _p in (lt_p, le_p, gt_p, ge_p, eq_p, ne_p, and_p, or_p, xor_p, not_p):
    _zero_jvp(_p)


# ---- select and dtype conversion --------------------------------------------------------------

select_p = _define("select", np.where, 3, "({0} ? {1} : {2})", skip_dtype_check=1)


def _select_shape(pred, x, y):
    if pred.dtype != _BOOL:
        raise TypeError(f"select: predicate must be boolean, got {pred.dtype.name}")
    return _shape_rule("select", skip_dtype_check=1)(pred, x, y)


shape_rules[select_p] = _select_shape


def _select_jvp(primals, tangents):
    pred, x, y = primals
    ans = select_p.bind(pred, x, y)
    tx, ty = (_bcast(instantiate(t), ans) for t in tangents[1:])
    return [ans], [select_p.bind(pred, tx, ty)]


def _select_transpose(ct, pred, x, y):
    if is_undefined(pred):
        raise TypeError("select: predicate cannot be a linear input")
    zeros = L.scalar(ct, 0)
    return [
        None,
        unbroadcast(select_p.bind(pred, ct, zeros), x.aval) if is_undefined(x) else None,
        unbroadcast(select_p.bind(pred, zeros, ct), y.aval) if is_undefined(y) else None,
    ]


jvp_rules[select_p] = _select_jvp
transpose_rules[select_p] = _select_transpose

def _convert_impl(x, *, new_dtype):
    """x.astype(new_dtype); Python scalars (jit passes them through unchanged) have no astype."""
    if hasattr(x, "astype"):
        return x.astype(new_dtype)
    return np.asarray(x, dtype=new_dtype)


convert_element_type_p = _define(
    "convert_element_type", _convert_impl, 1, "(({new_dtype}) {0})"
)


def _convert_shape(x, *, new_dtype):
    return ShapedArray(x.shape, new_dtype)


def _convert_jvp(primals, tangents, *, new_dtype):
    (x,), (t,) = primals, tangents
    ans = convert_element_type_p.bind(x, new_dtype=new_dtype)
    if not (np.issubdtype(new_dtype, np.inexact) and np.issubdtype(_aval(x).dtype, np.inexact)):
        return [ans], [Zero(_aval(ans))]
    return [ans], [convert_element_type_p.bind(t, new_dtype=new_dtype)]


def _convert_transpose(ct, x, *, new_dtype):
    return [convert_element_type_p.bind(ct, new_dtype=x.aval.dtype)]


shape_rules[convert_element_type_p] = _convert_shape
jvp_rules[convert_element_type_p] = _convert_jvp
transpose_rules[convert_element_type_p] = _convert_transpose
