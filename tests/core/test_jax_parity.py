"""Parity with JAX (float64): values, forward and reverse derivatives and Hessian-vector
products of every case of the primitive table, the JAX quickstart examples, and transform
compositions. Skipped as a whole when JAX is not installed."""
import numpy as np
import pytest
from cases import ALL, REAX, bind, jax_namespace

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp

jax = pytest.importorskip("jax")
J = jax_namespace()
jjnp = J.np
RTOL = 1e-10

# JAX implements no derivative of scatter-multiply with duplicate indices (our derivatives of
# these cases are checked against finite differences in test_indexing.py): values only.
JAX_VALUES_ONLY = {"at_multiply", "at_multiply_zero_factor"}


def close(a, b, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=1e-13)


@pytest.mark.parametrize("name", sorted(ALL))
def test_primitive_table_matches_jax(name):
    fn, args = ALL[name]
    ours, theirs = bind(fn), bind(fn, J)
    out = ours(*[jnp.asarray(a) for a in args])
    close(out, theirs(*args))
    if name in JAX_VALUES_ONLY:
        return
    rng = np.random.default_rng(0)
    tangents = tuple(rng.standard_normal(np.shape(a)) for a in args)
    ct = rng.standard_normal(np.shape(out))
    nums = tuple(range(len(args)))

    def scalar(m):
        return lambda *a: m.np.sum(m.np.sin(fn(m, *a)))

    @jax.jit  # one compilation instead of one per primitive: keeps the suite fast
    def jax_derivatives(args, tangents, ct):
        return (
            jax.jvp(theirs, args, tangents)[1],
            jax.vjp(theirs, *args)[1](ct),
            jax.jvp(jax.grad(scalar(J), argnums=nums), args, tangents)[1],
        )

    jvp_want, vjp_want, hvp_want = jax_derivatives(tuple(args), tangents, ct)
    close(rc.jvp(ours, tuple(args), tangents)[1], jvp_want)
    for g, w in zip(rc.vjp(ours, *args)[1](ct), vjp_want):
        close(g, w)
    # second order: Hessian-vector product of a scalar function of the case
    hvp = rc.jvp(rc.grad(scalar(REAX), argnums=nums), tuple(args), tangents)[1]
    for g, w in zip(hvp, hvp_want):
        close(g, w)


def test_quickstart_grad_of_tanh_to_third_order():
    for order_fn, jax_fn in [
        (rc.grad(jnp.tanh), jax.grad(jjnp.tanh)),
        (rc.grad(rc.grad(jnp.tanh)), jax.grad(jax.grad(jjnp.tanh))),
        (rc.grad(rc.grad(rc.grad(jnp.tanh))), jax.grad(jax.grad(jax.grad(jjnp.tanh)))),
    ]:
        for x in (1.0, -0.3, 2.5):
            close(order_fn(x), jax_fn(x))


def test_quickstart_jit_selu():
    def selu(m):
        return lambda x, alpha=1.67, lmbda=1.05: lmbda * m.where(x > 0, x, alpha * m.exp(x) - alpha)

    x = np.random.default_rng(0).standard_normal(1000)
    close(rc.jit(selu(jnp))(x), jax.jit(selu(jjnp))(x))
    close(
        rc.grad(lambda v: jnp.sum(selu(jnp)(v)))(x),
        jax.grad(lambda v: jjnp.sum(selu(jjnp)(v)))(x),
    )


def test_quickstart_vmap_matrix_vector_product():
    mat = np.random.default_rng(0).standard_normal((15, 10))
    xs = np.random.default_rng(1).standard_normal((4, 10))
    close(rc.vmap(lambda v: jnp.dot(mat, v))(xs), jax.vmap(lambda v: jjnp.dot(mat, v))(xs))
    close(
        rc.jit(rc.vmap(jnp.dot, in_axes=(None, 0)))(mat, xs),
        jax.jit(jax.vmap(jjnp.dot, in_axes=(None, 0)))(mat, xs),
    )


def test_vmap_axes_examples():
    a = np.arange(24.0).reshape(2, 3, 4)
    b = np.arange(4.0)
    for spec in [dict(in_axes=(0, None)), dict(in_axes=(2, 0), out_axes=1),
                 dict(in_axes=(1, None), out_axes=-1)]:
        bb = np.arange(16.0).reshape(4, 4) if spec["in_axes"][1] == 0 else b
        ours = rc.vmap(lambda x, y: jnp.sin(x) * y[-1] + jnp.sum(x), **spec)(a, bb)
        theirs = jax.vmap(lambda x, y: jjnp.sin(x) * y[-1] + jjnp.sum(x), **spec)(a, bb)
        close(ours, theirs)
    tree = {"w": a, "b": b}
    ours = rc.vmap(lambda t: t["w"] @ t["b"], in_axes=({"w": 1, "b": None},))(tree)
    theirs = jax.vmap(lambda t: t["w"] @ t["b"], in_axes=({"w": 1, "b": None},))(tree)
    close(ours, theirs)
    ours = rc.vmap(lambda x: {"s": jnp.sum(x), "m": x * 2}, out_axes={"s": 0, "m": 1})(a)
    theirs = jax.vmap(lambda x: {"s": jjnp.sum(x), "m": x * 2}, out_axes={"s": 0, "m": 1})(a)
    close(ours["m"], theirs["m"])
    close(ours["s"], theirs["s"])


def _model(m):
    def f(w, x):
        h = m.np.tanh(x @ w[0])
        return m.np.sum(m.np.exp(-(h @ w[1]) ** 2)) + 0.1 * m.np.sum(w[0] ** 2)

    return f


def test_transform_compositions_match_jax():
    rng = np.random.default_rng(3)
    w = [rng.standard_normal((3, 4)) * 0.5, rng.standard_normal((4, 2)) * 0.5]
    x = rng.standard_normal((5, 3))
    f, g = _model(REAX), _model(J)

    def flat(fun):
        return lambda v: fun([v[:12].reshape(3, 4), w[1]], x)

    flat_f, flat_g = flat(f), flat(g)
    v0 = w[0].ravel()

    @jax.jit  # one compilation for all the JAX references
    def references(w, x, v0):
        return {
            "grad": jax.grad(g)(w, x),
            "hessian": jax.hessian(flat_g)(v0),
            "jacfwd_jacrev": jax.jacfwd(jax.jacrev(flat_g))(v0),
            "per_example": jax.vmap(jax.grad(g), in_axes=(None, 0))(w, x[:, None, :]),
            "third": jax.grad(jax.grad(jax.grad(lambda s: flat_g(v0 * s))))(1.1),
        }

    ref = references(w, x, v0)
    for ours, theirs in zip(rc.grad(f)(w, x), ref["grad"]):
        close(ours, theirs)
    close(rc.hessian(flat_f)(v0), ref["hessian"])
    close(rc.jacfwd(rc.jacrev(flat_f))(v0), ref["jacfwd_jacrev"])
    per_example = rc.vmap(rc.grad(f), in_axes=(None, 0))(w, x[:, None, :])
    for a, b in zip(per_example, ref["per_example"]):
        close(a, b)
    close(rc.jit(rc.grad(flat_f))(v0), ref["grad"][0].ravel())
    close(rc.grad(rc.grad(rc.grad(lambda s: flat_f(v0 * s))))(1.1), ref["third"])


def test_custom_jvp_matches_jax():
    @rc.custom_jvp
    def ours(x):
        return jnp.log1p(jnp.exp(x))

    ours.defjvp(lambda p, t: (ours(p[0]), t[0] * (1 - 1 / (1 + jnp.exp(p[0])))))

    @jax.custom_jvp
    def theirs(x):
        return jjnp.log1p(jjnp.exp(x))

    theirs.defjvp(lambda p, t: (theirs(p[0]), t[0] * (1 - 1 / (1 + jjnp.exp(p[0])))))
    xs = np.linspace(-3, 3, 7)
    close(rc.vmap(rc.grad(rc.grad(ours)))(xs), jax.vmap(jax.grad(jax.grad(theirs)))(xs))
