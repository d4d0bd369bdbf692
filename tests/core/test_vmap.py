"""vmap (core/batching.py and every primitive's batch rule) against an explicit Python loop,
for every case of the primitive table with batch axes first, last or absent, plus in_axes /
out_axes specifications over pytrees."""
import numpy as np
import pytest
from cases import ALL, bind

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp

B = 3


def _axes_variants(args):
    """All arguments at axis 0; all at their last axis; only the first / only the last mapped."""
    n = len(args)
    variants = [(0,) * n, tuple(-1 if np.ndim(a) else 0 for a in args)]
    if n > 1:
        variants.append((0,) + (None,) * (n - 1))
        variants.append((None,) * (n - 1) + (-1 if np.ndim(args[-1]) else 0,))
    return variants


def _batch(args, axes, seed):
    rng = np.random.default_rng(seed)
    out = []
    for a, ax in zip(args, axes):
        if ax is None:
            out.append(a)
        else:
            # small perturbations keep the examples away from kinks and ties
            examples = [a + 0.01 * k * rng.uniform(size=np.shape(a)) for k in range(B)]
            out.append(np.stack(examples, axis=ax if np.ndim(a) else 0))
    return out


def _example(batched, axes, k):
    return [b if ax is None else np.take(b, k, axis=ax) for b, ax in zip(batched, axes)]


CASES = [(name, axes) for name in sorted(ALL) for axes in _axes_variants(ALL[name][1])]


@pytest.mark.parametrize("name, axes", CASES, ids=[f"{n}-{a}" for n, a in CASES])
def test_vmap_matches_loop(name, axes):
    fn, args = ALL[name]
    f = bind(fn)
    batched = _batch(args, axes, seed=len(name))
    out = rc.vmap(f, in_axes=axes)(*batched)
    for k in range(B):
        want = f(*_example(batched, axes, k))
        np.testing.assert_allclose(np.asarray(out)[k], want, rtol=1e-13, atol=1e-14)
    # out_axes=-1 puts the batch last
    out_last = rc.vmap(f, in_axes=axes, out_axes=-1)(*batched)
    np.testing.assert_allclose(np.moveaxis(np.asarray(out_last), -1, 0), out, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(ALL))
def test_vmap_of_grad_matches_loop(name):
    fn, args = ALL[name]
    f = bind(fn)
    axes = (0,) * len(args)
    batched = _batch(args, axes, seed=1)

    def scalar(*a):
        return jnp.sum(jnp.sin(f(*a)))

    argnums = tuple(range(len(args)))
    grads = rc.vmap(rc.grad(scalar, argnums=argnums))(*batched)
    for k in range(B):
        want = rc.grad(scalar, argnums=argnums)(*_example(batched, axes, k))
        for g, w in zip(grads, want):
            np.testing.assert_allclose(np.asarray(g)[k], w, rtol=1e-12, atol=1e-13)


def test_quickstart_matrix_vector_product():
    mat = np.random.default_rng(0).standard_normal((150, 100))
    batched_x = np.random.default_rng(1).standard_normal((10, 100))
    want = batched_x @ mat.T
    np.testing.assert_allclose(rc.vmap(lambda v: jnp.dot(mat, v))(batched_x), want, rtol=1e-12)
    np.testing.assert_allclose(
        rc.jit(rc.vmap(lambda m, v: m @ v, in_axes=(None, 0)))(mat, batched_x), want, rtol=1e-12
    )


def test_in_axes_and_out_axes_specifications():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(3.0)
    c = np.array([1.0, -2.0])
    out = rc.vmap(lambda x, y: x * y, in_axes=(1, None))(a, c)
    np.testing.assert_array_equal(out, a.T * c[None, :])
    out = rc.vmap(lambda x, y: x + y, in_axes=[0, 1])(a, a.T)
    np.testing.assert_array_equal(out, 2 * a)
    out = rc.vmap(lambda x: x * 2, out_axes=1)(a)
    np.testing.assert_array_equal(out, 2 * a.T)
    out = rc.vmap(lambda x: (x, jnp.sum(x)), out_axes=(1, 0))(a)
    np.testing.assert_array_equal(out[0], a.T)
    np.testing.assert_array_equal(out[1], a.sum(axis=1))
    # dict in_axes, prefix of the argument pytree
    d = {"w": a, "s": 2.0}
    out = rc.vmap(lambda p: p["w"] * p["s"], in_axes=({"w": 0, "s": None},))(d)
    np.testing.assert_array_equal(out, 2 * a)
    # an unbatched output broadcast to the batch size, or kept as is with out_axes=None
    out = rc.vmap(lambda x: 7.0)(a)
    np.testing.assert_array_equal(out, [7.0, 7.0])
    out = rc.vmap(lambda x: (x, b), out_axes=(0, None))(a)
    np.testing.assert_array_equal(out[1], b)
    # integer (index) arguments are batched like any other
    out = rc.vmap(lambda i, x: x[i], in_axes=(0, None))(np.array([2, 0]), jnp.asarray(b))
    np.testing.assert_array_equal(out, [2.0, 0.0])


def test_vmap_of_jvp_and_vjp_gives_jacobians():
    def g(x):
        return jnp.sin(x) * jnp.sum(x)

    x = np.array([0.1, 0.4, -0.3])
    jac = np.diag(np.cos(x) * x.sum()) + np.outer(np.sin(x), np.ones(3))
    cols = rc.vmap(lambda t: rc.jvp(g, (x,), (t,))[1], out_axes=1)(np.eye(3))
    np.testing.assert_allclose(cols, jac, rtol=1e-13)
    _, pullback = rc.vjp(g, x)
    rows = rc.vmap(lambda c: pullback(c)[0])(np.eye(3))
    np.testing.assert_allclose(rows, jac, rtol=1e-13)
