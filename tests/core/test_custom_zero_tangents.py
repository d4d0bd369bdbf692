"""Custom rules on arguments that carry no tangent (e.g. through stop_gradient): the function
is evaluated without its rule, as in JAX (regression: custom_vjp raised)."""
import numpy as np
import pytest

import reaxgrad.core as rg
import reaxgrad.core.numpy as jnp


def test_custom_vjp_on_stop_gradient_input():
    @rg.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x), jnp.cos(x)), lambda c, g: (g * c * 100.0,))
    x = np.linspace(0.1, 1.0, 4)
    g = rg.grad(lambda x: jnp.sum(f(rg.stop_gradient(x)) * x))(x)
    np.testing.assert_allclose(g, np.sin(x), rtol=1e-14)


def test_custom_jvp_on_stop_gradient_input():
    @rg.custom_jvp
    def h(x):
        return jnp.exp(x)

    h.defjvp(lambda p, t: (jnp.exp(p[0]), 5.0 * t[0]))
    x = np.linspace(0.1, 1.0, 4)
    g = rg.grad(lambda x: jnp.sum(h(rg.stop_gradient(x)) * x))(x)
    np.testing.assert_allclose(g, np.exp(x), rtol=1e-14)
    # and the rule is still used when the argument does carry a tangent
    np.testing.assert_allclose(rg.grad(lambda x: jnp.sum(h(x)))(x), 5.0, rtol=1e-14)


def test_rule_still_applies_at_a_lower_level_when_an_upper_level_has_no_tangent():
    """grad_p of (value of an inner grad_x in which f's input is stop_gradient'ed in x):
    the inner level skips the rule, the outer level must still use it."""
    @rg.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x), jnp.cos(x)), lambda c, g: (g * c * 100.0,))
    x0 = np.linspace(0.1, 1.0, 4)

    def outer(p):
        inner = lambda x: jnp.sum(f(p * rg.stop_gradient(x))) + jnp.sum(x * p)
        v, g = rg.value_and_grad(inner)(x0)
        return v + jnp.sum(g)

    p = 0.7
    expected = np.sum(100.0 * np.cos(p * x0) * x0) + np.sum(x0) + len(x0)
    assert float(rg.grad(outer)(p)) == pytest.approx(expected, rel=1e-12)
