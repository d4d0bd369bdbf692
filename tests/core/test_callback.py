"""pure_callback: host code inside jit and vmap, differentiated through custom_vjp."""
import numpy as np
import scipy.sparse.linalg as spla

import reaxgrad.core as rg
import reaxgrad.core.numpy as jnp


def _cg(a, b):
    x, info = spla.cg(a, b, rtol=1e-14, atol=0.0)
    assert info == 0
    return x


@rg.custom_vjp
def cg_solve(a, b):
    return rg.pure_callback(_cg, b, a, b)


def _fwd(a, b):
    x = cg_solve(a, b)
    return x, (a, x)


def _bwd(res, g):
    a, x = res
    lam = rg.pure_callback(_cg, g, a.T, g)  # adjoint solve
    return (-jnp.outer(lam, x), lam)


cg_solve.defvjp(_fwd, _bwd)


def _spd(n, seed=0):
    m = np.random.default_rng(seed).normal(size=(n, n))
    return m @ m.T + n * np.eye(n)


def test_callback_under_jit_matches_eager_and_counts_calls():
    calls = []

    def host(x):
        calls.append(1)
        return np.cumsum(x)

    f = rg.jit(lambda x: rg.pure_callback(host, x, x * 2.0) + 1.0)
    x = np.arange(4.0)
    np.testing.assert_allclose(f(x), np.cumsum(2 * x) + 1)
    np.testing.assert_allclose(f(x + 1), np.cumsum(2 * x + 2) + 1)
    assert f.trace_count == 1 and len(calls) == 2


def test_iterative_solve_gradients_match_dense_solve():
    a, b = _spd(5), np.linspace(1.0, 2.0, 5)

    def loss(a, b, solve):
        x = solve(a, b)
        return jnp.sum(jnp.sin(x))

    ga, gb = rg.jit(rg.grad(lambda a, b: loss(a, b, cg_solve), argnums=(0, 1)))(a, b)
    ra, rb = rg.grad(lambda a, b: loss(a, b, jnp.linalg.solve), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, ra, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gb, rb, rtol=1e-9, atol=1e-12)


def test_callback_under_vmap_runs_per_example():
    a = _spd(4)
    bs = np.random.default_rng(1).normal(size=(3, 4))
    xs = rg.vmap(lambda b: cg_solve(a, b))(bs)
    np.testing.assert_allclose(xs, np.linalg.solve(a, bs.T).T, rtol=1e-10)
