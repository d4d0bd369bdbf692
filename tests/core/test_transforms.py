"""Compositions of transforms (core/api.py): higher derivatives, Jacobians, vmap of
derivatives, jit around and inside them, linearize, vjp over pytrees, has_aux and argnums,
stop_gradient. References are closed-form derivatives."""
import collections
import dataclasses

import numpy as np
import pytest
from check_grads import check_grads

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp

X = np.array([0.3, -0.8, 1.2])
XS = np.array([[0.3, -0.8, 1.2], [0.5, 0.1, -0.4], [1.0, 2.0, 0.7], [-1.1, 0.2, 0.0]])


def f(x):
    """sum(exp(-x) sin(3x)) + (x . x)**2."""
    return jnp.sum(jnp.exp(-x) * jnp.sin(3 * x)) + jnp.dot(x, x) ** 2


def f_grad(x):
    return np.exp(-x) * (3 * np.cos(3 * x) - np.sin(3 * x)) + 4 * np.dot(x, x) * x


def f_hess(x):
    d = np.exp(-x) * (-6 * np.cos(3 * x) - 8 * np.sin(3 * x))
    return np.diag(d) + 8 * np.outer(x, x) + 4 * np.dot(x, x) * np.eye(len(x))


def close(a, b, rtol=1e-12):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=1e-13)


def test_grad_grad_grad_of_tanh():
    t = np.tanh(0.4)
    close(rc.grad(jnp.tanh)(0.4), 1 - t**2)
    close(rc.grad(rc.grad(jnp.tanh))(0.4), -2 * t * (1 - t**2))
    close(rc.grad(rc.grad(rc.grad(jnp.tanh)))(0.4), (1 - t**2) * (6 * t**2 - 2))


def test_gradient_and_hessian_by_every_route():
    close(rc.grad(f)(X), f_grad(X))
    close(rc.value_and_grad(f)(X)[0], f(X))
    close(rc.jacfwd(f)(X), f_grad(X))
    close(rc.jacrev(f)(X), f_grad(X))
    for h in (rc.hessian(f), rc.jacfwd(rc.jacrev(f)), rc.jacrev(rc.jacfwd(f)),
              rc.jacfwd(rc.jacfwd(f)), rc.jacrev(rc.grad(f)), rc.jit(rc.hessian(f))):
        close(h(X), f_hess(X))


def test_hessian_vector_products():
    v = np.array([1.0, -2.0, 0.5])
    close(rc.jvp(rc.grad(f), (X,), (v,))[1], f_hess(X) @ v)  # forward-over-reverse
    close(rc.grad(lambda x: jnp.dot(rc.grad(f)(x), v))(X), f_hess(X) @ v)  # reverse-over-reverse
    close(rc.grad(lambda x: rc.jvp(f, (x,), (v,))[1])(X), f_hess(X) @ v)  # reverse-over-forward


@pytest.mark.parametrize(
    "transform",
    [
        lambda: rc.vmap(rc.grad(f)),
        lambda: rc.jit(rc.vmap(rc.grad(f))),
        lambda: rc.vmap(rc.jit(rc.grad(f))),
        lambda: rc.vmap(rc.grad(rc.jit(f))),
        lambda: rc.jit(rc.vmap(rc.jit(rc.grad(f)))),
    ],
    ids=["vmap_grad", "jit_vmap_grad", "vmap_jit_grad", "vmap_grad_jit", "jit_vmap_jit_grad"],
)
def test_per_example_gradients(transform):
    out = transform()(XS)
    assert out.shape == XS.shape
    for k in range(len(XS)):
        close(out[k], f_grad(XS[k]))


def test_vmap_hessian_and_jit_grad_and_grad_jit():
    hs = rc.vmap(rc.hessian(f))(XS)
    for k in range(len(XS)):
        close(hs[k], f_hess(XS[k]))
    close(rc.jit(rc.grad(f))(X), f_grad(X))
    close(rc.grad(rc.jit(f))(X), f_grad(X))
    second = rc.grad(rc.grad(rc.jit(lambda x: jnp.sin(x) * x)))(0.7)
    close(second, 2 * np.cos(0.7) - 0.7 * np.sin(0.7))


def test_grad_of_vmapped_sum_and_vmap_of_vmap():
    total = lambda xs: jnp.sum(rc.vmap(f)(xs))  # noqa: E731
    g = rc.grad(total)(XS)
    for k in range(len(XS)):
        close(g[k], f_grad(XS[k]))
    close(rc.grad(rc.jit(total))(XS), g)
    mat = np.arange(12.0).reshape(3, 4) / 10
    inner = rc.vmap(lambda a, b: jnp.sin(a) * b**2, in_axes=(None, 0))
    pairwise = rc.vmap(inner, in_axes=(0, None))
    out = pairwise(mat[:, 0], mat[0])
    close(out, np.sin(mat[:, 0])[:, None] * mat[0][None, :] ** 2)
    nested = rc.vmap(rc.vmap(lambda x: x * jnp.sum(x)))(np.arange(24.0).reshape(2, 3, 4))
    want = np.arange(24.0).reshape(2, 3, 4)
    close(nested, want * want.sum(axis=-1, keepdims=True))


def test_jacobians_of_vector_functions():
    def g(x):
        return jnp.stack([x[0] * x[1], jnp.sin(x[2]), jnp.sum(x**2)])

    want = np.array([[X[1], X[0], 0.0], [0.0, 0.0, np.cos(X[2])], 2 * X])
    close(rc.jacfwd(g)(X), want)
    close(rc.jacrev(g)(X), want)
    close(rc.vmap(rc.jacrev(g))(XS)[1], rc.jacfwd(g)(XS[1]))
    mat_in = rc.jacrev(lambda m: m @ X)(np.ones((2, 3)))
    assert mat_in.shape == (2, 2, 3)
    close(mat_in[1, 1], X)
    close(mat_in[0, 1], np.zeros(3))


def test_linearize_matches_jvp_and_is_reusable():
    out, f_jvp = rc.linearize(f, X)
    close(out, f(X))
    for v in (np.eye(3)[0], np.array([0.3, 0.2, -1.0])):
        close(f_jvp(v), f_grad(X) @ v)
    out, lin = rc.linearize(lambda a, b: {"p": a * b, "q": [jnp.sin(a)]}, 2.0, 3.0)
    t = lin(1.0, 0.5)
    close(t["p"], 3.0 + 2.0 * 0.5)
    close(t["q"][0], np.cos(2.0))


Pair = collections.namedtuple("Pair", "first second")


@dataclasses.dataclass
class State:
    positions: object
    charge: object


def test_vjp_and_grad_over_pytrees():
    def fn(tree):
        d, lst, tup = tree["d"], tree["l"], tree["t"]
        return {
            "dict": d["a"] * lst[0],
            "nt": Pair(jnp.sum(tup[0] ** 2), tup[1] * d["a"]),
            "dc": State(jnp.sin(lst[1]), d["a"] ** 2),
        }

    tree = {"d": {"a": 1.5}, "l": [np.array([1.0, 2.0]), 0.3], "t": (np.array([0.5, -1.0]), 4.0)}
    out, pullback = rc.vjp(fn, tree)
    assert isinstance(out["nt"], Pair) and isinstance(out["dc"], State)
    ct = {"dict": np.array([1.0, 1.0]), "nt": Pair(1.0, 2.0), "dc": State(1.0, 1.0)}
    (g,) = pullback(ct)
    close(g["d"]["a"], 3.0 + 2.0 * 4.0 + 2 * 1.5)
    close(g["l"][0], [1.5, 1.5])
    close(g["l"][1], np.cos(0.3))
    close(g["t"][0], [1.0, -2.0])
    close(g["t"][1], 2.0 * 1.5)
    assert isinstance(g["t"], tuple) and isinstance(g["l"], list)
    # grad over a namedtuple / dataclass argument returns the same container type
    gs = rc.grad(lambda s: jnp.sum(s.positions**2) * s.charge)(State(np.array([1.0, 2.0]), 3.0))
    assert isinstance(gs, State)
    close(gs.positions, [6.0, 12.0])
    close(gs.charge, 5.0)
    gp = rc.grad(lambda p: p.first * p.second)(Pair(2.0, 5.0))
    assert isinstance(gp, Pair) and gp == Pair(5.0, 2.0)
    check_grads(fn, (tree,), order=2)


def test_has_aux_and_argnums():
    def loss(w, b, data):
        pred = data @ w + b
        return jnp.sum(pred**2), {"pred": pred}

    data = np.arange(6.0).reshape(3, 2)
    w, b = np.array([0.5, -1.0]), 0.25
    (gw, gb), aux = rc.grad(loss, argnums=(0, 1), has_aux=True)(w, b, data)
    pred = data @ w + b
    close(aux["pred"], pred)
    close(gw, 2 * data.T @ pred)
    close(gb, 2 * pred.sum())
    (val, aux2), gw2 = rc.value_and_grad(loss, has_aux=True)(w, b, data)
    close(val, np.sum(pred**2))
    close(gw2, gw)
    g_last = rc.grad(lambda a, c: a * c**3, argnums=-1)(2.0, 3.0)
    close(g_last, 2.0 * 27.0)
    ja, jc = rc.jacrev(lambda a, c: a * c, argnums=(0, 1))(X, X[::-1])
    close(ja, np.diag(X[::-1]))
    close(jc, np.diag(X))
    out, pullback, aux = rc.vjp(lambda x: (jnp.sin(x), x * 2), X, has_aux=True)
    close(aux, 2 * X)
    close(pullback(np.ones(3))[0], np.cos(X))


def test_derivatives_through_uniform_constants():
    # zero-stride constants (from broadcast_to / lax.full) become broadcast equations when
    # staged; reverse mode must treat them as constants, not as linear inputs
    two = jnp.broadcast_to(2.0, (3,))
    close(rc.grad(lambda x: jnp.sum(x * two))(X), [2.0, 2.0, 2.0])
    close(rc.grad(lambda x: jnp.sum(jnp.where(x > 0, x**2, 0.0)))(X), np.where(X > 0, 2 * X, 0))
    close(rc.grad(jnp.prod)(X.astype(np.float32)), [X[1] * X[2], X[0] * X[2], X[0] * X[1]],
          rtol=1e-6)
    close(rc.hessian(lambda x: jnp.sum(x**3 * two))(X), np.diag(12 * X))
    close(rc.jit(rc.grad(lambda x: jnp.sum((x - two) ** 2)))(X), 2 * (X - 2))


def test_stop_gradient():
    close(rc.grad(lambda x: x * rc.stop_gradient(x))(3.0), 3.0)
    close(rc.grad(lambda x: jnp.sum(rc.stop_gradient(x) ** 2 + x))(X), np.ones(3))
    close(rc.hessian(lambda x: jnp.sum(x**2 * rc.stop_gradient(x)))(X), 2 * np.diag(X))
    close(rc.vmap(rc.grad(lambda x: rc.stop_gradient(jnp.sin(x)) * x))(X), np.sin(X))
    tree = rc.stop_gradient({"a": np.array([1, 2]), "b": 1.5})
    assert tree["a"].dtype == np.int64
    close(rc.grad(lambda x: jnp.stop_gradient(x) * x)(2.0), 2.0)


def test_jvp_and_vjp_agree_on_random_functions():
    def g(x, y):
        return [jnp.tanh(x @ y), jnp.cumsum(x, axis=1) * y[:, 0]]

    x = np.random.default_rng(1).standard_normal((2, 3))
    y = np.random.default_rng(2).standard_normal((3, 2))
    check_grads(g, (x, y), order=2)
    check_grads(lambda a, b: rc.vmap(lambda r: jnp.sum(r * b))(a), (x, y[:, 0].copy()), order=2)
