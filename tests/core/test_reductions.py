"""Reductions (reduce_sum / reduce_max / reduce_min primitives and the numpy-layer sum, prod,
mean, max, min): derivatives to second order, axis/keepdims, exact derivatives of prod at
zeros, and the tie rule of max/min."""
import itertools

import numpy as np
import pytest
from cases import REDUCTIONS, bind
from check_grads import check_grads

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_check_grads(name):
    fn, args = REDUCTIONS[name]
    check_grads(bind(fn), args, modes=("fwd", "rev"), order=2)


@pytest.mark.parametrize("op", ["sum", "prod", "mean", "max", "min"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), (2, 0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_values_and_shapes_match_numpy(op, axis, keepdims):
    x = np.random.default_rng(0).uniform(0.5, 1.5, (2, 3, 4))
    got = getattr(jnp, op)(jnp.asarray(x), axis=axis, keepdims=keepdims)
    want = getattr(np, op)(x, axis=axis, keepdims=keepdims)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-13)
    traced = rc.jit(lambda v: getattr(jnp, op)(v, axis=axis, keepdims=keepdims))(x)
    np.testing.assert_allclose(traced, want, rtol=1e-13)


def _prod_grad_exact(x):
    """Gradient of prod(x): the product of all the other entries."""
    n = len(x)
    return np.array([np.prod(np.delete(x, i)) for i in range(n)])


def _prod_hessian_exact(x):
    n = len(x)
    h = np.zeros((n, n))
    for i, j in itertools.product(range(n), range(n)):
        if i != j:
            h[i, j] = np.prod(np.delete(x, [i, j]))
    return h


@pytest.mark.parametrize(
    "x",
    [
        [2.0, 3.0, 5.0, 7.0, 11.0],
        [0.0, 3.0, 5.0, 7.0, 11.0],
        [2.0, 3.0, 0.0, 7.0, 0.0],
        [0.0, 0.0, 0.0, 7.0, 11.0],
        [-1.5, 0.0, 4.0],
    ],
)
def test_prod_with_zeros_has_exact_derivatives(x):
    x = np.asarray(x)
    np.testing.assert_array_equal(rc.grad(jnp.prod)(x), _prod_grad_exact(x))
    np.testing.assert_array_equal(rc.jacfwd(jnp.prod)(x), _prod_grad_exact(x))
    np.testing.assert_array_equal(rc.hessian(jnp.prod)(x), _prod_hessian_exact(x))
    np.testing.assert_array_equal(rc.jacrev(rc.grad(jnp.prod))(x), _prod_hessian_exact(x))


def test_prod_along_axis_with_zeros():
    x = np.array([[0.0, 2.0, 3.0], [1.0, 0.0, 0.0], [4.0, 5.0, 6.0]])
    w = np.array([1.0, 10.0, 100.0])
    g = rc.grad(lambda v: jnp.sum(jnp.prod(v, axis=1) * w))(x)
    want = np.stack([w[r] * _prod_grad_exact(x[r]) for r in range(3)])
    np.testing.assert_array_equal(g, want)
    g0 = rc.grad(lambda v: jnp.sum(jnp.prod(v, axis=0, keepdims=True) * w))(x)
    want0 = np.stack([w[c] * _prod_grad_exact(x[:, c]) for c in range(3)], axis=1)
    np.testing.assert_array_equal(g0, want0)


def test_max_min_ties_share_the_derivative():
    x = jnp.asarray([1.0, 3.0, 3.0, 2.0])
    np.testing.assert_array_equal(rc.grad(jnp.max)(x), [0.0, 0.5, 0.5, 0.0])
    np.testing.assert_array_equal(rc.grad(jnp.min)(x), [1.0, 0.0, 0.0, 0.0])
    m = jnp.asarray([[1.0, 1.0], [0.0, 2.0]])
    np.testing.assert_array_equal(
        rc.grad(lambda v: jnp.sum(jnp.max(v, axis=1)))(m), [[0.5, 0.5], [0.0, 1.0]]
    )


def test_mean_and_sum_gradients():
    x = jnp.ones((2, 5))
    np.testing.assert_allclose(rc.grad(jnp.mean)(x), np.full((2, 5), 0.1), rtol=1e-15)
    np.testing.assert_array_equal(
        rc.grad(lambda v: jnp.sum(jnp.sum(v, axis=0) * jnp.arange(5.0)))(x),
        np.tile(np.arange(5.0), (2, 1)),
    )


def test_integer_and_boolean_reductions():
    i = jnp.asarray([[1, 2], [3, 4]])
    assert jnp.sum(i).dtype == np.int64 and int(jnp.sum(i)) == 10
    assert int(jnp.prod(i)) == 24
    b = jnp.asarray([True, False, True])
    assert bool(jnp.any(b)) and not bool(jnp.all(b))
    assert int(jnp.sum(b)) == 2
    assert rc.jit(lambda v: jnp.max(v))(i) == 4
