"""The numpy-like layer (core/numpy/*.py) against NumPy itself: values, shapes and dtypes of
eager and jit-traced results, for functions, operators and array methods beyond the primitive
table (promotion rules, integer arithmetic, comparisons, reshaping helpers)."""
import numpy as np
import pytest

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp

rng = np.random.default_rng(0)
A = rng.uniform(0.5, 2, (3, 4))
I = np.array([3, -4, 7, 0])

FUNCTIONS = {
    "cumsum": lambda m, a: m.cumsum(a, axis=1),
    "cumsum_none": lambda m, a: m.cumsum(a),
    "cross": lambda m, a: m.cross(a[:, :3], a[:, 1:]),
    "split": lambda m, a: m.split(a, 2, axis=1)[1],
    "split_idx": lambda m, a: m.split(a, [1, 3], axis=1)[2],
    "hstack": lambda m, a: m.hstack([a, a]),
    "vstack": lambda m, a: m.vstack([a[0], a[1]]),
    "floordiv": lambda m, a: m.floor_divide(a * 3, 0.7),
    "remainder": lambda m, a: m.remainder(a * 3 - 4, 0.7),
    "mod_neg": lambda m, a: (a * 3 - 4) % -0.7,
    "rfloordiv": lambda m, a: 5.0 // a,
    "cbrt": lambda m, a: m.cbrt(a - 1),
    "log2": lambda m, a: m.log2(a),
    "log10": lambda m, a: m.log10(a),
    "exp2": lambda m, a: m.exp2(a),
    "reciprocal": lambda m, a: m.reciprocal(a),
    "isfinite": lambda m, a: m.isfinite(a / (a - a[0, 0])),
    "isnan": lambda m, a: m.isnan(m.sqrt(a - 1)),
    "where_mixed": lambda m, a: m.where(a > 1, 1, a),
    "inner": lambda m, a: m.inner(a, a),
    "tensordot": lambda m, a: m.tensordot(a, a.T, axes=1),
    "tensordot2": lambda m, a: m.tensordot(a, a, axes=([0, 1], [0, 1])),
    "vdot": lambda m, a: m.vdot(a, a),
    "moveaxis_multi": lambda m, a: m.moveaxis(a[None], [0, 1], [2, 0]),
    "mean_axis": lambda m, a: m.mean(a, axis=-1),
    "sum_dtype": lambda m, a: m.sum(a, dtype=m.float32),
    "any_axis": lambda m, a: m.any(a > 1.5, axis=0),
    "all_axis": lambda m, a: m.all(a > 0.6, axis=1),
    "round": lambda m, a: m.round(a * 3),
    "clip_none": lambda m, a: m.clip(a, None, 1.0),
    "swapaxes": lambda m, a: m.swapaxes(a, 0, 1),
    "rpow": lambda m, a: 2.0 ** a,
    "rsub": lambda m, a: 1 - a,
    "neg_int_pow": lambda m, a: a ** -3,
    "matmul_op": lambda m, a: a @ a.T, "T": lambda m, a: a.T * 2,
    "abs": lambda m, a: abs(a - 1),
    "pos": lambda m, a: +a,
    "square": lambda m, a: m.square(a),
    "comparisons": lambda m, a: (a >= 1) & (a < 1.5) | (a == a[0, 0]),
    "invert": lambda m, a: ~(a > 1),
    "xor": lambda m, a: (a > 1) ^ (a > 1.5),
    "ravel": lambda m, a: a.ravel(),
    "flatten": lambda m, a: a.flatten(),
    "reshape_method": lambda m, a: a.reshape(2, 6),
    "reshape_tuple": lambda m, a: a.reshape((6, -1)),
    "transpose_method": lambda m, a: a.transpose(1, 0),
    "sum_method": lambda m, a: a.sum(axis=0),
    "max_method": lambda m, a: a.max(1),
    "prod_method": lambda m, a: a.prod(0),
    "astype_int": lambda m, a: a.astype(m.int32),
    "astype_bool": lambda m, a: (a - 1).astype(bool),
    "int_div": lambda m, a: (a * 10).astype(m.int64) // 3,
    "int_mod": lambda m, a: (a * 10).astype(m.int64) % 3,
    "int_truediv": lambda m, a: (a * 10).astype(m.int64) / 3,
    "bool_sum": lambda m, a: m.sum(a > 1, axis=1),
    "mean_int": lambda m, a: m.mean((a * 10).astype(m.int64)),
    "expand_neg": lambda m, a: m.expand_dims(a, -2),
    "squeeze_all": lambda m, a: m.squeeze(a[None, :, None]),
    "take_none": lambda m, a: m.take(a, I),
    "stack_neg": lambda m, a: m.stack([a, a], axis=-1),
    "concat_none": lambda m, a: m.concatenate([a, a], axis=None),
    "broadcast_arrays": lambda m, a: m.broadcast_arrays(a, a[0])[1],
    "outer_2d": lambda m, a: m.outer(a, a[0]),
    "dot_3d": lambda m, a: m.dot(a[None], a.T),
    "einsum_implicit": lambda m, a: m.einsum("ij,kj", a, a),
    "einsum_ellipsis_sum": lambda m, a: m.einsum("...j->...", a),
    "norm_1": lambda m, a: m.linalg.norm(a[0], 1),
    "norm_ord0": lambda m, a: m.linalg.norm(a[0] - 1, 0),
    "ones_like": lambda m, a: m.ones_like(a) * a,
    "zeros_like": lambda m, a: m.zeros_like(a) + a,
    "full_like": lambda m, a: m.full_like(a, 2.0) * a,
    "arctan2_bc": lambda m, a: m.arctan2(a, 1.0),
    "maximum_bc": lambda m, a: m.maximum(a, a[0]),
    "power_arr": lambda m, a: m.power(a, a[0]),
    "sign_int": lambda m, a: m.sign((a * 10).astype(m.int64) - 10),
    "negative_int": lambda m, a: -(a * 10).astype(m.int64),
    "where_bool_cond_int": lambda m, a: m.where((a * 10).astype(m.int64) % 2, a, -a),
    "logical_not": lambda m, a: m.logical_not(a - a[0, 0]),
    "getitem_ellipsis_none": lambda m, a: a[..., None, 1],
    "getitem_neg_slice": lambda m, a: a[-1:-4:-1, ::-3],
    "getitem_int_arr_neg": lambda m, a: a[:, I % 4 - 4],
    "trace_like": lambda m, a: m.sum(m.eye(3) * (a[:, :3] @ a[:, :3].T)),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_matches_numpy_eager_and_traced(name):
    fn = FUNCTIONS[name]
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.asarray(fn(np, A))
        eager = np.asarray(fn(jnp, jnp.asarray(A)))
        traced = np.asarray(rc.jit(lambda a: fn(jnp, a))(A))
    for got in (eager, traced):
        assert got.shape == want.shape
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
