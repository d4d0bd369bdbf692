"""The derivative checker itself: it accepts correct rules and rejects wrong ones, at the order
where they are wrong (so that the primitive tests built on it can fail)."""
import numpy as np
import pytest
from check_grads import check_grads, numerical_jvp

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp


def _cube_with_rule(first_factor, second_order_ok):
    """x**3 with a custom JVP: `first_factor` scales the first derivative; when
    `second_order_ok` is False the derivative is built from stop_gradient(x), so it is right to
    first order but its own derivative is zero."""

    @rc.custom_jvp
    def cube(x):
        return x**3

    @cube.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        xd = x if second_order_ok else rc.stop_gradient(x)
        return cube(x), first_factor * 3.0 * xd**2 * t

    return cube


X = np.array([0.3, -0.7, 1.1])


def test_numerical_jvp_of_known_function():
    v = np.array([1.0, 2.0, -1.0])
    (d,) = numerical_jvp(lambda x: jnp.sin(x) * x, (X,), (v,))
    np.testing.assert_allclose(d, (np.cos(X) * X + np.sin(X)) * v, rtol=1e-10)


def test_correct_rule_passes_to_third_order():
    check_grads(_cube_with_rule(1.0, True), (X,), order=3)


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_wrong_first_derivative_fails(mode):
    with pytest.raises(AssertionError):
        check_grads(_cube_with_rule(1.001, True), (X,), modes=(mode,), order=1)


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_wrong_second_derivative_fails_only_at_order_2(mode):
    f = _cube_with_rule(1.0, False)
    check_grads(f, (X,), modes=(mode,), order=1)
    with pytest.raises(AssertionError):
        check_grads(f, (X,), modes=(mode,), order=2)


def test_wrong_custom_vjp_fails_in_rev_mode():
    @rc.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x), x), lambda x, ct: (ct * jnp.cos(x) * 1.01,))
    with pytest.raises(AssertionError):
        check_grads(f, (X,), modes=("rev",), order=1)


def test_pytree_arguments_and_outputs():
    def f(d):
        return {"s": jnp.sum(d["a"] * d["b"]), "v": [jnp.exp(d["a"])]}

    check_grads(f, ({"a": X, "b": X[::-1].copy()},), order=2)
