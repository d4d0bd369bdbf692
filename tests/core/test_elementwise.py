"""Elementwise primitives (core/prims/elementwise.py): first and second derivatives in forward
and reverse mode against finite differences, special points, and dtype rules."""
import numpy as np
import pytest
from cases import ELEMENTWISE, bind
from check_grads import check_grads

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_check_grads(name):
    fn, args = ELEMENTWISE[name]
    check_grads(bind(fn), args, modes=("fwd", "rev"), order=2)


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_values_match_numpy(name):
    fn, args = ELEMENTWISE[name]
    np_ns = type("M", (), {"np": np})
    np.testing.assert_allclose(bind(fn)(*args), fn(np_ns, *args), rtol=1e-14, atol=1e-15)


def test_integer_powers_at_zero():
    # d/dx x**2 and x**3 at 0, and the second derivative of x**3 at 0, are exactly zero
    assert rc.grad(lambda x: x**2)(0.0) == 0.0
    assert rc.grad(lambda x: x**3)(0.0) == 0.0
    assert rc.grad(rc.grad(lambda x: x**3))(0.0) == 0.0
    assert rc.grad(rc.grad(rc.grad(lambda x: x**3)))(0.0) == 6.0
    assert rc.grad(lambda x: x**0)(2.5) == 0.0
    assert rc.grad(lambda x: x**-1)(2.0) == -0.25


def test_power_at_zero_base_and_exponent():
    # x**y with y a traced constant 2.0: derivative at x = 0 is 0, not nan
    assert rc.grad(lambda x: jnp.power(x, 2.0))(0.0) == 0.0
    # derivative w.r.t. the exponent at a zero base is defined as 0 (as JAX)
    assert rc.grad(lambda y: jnp.power(0.0, y), argnums=0)(2.0) == 0.0
    # x**0.0 has zero derivative everywhere, including 0
    assert rc.grad(lambda x: jnp.power(x, 0.0))(0.0) == 0.0
    np.testing.assert_allclose(rc.grad(lambda y: 2.0**y)(3.0), 8 * np.log(2.0), rtol=1e-14)


def test_abs_sign_and_comparisons_derivatives():
    x = jnp.asarray([-2.0, 3.0])
    np.testing.assert_array_equal(rc.grad(lambda v: jnp.sum(jnp.abs(v)))(x), [-1.0, 1.0])
    np.testing.assert_array_equal(rc.grad(lambda v: jnp.sum(jnp.sign(v) * 0 + jnp.sign(v)))(x),
                                  [0.0, 0.0])
    np.testing.assert_array_equal(
        rc.grad(lambda v: jnp.sum(jnp.where(v > 0, 1.0, 0.0) * v))(x), [0.0, 1.0]
    )


def test_maximum_minimum_ties_split_the_gradient():
    gx, gy = rc.grad(lambda a, b: jnp.maximum(a, b), argnums=(0, 1))(1.5, 1.5)
    assert (gx, gy) == (0.5, 0.5)
    gx, gy = rc.grad(lambda a, b: jnp.minimum(a, b), argnums=(0, 1))(1.0, 2.0)
    assert (gx, gy) == (1.0, 0.0)


def test_clip_gradient_is_zero_outside():
    x = jnp.asarray([-1.0, 0.5, 2.0])
    np.testing.assert_array_equal(
        rc.grad(lambda v: jnp.sum(jnp.clip(v, 0.0, 1.0)))(x), [0.0, 1.0, 0.0]
    )


def test_where_does_not_mix_branches():
    x = jnp.asarray([1.0, 2.0, 3.0])
    g = rc.grad(lambda v: jnp.sum(jnp.where(v > 1.5, v**2, 3.0 * v)))(x)
    np.testing.assert_array_equal(g, [3.0, 4.0, 6.0])


def test_arctan2_quadrants():
    y = jnp.asarray([1.0, 1.0, -1.0, -1.0])
    x = jnp.asarray([1.0, -1.0, -1.0, 1.0])
    gy, gx = rc.grad(lambda a, b: jnp.sum(jnp.arctan2(a, b)), argnums=(0, 1))(y, x)
    np.testing.assert_allclose(gy, x / (x**2 + y**2), rtol=1e-15)
    np.testing.assert_allclose(gx, -y / (x**2 + y**2), rtol=1e-15)


def test_piecewise_constant_primitives_have_zero_derivatives():
    x = jnp.asarray([0.3, 1.7, -2.2])
    for fn in (jnp.floor, jnp.ceil, jnp.round, jnp.sign):
        np.testing.assert_array_equal(rc.grad(lambda v, fn=fn: jnp.sum(fn(v) * v))(x), fn(x))
        np.testing.assert_array_equal(rc.jvp(fn, (x,), (jnp.ones(3),))[1], np.zeros(3))


def test_convert_element_type_derivatives():
    x = np.array([0.5, 1.5], dtype=np.float32)
    g = rc.grad(lambda v: jnp.sum(v.astype(jnp.float64) ** 2))(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * x)
    t = np.array([0.25, -1.0])
    tangent = rc.jvp(lambda v: v.astype(jnp.float32), (x.astype(float),), (t,))[1]
    assert tangent.dtype == np.float32
    np.testing.assert_array_equal(tangent, t.astype(np.float32))
    (ct,) = rc.vjp(lambda v: v.astype(jnp.float32), x.astype(float))[1](x)
    assert ct.dtype == np.float64
    np.testing.assert_array_equal(ct, x.astype(float))
    # conversion to an integer type cuts the derivative
    np.testing.assert_array_equal(
        rc.grad(lambda v: jnp.sum(v.astype(jnp.int64) * 1.0 + v))(x.astype(float)), [1.0, 1.0]
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved_by_derivatives(dtype):
    x = np.linspace(0.2, 0.8, 4).astype(dtype)

    def f(v):
        return jnp.sum(jnp.exp(v) * 2.0 + v**3 / 3.0 + jnp.sqrt(v) - jnp.tanh(v))

    assert rc.grad(f)(x).dtype == dtype
    assert rc.hessian(f)(x).dtype == dtype
    assert rc.jvp(f, (x,), (np.ones_like(x),))[1].dtype == dtype
    assert (jnp.asarray(x) * 2.0).dtype == dtype
    assert (jnp.asarray(x) + 1).dtype == dtype


def test_integer_arithmetic_stays_integer():
    i = jnp.asarray([1, 2, 3])
    assert (i * 2).dtype == np.int64
    assert (i * 2.0).dtype == np.float64
    assert rc.jit(lambda v: v * 2)(i).dtype == np.int64
    np.testing.assert_array_equal(rc.jit(lambda v: v**2)(i), [1, 4, 9])
