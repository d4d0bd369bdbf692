"""Derivative checking for the transform engine (after HIPS autograd / jax.test_util):
forward (jvp) and reverse (vjp) derivatives are compared with finite differences along random
directions, recursively up to a given order (the derivative functions are themselves checked).

`check_grads(f, args, modes=("fwd", "rev"), order=2)` raises AssertionError on a mismatch.
All arguments must be floating point arrays (close over integer arguments).
"""
from __future__ import annotations

import numpy as np

import reaxgrad.core.numpy as jnp
from reaxgrad.core import jvp, tree_flatten, tree_map, tree_unflatten, vjp

# Fourth-order central differences: truncation error ~ eps**4 * f^(5), rounding ~ 1e-16 / eps.
EPS = 1e-3
RTOL = 1e-6
ATOL = 1e-8


def _leaves(tree):
    return [np.asarray(x, dtype=np.float64) for x in tree_flatten(tree)[0]]


def _random_like(rng, tree):
    """A random pytree like `tree` (float leaves only)."""
    leaves, treedef = tree_flatten(tree)
    out = []
    for x in leaves:
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.inexact):
            raise TypeError(f"check_grads: non-float leaf of dtype {x.dtype}; close over it")
        out.append(rng.standard_normal(x.shape).astype(x.dtype))
    return tree_unflatten(treedef, out)


def _axpy(a, x, y):
    """a * x + y leafwise (x, y pytrees of the same structure)."""
    xl, treedef = tree_flatten(x)
    yl = tree_flatten(y)[0]
    return tree_unflatten(
        treedef, [jnp.asarray(a * np.asarray(u) + np.asarray(v)) for u, v in zip(xl, yl)]
    )


def numerical_jvp(f, args, tangents, eps=EPS):
    """Directional derivative of f at args along tangents (4th-order central differences)."""
    def at(h):
        return _leaves(f(*_axpy(h, tangents, args)))

    fp1, fm1, fp2, fm2 = at(eps), at(-eps), at(2 * eps), at(-2 * eps)
    return [(8 * (a - b) - (c - d)) / (12 * eps) for a, b, c, d in zip(fp1, fm1, fp2, fm2)]


def _inner(xs, ys):
    return sum(float(np.sum(np.asarray(x) * np.asarray(y))) for x, y in zip(xs, ys))


def _assert_close(what, actual, expected, rtol, atol):
    for i, (a, e) in enumerate(zip(actual, expected)):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        assert a.shape == e.shape, f"{what}: leaf {i} has shape {a.shape}, expected {e.shape}"
        scale = atol + rtol * max(1.0, float(np.max(np.abs(e), initial=0.0)))
        err = float(np.max(np.abs(a - e), initial=0.0))
        assert err <= scale, (
            f"{what}: leaf {i} differs from finite differences by {err:.3g} "
            f"(allowed {scale:.3g})\nactual={a}\nexpected={e}"
        )


def check_jvp(f, args, rng, eps=EPS, rtol=RTOL, atol=ATOL):
    tangents = _random_like(rng, args)
    out, t_out = jvp(f, tuple(args), tuple(tangents))
    _assert_close("jvp primal", _leaves(out), _leaves(f(*args)), rtol, atol)
    _assert_close("jvp", _leaves(t_out), numerical_jvp(f, args, tangents, eps), rtol, atol)


def check_vjp(f, args, rng, eps=EPS, rtol=RTOL, atol=ATOL):
    out, pullback = vjp(f, *args)
    _assert_close("vjp primal", _leaves(out), _leaves(f(*args)), rtol, atol)
    cotangent = _random_like(rng, out)
    cts = pullback(cotangent)
    assert isinstance(cts, tuple) and len(cts) == len(args), "vjp must return one ct per arg"
    tangents = _random_like(rng, args)
    # <ct, J v> computed numerically must equal <J^T ct, v> computed by vjp
    lhs = _inner(_leaves(cotangent), numerical_jvp(f, args, tangents, eps))
    rhs = _inner(_leaves(cts), _leaves(tangents))
    scale = atol + rtol * max(1.0, abs(lhs))
    assert abs(lhs - rhs) <= scale, f"vjp: <ct, J v> = {lhs!r} (numerical) but vjp gives {rhs!r}"
    for c, a in zip(_leaves(cts), _leaves(args)):
        assert c.shape == a.shape, f"vjp cotangent shape {c.shape} differs from input {a.shape}"


def check_grads(f, args, modes=("fwd", "rev"), order=2, eps=EPS, rtol=RTOL, atol=ATOL, seed=0):
    """Check jvp ("fwd") and vjp ("rev") of f at args against finite differences, then check
    the derivative functions themselves, up to `order`."""
    args = tree_map(jnp.asarray, tuple(args))
    rng = np.random.default_rng(seed)
    kw = dict(eps=eps, rtol=rtol, atol=atol)
    if "fwd" in modes:
        check_jvp(f, args, rng, **kw)
        if order > 1:
            tangents = _random_like(rng, args)

            def f_jvp(*primals):
                return jvp(f, primals, tuple(tangents))

            check_grads(f_jvp, args, modes, order - 1, seed=seed + 1, **kw)
    if "rev" in modes:
        check_vjp(f, args, rng, **kw)
        if order > 1:
            cotangent = _random_like(rng, f(*args))

            def f_vjp(*primals):
                return vjp(f, *primals)[1](cotangent)

            check_grads(f_vjp, args, modes, order - 1, seed=seed + 2, **kw)
