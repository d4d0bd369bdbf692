"""Contractions and solves (core/prims/linalg.py: dot_general, solve) through dot, matmul,
einsum, outer, linalg.solve and linalg.norm: derivatives to second order, batching under vmap,
and values against NumPy."""
import numpy as np
import pytest
from cases import LINALG, PRODUCTS, bind
from check_grads import check_grads

import reaxgrad.core as rc
import reaxgrad.core.lax as lax
import reaxgrad.core.numpy as jnp

CASES = {**PRODUCTS, **LINALG}
RNG = np.random.default_rng(7)


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_grads(name):
    fn, args = CASES[name]
    check_grads(bind(fn), args, modes=("fwd", "rev"), order=2)


@pytest.mark.parametrize(
    "subscripts, shapes",
    [
        ("ij,jk->ik", [(2, 3), (3, 4)]),
        ("ij,jk", [(2, 3), (3, 4)]),
        ("bij,bjk->bki", [(2, 3, 4), (2, 4, 2)]),
        ("i,i->", [(3,), (3,)]),
        ("i,j->ij", [(3,), (2,)]),
        ("ij->ji", [(2, 3)]),
        ("ij->i", [(2, 3)]),
        ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
        ("...ij,...jk->...ik", [(5, 2, 3), (5, 3, 2)]),
        ("ijk,k->ij", [(2, 3, 4), (4,)]),
        ("ab,cb->ca", [(2, 3), (4, 3)]),
    ],
)
def test_einsum_matches_numpy_and_its_vjp_is_the_transpose(subscripts, shapes):
    ops = [RNG.standard_normal(s) for s in shapes]
    want = np.einsum(subscripts, *ops)
    np.testing.assert_allclose(jnp.einsum(subscripts, *ops), want, rtol=1e-12, atol=1e-14)
    out, pullback = rc.vjp(lambda *a: jnp.einsum(subscripts, *a), *ops)
    ct = RNG.standard_normal(np.shape(want))
    tangents = [RNG.standard_normal(s) for s in shapes]
    _, jv = rc.jvp(lambda *a: jnp.einsum(subscripts, *a), tuple(ops), tuple(tangents))
    lhs = np.sum(ct * np.asarray(jv))
    rhs = sum(np.sum(np.asarray(c) * t) for c, t in zip(pullback(ct), tangents))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


@pytest.mark.parametrize(
    "sa, sb",
    [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((4, 2, 3), (3, 2)), ((2, 3), (4, 3, 2))],
)
def test_matmul_and_dot_shapes(sa, sb):
    a, b = RNG.standard_normal(sa), RNG.standard_normal(sb)
    np.testing.assert_allclose(jnp.matmul(a, b), np.matmul(a, b), rtol=1e-12)
    np.testing.assert_allclose(jnp.dot(a, b), np.dot(a, b), rtol=1e-12)
    ga, gb = rc.grad(lambda x, y: jnp.sum(jnp.matmul(x, y) ** 2), argnums=(0, 1))(a, b)
    assert ga.shape == sa and gb.shape == sb
    check_grads(lambda x, y: jnp.matmul(x, y), (a, b), order=1)


def test_dot_general_batch_and_contracting_dims():
    x, y = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((4, 2, 5))
    dn = (((2,), (0,)), ((0,), (1,)))
    out = lax.dot_general(x, y, dn)
    np.testing.assert_allclose(out, np.einsum("bij,jbk->bik", x, y), rtol=1e-12)
    check_grads(lambda a, b: lax.dot_general(a, b, dn), (x, y), order=2)
    for in_axes in [(0, None), (None, 2), (1, 0)]:
        xs = np.stack([x, 2 * x], axis=in_axes[0]) if in_axes[0] is not None else x
        ys = np.stack([y, y + 1], axis=in_axes[1]) if in_axes[1] is not None else y
        batched = rc.vmap(lambda a, b: lax.dot_general(a, b, dn), in_axes=in_axes)(xs, ys)
        for k in range(2):
            a = np.take(xs, k, axis=in_axes[0]) if in_axes[0] is not None else x
            b = np.take(ys, k, axis=in_axes[1]) if in_axes[1] is not None else y
            np.testing.assert_allclose(batched[k], lax.dot_general(a, b, dn), rtol=1e-12)


A = np.eye(3) * 3.0 + 0.3 * RNG.standard_normal((3, 3))
B = RNG.standard_normal(3)


def test_solve_gradients_wrt_matrix_and_rhs():
    x = np.linalg.solve(A, B)
    np.testing.assert_allclose(jnp.linalg.solve(A, B), x, rtol=1e-13)
    w = RNG.standard_normal(3)
    ga, gb = rc.grad(lambda a, b: jnp.dot(w, jnp.linalg.solve(a, b)), argnums=(0, 1))(A, B)
    lam = np.linalg.solve(A.T, w)  # adjoint solution
    np.testing.assert_allclose(gb, lam, rtol=1e-12)
    np.testing.assert_allclose(ga, -np.outer(lam, x), rtol=1e-12)


@pytest.mark.parametrize("in_axes", [(0, 0), (0, None), (None, 0)])
def test_solve_batched_under_vmap(in_axes):
    As = np.stack([A, A.T, A + np.eye(3)])
    Bs = np.stack([B, 2 * B, B[::-1]])
    args = (As if in_axes[0] == 0 else A, Bs if in_axes[1] == 0 else B)
    out = rc.vmap(jnp.linalg.solve, in_axes=in_axes)(*args)
    for k in range(3):
        a = As[k] if in_axes[0] == 0 else A
        b = Bs[k] if in_axes[1] == 0 else B
        np.testing.assert_allclose(out[k], np.linalg.solve(a, b), rtol=1e-12)
    # derivatives of the batched solve
    check_grads(
        lambda a, b: rc.vmap(jnp.linalg.solve, in_axes=in_axes)(a, b), args, order=2
    )
    # per-example gradients under vmap equal the loop
    g = rc.vmap(rc.grad(lambda a, b: jnp.sum(jnp.linalg.solve(a, b) ** 2), argnums=(0, 1)),
                in_axes=in_axes)(*args)
    for k in range(3):
        a = As[k] if in_axes[0] == 0 else A
        b = Bs[k] if in_axes[1] == 0 else B
        gk = rc.grad(lambda a, b: jnp.sum(jnp.linalg.solve(a, b) ** 2), argnums=(0, 1))(a, b)
        np.testing.assert_allclose(g[0][k], gk[0], rtol=1e-12)
        np.testing.assert_allclose(g[1][k], gk[1], rtol=1e-12)


def test_solve_with_stacked_matrices_and_inv():
    As = np.stack([A, A.T])
    Bs = RNG.standard_normal((2, 3, 2))
    np.testing.assert_allclose(jnp.linalg.solve(As, Bs), np.linalg.solve(As, Bs), rtol=1e-12)
    np.testing.assert_allclose(jnp.linalg.inv(A), np.linalg.inv(A), rtol=1e-12)
    check_grads(jnp.linalg.solve, (As, Bs), order=1)


@pytest.mark.parametrize(
    "ord_, axis", [(None, None), (2, 1), (1, 0), (np.inf, 1), (-np.inf, 1), (3, None),
                   ("fro", (0, 1))]
)
def test_norm_values_and_gradients(ord_, axis):
    x = RNG.uniform(0.5, 1.5, (2, 3)) * np.array([1.0, -1.3, 0.7])
    if ord_ in (2, 1, np.inf, -np.inf, 3) and axis is None:
        x = x.ravel()
    want = np.linalg.norm(x, ord=ord_, axis=axis)
    np.testing.assert_allclose(jnp.linalg.norm(x, ord=ord_, axis=axis), want, rtol=1e-13)
    check_grads(lambda v: jnp.linalg.norm(v, ord=ord_, axis=axis), (x,), order=2)


def test_norm_gradient_is_unit_vector():
    v = np.array([3.0, -4.0])
    np.testing.assert_allclose(rc.grad(jnp.linalg.norm)(v), v / 5.0, rtol=1e-15)
