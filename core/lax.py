"""Thin functions binding the primitives (like jax.lax): strict shapes and dtypes, no
promotion. Rules and the numpy-like layer are written with these."""
from __future__ import annotations

import numpy as np

from .trace import Tracer, get_aval


def shape(x) -> tuple:
    return x.aval.shape if isinstance(x, Tracer) else np.shape(x)


def dtype(x) -> np.dtype:
    return get_aval(x).dtype


def ndim(x) -> int:
    return len(shape(x))


def scalar(like, value):
    """A rank-0 constant with the dtype of `like` (elementwise primitives broadcast it)."""
    return np.asarray(value, dtype=dtype(like))


def zeros(shape_, dtype_):
    return broadcast_in_dim(np.zeros((), dtype_), tuple(shape_), ())


def full(shape_, value, dtype_):
    return broadcast_in_dim(np.asarray(value, dtype_), tuple(shape_), ())


def _unary(p):
    return lambda x: p.bind(x)


def _binary(p):
    return lambda x, y: p.bind(x, y)


from .prims import elementwise as _ew  # noqa: E402

neg = _unary(_ew.neg_p)
exp = _unary(_ew.exp_p)
expm1 = _unary(_ew.expm1_p)
log = _unary(_ew.log_p)
log1p = _unary(_ew.log1p_p)
sin = _unary(_ew.sin_p)
cos = _unary(_ew.cos_p)
tan = _unary(_ew.tan_p)
asin = _unary(_ew.asin_p)
acos = _unary(_ew.acos_p)
atan = _unary(_ew.atan_p)
sinh = _unary(_ew.sinh_p)
cosh = _unary(_ew.cosh_p)
tanh = _unary(_ew.tanh_p)
sqrt = _unary(_ew.sqrt_p)
abs = _unary(_ew.abs_p)  # noqa: A001
sign = _unary(_ew.sign_p)
floor = _unary(_ew.floor_p)
ceil = _unary(_ew.ceil_p)
round = _unary(_ew.round_p)  # noqa: A001
stop_gradient = _unary(_ew.stop_gradient_p)
logical_not = _unary(_ew.not_p)
add = _binary(_ew.add_p)
sub = _binary(_ew.sub_p)
mul = _binary(_ew.mul_p)
div = _binary(_ew.div_p)
pow = _binary(_ew.pow_p)  # noqa: A001
max = _binary(_ew.max_p)  # noqa: A001
min = _binary(_ew.min_p)  # noqa: A001
atan2 = _binary(_ew.atan2_p)
lt = _binary(_ew.lt_p)
le = _binary(_ew.le_p)
gt = _binary(_ew.gt_p)
ge = _binary(_ew.ge_p)
eq = _binary(_ew.eq_p)
ne = _binary(_ew.ne_p)
logical_and = _binary(_ew.and_p)
logical_or = _binary(_ew.or_p)
logical_xor = _binary(_ew.xor_p)


def integer_pow(x, y: int):
    return _ew.integer_pow_p.bind(x, y=int(y))


def select(pred, on_true, on_false):
    return _ew.select_p.bind(pred, on_true, on_false)


def convert_element_type(x, new_dtype):
    new_dtype = np.dtype(new_dtype)
    if dtype(x) == new_dtype:
        return x
    return _ew.convert_element_type_p.bind(x, new_dtype=new_dtype)


from .prims import shape as _sh  # noqa: E402


def broadcast_in_dim(x, shape_, broadcast_dimensions):
    shape_ = tuple(int(d) for d in shape_)
    if tuple(np.shape(x) if not isinstance(x, Tracer) else x.aval.shape) == shape_ and tuple(
        broadcast_dimensions
    ) == tuple(range(len(shape_))):
        return x
    return _sh.broadcast_in_dim_p.bind(
        x, shape=shape_, broadcast_dimensions=tuple(int(d) for d in broadcast_dimensions)
    )


def reshape(x, new_sizes):
    new_sizes = tuple(int(d) for d in new_sizes)
    if shape(x) == new_sizes:
        return x
    return _sh.reshape_p.bind(x, new_sizes=new_sizes)


def transpose(x, permutation):
    permutation = tuple(int(p) for p in permutation)
    if permutation == tuple(range(len(permutation))):
        return x
    return _sh.transpose_p.bind(x, permutation=permutation)


def moveaxis(x, src: int, dst: int):
    n = ndim(x)
    src, dst = src % n, dst % n
    if src == dst:
        return x
    perm = [i for i in range(n) if i != src]
    perm.insert(dst, src)
    return transpose(x, perm)


def reduce_sum(x, axes):
    axes = tuple(sorted(int(a) for a in axes))
    if not axes:
        return x
    return _sh.reduce_sum_p.bind(x, axes=axes)


def reduce_max(x, axes):
    return _sh.reduce_max_p.bind(x, axes=tuple(sorted(int(a) for a in axes)))


def reduce_min(x, axes):
    return _sh.reduce_min_p.bind(x, axes=tuple(sorted(int(a) for a in axes)))


def slice(x, start_indices, limit_indices, strides=None):  # noqa: A001
    n = ndim(x)
    strides = tuple(strides) if strides is not None else (1,) * n
    return _sh.slice_p.bind(
        x,
        start_indices=tuple(int(s) for s in start_indices),
        limit_indices=tuple(int(s) for s in limit_indices),
        strides=tuple(int(s) for s in strides),
    )


def pad(x, padding_config):
    return _sh.pad_p.bind(x, padding_config=tuple(tuple(int(v) for v in c) for c in padding_config))


def concatenate(xs, dimension: int):
    xs = list(xs)
    if len(xs) == 1:
        return xs[0]
    return _sh.concatenate_p.bind(*xs, dimension=int(dimension))


from .prims import indexing as _ix  # noqa: E402


def gather(x, idx):
    """x[idx] along axis 0 (idx: integer array of any shape)."""
    return _ix.gather_p.bind(x, idx)


def scatter_add(operand, idx, updates):
    return _ix.scatter_add_p.bind(operand, idx, updates)


def scatter_set(operand, idx, updates):
    return _ix.scatter_set_p.bind(operand, idx, updates)


def scatter_mul(operand, idx, updates):
    return _ix.scatter_mul_p.bind(operand, idx, updates)


from .prims import linalg as _la  # noqa: E402


def dot_general(x, y, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    dn = ((tuple(lc), tuple(rc)), (tuple(lb), tuple(rb)))
    return _la.dot_general_p.bind(x, y, dimension_numbers=dn)


def solve(a, b):
    """Solve a @ x = b for matrices a (..., n, n) and b (..., n, k)."""
    return _la.solve_p.bind(a, b)

