"""Structural primitives (broadcast_in_dim, reshape, transpose, slice, pad, concatenate) through
the numpy layer: derivatives to second order and values against NumPy."""
import numpy as np
import pytest
from cases import SHAPE, bind
from check_grads import check_grads

import reaxgrad.core as rc
import reaxgrad.core.lax as lax
import reaxgrad.core.numpy as jnp


@pytest.mark.parametrize("name", sorted(SHAPE))
def test_check_grads(name):
    fn, args = SHAPE[name]
    check_grads(bind(fn), args, modes=("fwd", "rev"), order=2)


X = np.arange(24.0).reshape(2, 3, 4)


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: m.reshape(x, (4, 6)),
        lambda m, x: m.reshape(x, (-1, 2)),
        lambda m, x: m.transpose(x),
        lambda m, x: m.transpose(x, (1, 2, 0)),
        lambda m, x: m.moveaxis(x, 0, -1),
        lambda m, x: m.swapaxes(x, 0, 2),
        lambda m, x: m.expand_dims(x, -1),
        lambda m, x: m.expand_dims(x, (0, 2)),
        lambda m, x: m.squeeze(m.expand_dims(x, 1)),
        lambda m, x: m.broadcast_to(x[0], (5, 3, 4)),
        lambda m, x: m.concatenate([x, x * 2], axis=-1),
        lambda m, x: m.concatenate([x, x[:1]], axis=0),
        lambda m, x: m.stack([x, x + 1, x], axis=1),
        lambda m, x: m.stack([x[0], x[1]], axis=-1),
        lambda m, x: m.ravel(x),
    ],
)
def test_values_match_numpy_eager_and_traced(fn):
    want = fn(np, X)
    np.testing.assert_array_equal(fn(jnp, jnp.asarray(X)), want)
    np.testing.assert_array_equal(rc.jit(lambda v: fn(jnp, v))(X), want)
    # the transpose of each linear map is consistent with its forward map: <ct, A t> = <A^T ct, t>
    t = np.random.default_rng(1).standard_normal(X.shape)
    out, pullback = rc.vjp(lambda v: fn(jnp, v), X)
    ct = np.random.default_rng(2).standard_normal(out.shape)
    (back,) = pullback(ct)
    lhs = np.sum(ct * np.asarray(rc.jvp(lambda v: fn(jnp, v), (X,), (t,))[1]))
    np.testing.assert_allclose(lhs, np.sum(np.asarray(back) * t), rtol=1e-12)


def test_lax_pad_and_strided_slice_transposes():
    x = np.arange(1.0, 6.0)
    padded = lax.pad(x, [(2, 1, 1)])
    np.testing.assert_array_equal(padded, [0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0])
    ct = np.arange(12.0)
    (g,) = rc.vjp(lambda v: lax.pad(v, [(2, 1, 1)]), x)[1](ct)
    np.testing.assert_array_equal(g, [2.0, 4.0, 6.0, 8.0, 10.0])
    (g,) = rc.vjp(lambda v: lax.slice(v, (1,), (5,), (3,)), x)[1](np.array([1.0, 2.0]))
    np.testing.assert_array_equal(g, [0.0, 1.0, 0.0, 0.0, 2.0])


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: lax.pad(x**2, [(1, 2, 1), (0, 1, 0)]),
        lambda x: lax.slice(x * x[:, :1], (0, 1), (3, 4), (2, 2)),
        lambda x: lax.broadcast_in_dim(x**2, (2, 3, 4), (1, 2)),
        lambda x: lax.transpose(jnp.sin(x), (1, 0)),
        lambda x: lax.reduce_max(x**3, (1,)),
        lambda x: lax.concatenate([x, x**2, jnp.exp(x)], 1),
    ],
    ids=["pad", "slice", "broadcast_in_dim", "transpose", "reduce_max", "concatenate"],
)
def test_lax_structural_primitives_check_grads(fn):
    x = np.random.default_rng(4).uniform(0.2, 1.0, (3, 4))
    check_grads(fn, (x,), order=2)


def test_broadcast_transpose_sums_expanded_axes():
    x = np.array([[1.0], [2.0]])
    w = np.arange(24.0).reshape(3, 2, 4)
    g = rc.grad(lambda v: jnp.sum(jnp.broadcast_to(v, (3, 2, 4)) * w))(x)
    want = w.sum(axis=(0, 2)).reshape(2, 1)
    np.testing.assert_array_equal(g, want)


def test_shape_errors_name_the_operation():
    with pytest.raises(ValueError, match=r"reshape.*\(2, 3, 4\).*\(5, 5\)"):
        jnp.reshape(X, (5, 5))
    with pytest.raises(ValueError, match=r"concatenate.*\(2, 3, 4\).*\(2, 2, 4\)"):
        jnp.concatenate([X, X[:, :2]], axis=0)
    with pytest.raises(ValueError, match=r"stack.*same shape"):
        jnp.stack([X, X[0]])
    with pytest.raises(ValueError, match="squeeze"):
        jnp.squeeze(X, axis=0)
    with pytest.raises(ValueError, match=r"broadcast_to.*\(2, 3, 4\).*\(3, 4\)"):
        jnp.broadcast_to(X, (3, 4))
