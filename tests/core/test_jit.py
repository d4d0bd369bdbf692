"""jit (core/jit.py with the interpreter executor): results equal eager evaluation for every
case of the primitive table, caching on the abstract signature, static arguments, dtypes,
integer and boolean inputs, and jit inside and around other transforms."""
import functools

import numpy as np
import pytest
from cases import ALL, bind

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp


@pytest.mark.parametrize("name", sorted(ALL))
def test_jit_matches_eager(name):
    fn, args = ALL[name]
    f = bind(fn)
    want = f(*[jnp.asarray(a) for a in args])
    jf = rc.jit(f)
    got = jf(*args)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)
    got2 = jf(*args)  # cached
    np.testing.assert_array_equal(got2, got)
    assert jf.trace_count == 1


@pytest.mark.parametrize("name", sorted(ALL))
def test_jit_of_grad_matches_grad(name):
    fn, args = ALL[name]
    f = bind(fn)

    def scalar(*a):
        return jnp.sum(f(*a) ** 2)

    nums = tuple(range(len(args)))
    want = rc.grad(scalar, argnums=nums)(*args)
    got = rc.jit(rc.grad(scalar, argnums=nums))(*args)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-14)


def selu(x, alpha=1.67, lmbda=1.05):
    return lmbda * jnp.where(x > 0, x, alpha * jnp.exp(x) - alpha)


def test_quickstart_selu():
    x = np.linspace(-2.0, 2.0, 9)
    want = 1.05 * np.where(x > 0, x, 1.67 * np.exp(x) - 1.67)
    f = rc.jit(selu)
    np.testing.assert_allclose(f(x), want, rtol=1e-15)
    np.testing.assert_allclose(f(x), want, rtol=1e-15)
    assert f.trace_count == 1 and f.cache_size() == 1


def test_retrace_only_on_new_signature():
    f = rc.jit(lambda x, y: x * y + 1.0)
    a = np.ones(3)
    f(a, a)
    f(a + 1, a * 2)  # same shapes and dtypes: cached
    assert f.trace_count == 1
    f(np.ones(4), np.ones(4))  # new shape
    assert f.trace_count == 2
    f(np.ones(4, np.float32), np.ones(4, np.float32))  # new dtype
    assert f.trace_count == 3
    f(np.ones(4), np.ones(4))  # back to an old signature: no retrace
    assert f.trace_count == 3
    f(np.ones(4), 2.0)  # a Python scalar instead of an array
    assert f.trace_count == 4
    f(np.ones(4), 3.0)  # a different Python float value: same signature
    assert f.trace_count == 4
    assert f.cache_size() == 4


def test_static_argnums():
    calls = []

    def power_sum(x, n, mode):
        calls.append((n, mode))
        out = x**n
        return jnp.sum(out) if mode == "sum" else out  # Python control flow on statics

    f = rc.jit(power_sum, static_argnums=(1, 2))
    np.testing.assert_allclose(f(np.arange(3.0), 2, "sum"), 5.0)
    np.testing.assert_allclose(f(np.arange(3.0), 2, "sum"), 5.0)
    assert f.trace_count == 1
    np.testing.assert_allclose(f(np.arange(3.0), 3, "sum"), 9.0)
    assert f.trace_count == 2
    np.testing.assert_allclose(f(np.arange(3.0), 3, "none"), [0.0, 1.0, 8.0])
    assert f.trace_count == 3 and len(calls) == 3
    g = rc.jit(lambda x, n: x * n, static_argnums=-1)
    np.testing.assert_allclose(g(np.ones(2), 4), [4.0, 4.0])


def test_dtypes_are_preserved():
    x32 = np.linspace(0, 1, 4, dtype=np.float32)
    f = rc.jit(lambda x: x * 2.0 + jnp.sin(x) / 3)
    assert f(x32).dtype == np.float32
    assert f(x32.astype(np.float64)).dtype == np.float64
    assert rc.jit(lambda x: jnp.sum(x))(x32).dtype == np.float32
    assert rc.jit(rc.grad(lambda x: jnp.sum(x * 2.0)))(x32).dtype == np.float32
    assert rc.jit(lambda i: i + 1)(np.arange(3)).dtype == np.int64
    assert rc.jit(lambda i: i + 1)(np.arange(3, dtype=np.int32)).dtype == np.int32
    assert rc.jit(lambda x: x > 0.5)(x32).dtype == np.bool_
    assert rc.jit(lambda x: x.astype(jnp.float32))(np.ones(2)).dtype == np.float32


def test_integer_indices_and_boolean_masks():
    x = np.arange(10.0)
    f = rc.jit(lambda v, i, m: jnp.where(m, v[i], 0.0))
    idx = np.array([9, 0, 3])
    mask = np.array([True, False, True])
    np.testing.assert_array_equal(f(x, idx, mask), [9.0, 0.0, 3.0])
    np.testing.assert_array_equal(f(x, idx[::-1].copy(), ~mask), [0.0, 0.0, 0.0])
    assert f.trace_count == 1
    g = rc.jit(rc.grad(lambda v, i, m: jnp.sum(jnp.where(m, v[i] ** 2, 0.0))))(x, idx, mask)
    want = np.zeros(10)
    want[[9, 3]] = [18.0, 6.0]
    np.testing.assert_array_equal(g, want)


def test_pytrees_kwargs_and_closures():
    f = rc.jit(lambda d, scale=1.0: {"y": d["a"] * scale, "z": [d["b"], d["a"] + d["b"]]})
    out = f({"a": np.ones(2), "b": np.zeros(2)}, scale=3.0)
    np.testing.assert_array_equal(out["y"], [3.0, 3.0])
    np.testing.assert_array_equal(out["z"][1], [1.0, 1.0])
    table = np.arange(4.0)
    h = rc.jit(lambda x: x * table)  # closed-over array becomes a constant
    np.testing.assert_array_equal(h(np.ones(4)), table)
    # closing over a tracer of an outer transform (jit inside grad)
    g = rc.grad(lambda x: rc.jit(lambda y: x * y**2)(3.0))(2.0)
    assert g == 9.0


def test_jit_under_transforms_and_transforms_under_jit():
    f = rc.jit(lambda x: jnp.sum(jnp.sin(x) ** 2))
    x = np.array([0.2, 0.4])
    want = 2 * np.sin(x) * np.cos(x)
    np.testing.assert_allclose(rc.grad(f)(x), want, rtol=1e-14)
    np.testing.assert_allclose(rc.vmap(rc.grad(f))(np.stack([x, x])), [want, want], rtol=1e-14)
    np.testing.assert_allclose(rc.jit(rc.vmap(rc.grad(f)))(np.stack([x, x]))[1], want, rtol=1e-14)
    np.testing.assert_allclose(rc.jit(rc.jit(f))(x), f(x), rtol=1e-15)
    np.testing.assert_allclose(rc.jit(rc.hessian(f))(x), rc.hessian(f)(x), rtol=1e-14)


def test_python_scalar_arguments():
    # Python scalars reach the executor as they are: the primitive implementations accept them
    assert rc.jit(lambda x: x * 2.5)(3) == 7.5
    assert rc.jit(lambda x: x + 1)(True) == 2
    assert rc.jit(lambda x: x.astype(jnp.float32))(3.0).dtype == np.float32
    assert rc.jit(lambda x: x**1 + x**2)(3.0) == 12.0
    assert rc.jit(lambda x, y: x * y)(np.ones(2), 2)[0] == 2.0


def test_lower_returns_the_optimized_program():
    f = rc.jit(lambda x: jnp.sin(x) * 2.0)
    program = f.lower(np.ones(3))
    text = str(program)
    assert "sin" in text and "mul" in text and "f64[3]" in text
    assert f.cache_size() == 0  # lowering does not fill the call cache


def test_jit_as_method_decorator():
    class Model:
        def __init__(self, k):
            self.k = k

        @functools.partial(rc.jit, static_argnums=0)
        def energy(self, x):
            return self.k * jnp.sum(x**2)

        @rc.jit
        def traced_self(self, x):
            return x

    np.testing.assert_allclose(Model(2.0).energy(np.ones(3)), 6.0)
    np.testing.assert_allclose(Model(3.0).energy(np.ones(3)), 9.0)
    with pytest.raises(TypeError, match="argument leaf of type Model is not an array"):
        Model(1.0).traced_self(np.ones(3))


def test_unknown_backend_fails_early():
    with pytest.raises(ValueError, match="unknown jit backend 'nope'"):
        rc.jit(lambda x: x, backend="nope")
