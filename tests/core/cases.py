"""A table of small functions exercising every primitive through the numpy-like layer, shared
by the derivative, vmap, jit and JAX-parity tests.

Each case is `fn(m, *args)` where `m` is a namespace with `np` (reaxgrad.core.numpy or
jax.numpy) and `segment_sum`, so that the same code runs on reaxgrad and on JAX. Arguments are
float64 arrays chosen away from kinks and ties (max, abs, clip, where) so that finite
differences are valid.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

import reaxgrad.core as rc
import reaxgrad.core.numpy as rnp

REAX = SimpleNamespace(np=rnp, segment_sum=rc.ops.segment_sum, name="reaxgrad")

IDX = np.array([0, 2, 2, 1])  # gather indices with a duplicate
DUP = np.array([0, 2, 0])  # scatter indices with a duplicate
SEG = np.array([0, 1, 0, 2, 1])  # segment ids (5 rows into 3 segments)


def jax_namespace():
    """The same namespace for JAX (float64 enabled); None when JAX is not installed."""
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jjnp

    return SimpleNamespace(np=jjnp, segment_sum=jax.ops.segment_sum, name="jax")


def _vec(seed, n=3, lo=0.2, hi=0.8):
    return np.random.default_rng(seed).uniform(lo, hi, n)


def _mat(seed, shape=(2, 3)):
    return np.random.default_rng(seed).standard_normal(shape)


def _well_conditioned(seed, n=3):
    return np.eye(n) * 3.0 + 0.3 * np.random.default_rng(seed).standard_normal((n, n))


# name -> (function(m, *args), args)
ELEMENTWISE = {
    "neg": (lambda m, x: -x, (_vec(0),)),
    "exp": (lambda m, x: m.np.exp(x), (_vec(1),)),
    "expm1": (lambda m, x: m.np.expm1(x), (_vec(2),)),
    "log": (lambda m, x: m.np.log(x), (_vec(3),)),
    "log1p": (lambda m, x: m.np.log1p(x), (_vec(4),)),
    "sin": (lambda m, x: m.np.sin(x), (_vec(5),)),
    "cos": (lambda m, x: m.np.cos(x), (_vec(6),)),
    "tan": (lambda m, x: m.np.tan(x), (_vec(7),)),
    "arcsin": (lambda m, x: m.np.arcsin(x), (_vec(8),)),
    "arccos": (lambda m, x: m.np.arccos(x), (_vec(9),)),
    "arctan": (lambda m, x: m.np.arctan(x), (_vec(10, lo=-2, hi=2),)),
    "sinh": (lambda m, x: m.np.sinh(x), (_vec(11, lo=-1, hi=1),)),
    "cosh": (lambda m, x: m.np.cosh(x), (_vec(12, lo=-1, hi=1),)),
    "tanh": (lambda m, x: m.np.tanh(x), (_vec(13, lo=-1, hi=1),)),
    "sqrt": (lambda m, x: m.np.sqrt(x), (_vec(14),)),
    "abs": (lambda m, x: m.np.abs(x), (np.array([-0.7, 0.3, -0.2]),)),
    "sign": (lambda m, x: m.np.sign(x) * x**2, (np.array([-0.7, 0.3, -0.2]),)),
    "add": (lambda m, x, y: x + y, (_vec(15), _vec(16))),
    "sub": (lambda m, x, y: x - y, (_vec(17), _vec(18))),
    "mul": (lambda m, x, y: x * y, (_vec(19), _vec(20))),
    "divide": (lambda m, x, y: m.np.divide(x, y), (_vec(21), _vec(22))),
    "maximum": (lambda m, x, y: m.np.maximum(x, y), (_vec(23), _vec(24))),
    "minimum": (lambda m, x, y: m.np.minimum(x, y), (_vec(25), _vec(26))),
    "power": (lambda m, x, y: m.np.power(x, y), (_vec(27), _vec(28, lo=-1.5, hi=2.5))),
    "power_scalar_exponent": (lambda m, x: x**1.7, (_vec(29),)),
    "power_scalar_base": (lambda m, y: 1.7**y, (_vec(30),)),
    "integer_pow_2": (lambda m, x: x**2, (_vec(31, lo=-1, hi=1),)),
    "integer_pow_3": (lambda m, x: x**3, (_vec(32, lo=-1, hi=1),)),
    "integer_pow_neg2": (lambda m, x: x**-2, (_vec(33),)),
    "integer_pow_0_1": (lambda m, x: x**0 * x + x**1, (_vec(34),)),
    "square": (lambda m, x: m.np.square(x), (_vec(35, lo=-1, hi=1),)),
    "arctan2": (lambda m, y, x: m.np.arctan2(y, x), (_vec(36, lo=-1, hi=1), _vec(37, lo=-1, hi=1))),
    "where": (lambda m, x, y: m.np.where(x > y, x * y, x - y), (_vec(38), _vec(39))),
    "clip": (lambda m, x: m.np.clip(x, 0.35, 0.65), (np.array([0.2, 0.5, 0.75, 0.4]),)),
    "scalar_broadcast": (
        lambda m, a, x: a * x + a / x - x**a + m.np.maximum(a, x),
        (np.array(0.55), _vec(40)),
    ),
    "row_broadcast": (lambda m, v, mat: mat * v - v / (1.0 + mat**2), (_vec(41), _mat(42))),
}

REDUCTIONS = {
    "sum_all": (lambda m, x: m.np.sum(x), (_mat(50),)),
    "sum_axis1": (lambda m, x: m.np.sum(x, axis=1), (_mat(51),)),
    "sum_keepdims": (lambda m, x: m.np.sum(x**2, axis=0, keepdims=True), (_mat(52),)),
    "prod_all": (lambda m, x: m.np.prod(x), (_mat(53),)),
    "prod_axis1": (lambda m, x: m.np.prod(x, axis=1), (_mat(54, (2, 5)),)),
    "prod_keepdims": (lambda m, x: m.np.prod(x, axis=0, keepdims=True), (_mat(55, (3, 2)),)),
    "mean_axis0": (lambda m, x: m.np.mean(x**2, axis=0), (_mat(56),)),
    "mean_keepdims": (lambda m, x: m.np.mean(x, axis=(0, 1), keepdims=True), (_mat(57),)),
    "max_all": (lambda m, x: m.np.max(x), (_mat(58),)),
    "max_axis1_keepdims": (lambda m, x: m.np.max(x, axis=1, keepdims=True), (_mat(59),)),
    "min_axis0": (lambda m, x: m.np.min(x, axis=0), (_mat(60),)),
    "min_negative_axis": (lambda m, x: m.np.min(x**3, axis=-1), (_mat(61),)),
}

SHAPE = {
    "reshape": (lambda m, x: m.np.reshape(x, (3, 2)) * x.reshape(3, 2), (_mat(70),)),
    "reshape_minus1": (lambda m, x: m.np.reshape(x**2, (-1,)), (_mat(71),)),
    "transpose": (lambda m, x: m.np.transpose(x) * x.T, (_mat(72),)),
    "transpose_axes": (lambda m, x: m.np.transpose(x**2, (2, 0, 1)), (_mat(73, (2, 3, 2)),)),
    "expand_dims": (lambda m, x: m.np.expand_dims(x, 1) ** 2, (_mat(74),)),
    "squeeze": (lambda m, x: m.np.squeeze(x**2, axis=1), (_mat(75, (2, 1, 3)),)),
    "broadcast_to": (lambda m, x: m.np.broadcast_to(x, (2, 3)) ** 2, (_vec(76),)),
    "concatenate": (
        lambda m, x, y: m.np.concatenate([x, x * y, y**2]), (_vec(77), _vec(78))
    ),
    "concatenate_axis1": (
        lambda m, x, y: m.np.concatenate([x, x**2 * y], axis=1), (_mat(79), _mat(80))
    ),
    "stack": (lambda m, x, y: m.np.stack([x, x * y]) ** 2, (_vec(81), _vec(82))),
    "stack_axis1": (lambda m, x, y: m.np.stack([x, y**2], axis=1), (_vec(83), _vec(84))),
}

INDEXING = {
    "slice": (lambda m, x: x[1:, 1:3] ** 2, (_mat(90, (3, 4)),)),
    "slice_step": (lambda m, x: x[::2] ** 2, (_vec(91, n=5),)),
    "slice_negative_step": (lambda m, x: x[::-1] * x, (_vec(92, n=4),)),
    "slice_negative_step2": (lambda m, x: x[:, ::-2] ** 2, (_mat(93, (2, 5)),)),
    "integer_index": (lambda m, x: x[1] * x[-1, 2], (_mat(94),)),
    "gather": (lambda m, x: x[IDX] ** 2, (_vec(95),)),
    "gather_rows": (lambda m, x: x[IDX] * x[IDX[::-1]], (_mat(96, (3, 2)),)),
    "gather_2d": (lambda m, x: x[IDX, IDX[::-1] % 2] ** 2, (_mat(97, (3, 2)),)),
    "take_axis1": (lambda m, x: m.np.take(x, IDX, axis=1) ** 2, (_mat(98),)),
    "at_add": (lambda m, x, u: m.np.asarray(x).at[DUP].add(u) ** 2, (_vec(99), _vec(100))),
    "at_add_rows": (
        lambda m, x, u: m.np.asarray(x).at[DUP].add(u * x[DUP]),
        (_mat(101, (3, 2)), _mat(102, (3, 2))),
    ),
    "at_set": (lambda m, x, u: m.np.asarray(x).at[DUP[:2]].set(u[:2]) ** 2, (_vec(103), _vec(104))),
    "at_multiply": (
        lambda m, x, u: m.np.asarray(x).at[DUP].multiply(u) ** 2, (_vec(105), _vec(106))
    ),
    "at_multiply_zero_factor": (
        lambda m, x, u: m.np.asarray(x).at[DUP].multiply(u * np.array([0.0, 1.0, 1.0])),
        (_vec(107), _vec(108)),
    ),
}

PRODUCTS = {
    "dot_mv": (lambda m, a, v: m.np.dot(a, v), (_mat(110), _vec(111))),
    "dot_vv": (lambda m, u, v: m.np.dot(u, v), (_vec(112), _vec(113))),
    "matmul": (lambda m, a, b: a @ b, (_mat(114), _mat(115, (3, 2)))),
    "matmul_batched": (
        lambda m, a, b: m.np.matmul(a, b), (_mat(116, (2, 2, 3)), _mat(117, (3, 2)))
    ),
    "einsum_ij_jk": (
        lambda m, a, b: m.np.einsum("ij,jk->ik", a, b), (_mat(118), _mat(119, (3, 2)))
    ),
    "einsum_batch": (
        lambda m, a, b: m.np.einsum("bij,bj->bi", a, b), (_mat(120, (2, 2, 3)), _mat(121))
    ),
    "einsum_trace_like": (lambda m, a, b: m.np.einsum("ij,ij->", a, b), (_mat(122), _mat(123))),
    "outer": (lambda m, u, v: m.np.outer(u, v), (_vec(124), _vec(125, n=2))),
}

LINALG = {
    "solve_vector": (lambda m, a, b: m.np.linalg.solve(a, b), (_well_conditioned(130), _vec(131))),
    "solve_matrix": (
        lambda m, a, b: m.np.linalg.solve(a, b), (_well_conditioned(132), _mat(133, (3, 2)))
    ),
    "norm": (lambda m, x: m.np.linalg.norm(x), (_vec(134),)),
    "norm_axis": (lambda m, x: m.np.linalg.norm(x, axis=1), (_mat(135),)),
}

OPS = {
    "segment_sum": (
        lambda m, x: m.segment_sum(x**2, SEG, num_segments=3), (_mat(140, (5, 2)),)
    ),
    "segment_sum_vector": (
        lambda m, x: m.segment_sum(m.np.sin(x) * x, SEG, num_segments=4), (_vec(141, n=5),)
    ),
}

ALL = {**ELEMENTWISE, **REDUCTIONS, **SHAPE, **INDEXING, **PRODUCTS, **LINALG, **OPS}


def bind(fn, m=REAX):
    """The case function with the namespace filled in."""
    return lambda *args: fn(m, *args)
