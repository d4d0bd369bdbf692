"""custom_jvp and custom_vjp (core/custom.py): the user's rules are used (not the derivative of
the implementation) under grad, higher-order grad, vmap and jit."""
import functools

import numpy as np
import pytest

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp


@rc.custom_jvp
def log1pexp(x):
    return jnp.log(1.0 + jnp.exp(x))


@log1pexp.defjvp
def _log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp(x), t * (1.0 - 1.0 / (1.0 + jnp.exp(x)))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


XS = np.array([-3.0, 0.0, 2.0, 100.0])


def test_custom_jvp_rule_is_used():
    # the naive derivative exp(x)/(1+exp(x)) is nan where exp overflows; the rule gives 1
    with np.errstate(over="ignore", invalid="ignore"):
        naive = rc.grad(lambda x: jnp.log(1.0 + jnp.exp(x)))(1000.0)
        assert np.isnan(naive)
        assert rc.grad(log1pexp)(1000.0) == 1.0
    np.testing.assert_allclose(rc.jvp(log1pexp, (3.0,), (2.0,))[1], 2 * sigmoid(3.0), rtol=1e-15)


def test_grad_of_grad_through_custom_jvp():
    s = sigmoid(XS[:3])
    np.testing.assert_allclose(rc.vmap(rc.grad(rc.grad(log1pexp)))(XS[:3]), s * (1 - s), rtol=1e-13)
    third = rc.grad(rc.grad(rc.grad(log1pexp)))(0.5)
    s = sigmoid(0.5)
    np.testing.assert_allclose(third, s * (1 - s) * (1 - 2 * s), rtol=1e-12)


def test_custom_jvp_under_vmap_and_jit():
    np.testing.assert_allclose(rc.vmap(log1pexp)(XS[:3]), np.log1p(np.exp(XS[:3])), rtol=1e-14)
    np.testing.assert_allclose(rc.vmap(rc.grad(log1pexp))(XS), sigmoid(XS), rtol=1e-14)
    np.testing.assert_allclose(rc.jit(rc.vmap(rc.grad(log1pexp)))(XS), sigmoid(XS), rtol=1e-14)
    np.testing.assert_allclose(rc.grad(rc.jit(log1pexp))(100.0), 1.0)
    np.testing.assert_allclose(rc.jit(rc.grad(log1pexp))(100.0), 1.0)
    total = rc.grad(lambda v: jnp.sum(rc.vmap(log1pexp)(v)))(XS)
    np.testing.assert_allclose(total, sigmoid(XS), rtol=1e-14)


def test_custom_jvp_with_nondiff_argnums():
    @functools.partial(rc.custom_jvp, nondiff_argnums=(0,))
    def scaled_square(n, x):
        return n * x**2

    @scaled_square.defjvp
    def _(n, primals, tangents):
        (x,), (t,) = primals, tangents
        return scaled_square(n, x), 100.0 * t  # deliberately not the true derivative

    assert rc.grad(lambda x: scaled_square(3.0, x))(2.0) == 100.0


@functools.partial(rc.custom_vjp, nondiff_argnums=(0, 1))
def clip_gradient(lo, hi, x):
    return x


def _clip_fwd(lo, hi, x):
    return x, None


def _clip_bwd(lo, hi, res, g):
    return (jnp.clip(g, lo, hi),)


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


def test_custom_vjp_rule_is_used():
    def f(x):
        return clip_gradient(-0.75, 0.75, jnp.sin(x))

    np.testing.assert_allclose(f(1.0), np.sin(1.0))
    # the cotangent arriving at the custom function is clipped before the chain rule continues
    np.testing.assert_allclose(rc.grad(lambda x: 2.0 * f(x))(0.1), 0.75 * np.cos(0.1), rtol=1e-15)
    np.testing.assert_allclose(rc.grad(lambda x: 0.5 * f(x))(0.1), 0.5 * np.cos(0.1), rtol=1e-15)


@rc.custom_vjp
def safe_norm(v):
    return jnp.sqrt(jnp.sum(v**2))


def _norm_fwd(v):
    n = jnp.sqrt(jnp.sum(v**2))
    return n, (v, n)


def _norm_bwd(res, g):
    v, n = res
    return (g * jnp.where(n > 0, v / jnp.where(n > 0, n, 1.0), 0.0),)


safe_norm.defvjp(_norm_fwd, _norm_bwd)


def test_custom_vjp_under_vmap_and_jit():
    vs = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    want = np.array([[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(rc.vmap(rc.grad(safe_norm))(vs), want, rtol=1e-15)
    np.testing.assert_allclose(rc.jit(rc.vmap(rc.grad(safe_norm)))(vs), want, rtol=1e-15)
    np.testing.assert_allclose(rc.grad(rc.jit(safe_norm))(vs[0]), want[0], rtol=1e-15)
    np.testing.assert_allclose(rc.jit(rc.grad(safe_norm))(vs[1]), want[1])
    np.testing.assert_allclose(rc.vmap(safe_norm)(vs), [5.0, 0.0, 1.0])
    g = rc.grad(lambda m: jnp.sum(rc.vmap(safe_norm)(m)))(vs)
    np.testing.assert_allclose(g, want, rtol=1e-15)
    # reverse-mode Jacobian of the batched function (vmap of the pullback)
    jac = rc.jacrev(lambda m: rc.vmap(safe_norm)(m))(vs)
    assert jac.shape == (3, 3, 2)
    np.testing.assert_allclose(jac[0, 0], want[0], rtol=1e-15)
    np.testing.assert_allclose(jac[0, 2], [0.0, 0.0])


def test_custom_vjp_with_pytree_arguments():
    @rc.custom_vjp
    def weighted(params, x):
        return params["w"] * x + params["b"]

    def fwd(params, x):
        return weighted(params, x), (params, x)

    def bwd(res, g):
        params, x = res
        return ({"w": 10.0 * g * x, "b": 10.0 * g}, 10.0 * g * params["w"])

    weighted.defvjp(fwd, bwd)
    gp, gx = rc.grad(weighted, argnums=(0, 1))({"w": 2.0, "b": 1.0}, 3.0)
    assert gp == {"w": 30.0, "b": 10.0} and gx == 20.0


def test_custom_vjp_errors():
    with pytest.raises(TypeError, match="forward-mode"):
        rc.jvp(safe_norm, (np.array([3.0, 4.0]),), (np.ones(2),))

    @rc.custom_vjp
    def bad(x):
        return x * 2.0

    bad.defvjp(lambda x: (x * 2.0, None), lambda res, g: g)  # not a tuple
    with pytest.raises(TypeError, match="bwd must return a tuple"):
        rc.grad(bad)(1.0)

    @rc.custom_jvp
    def no_rule(x):
        return x

    with pytest.raises(AttributeError, match="defjvp"):
        no_rule(1.0)
