"""Engine benchmark (not a test): hand-written NumPy vs reaxgrad eager vs reaxgrad jit on the
interpreter and on the fusing backend (generated C, when a compiler is found) vs JAX jit on
CPU when installed, timed in the same run. Prints seconds per call and ratios.

    python scripts/bench/engine.py [--quick]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import reaxgrad.core as rg
import reaxgrad.core.numpy as rnp
from reaxgrad.core.executors import available_backends

FUSED = "fused" in available_backends()


def jits(fn, **kw):
    """{column: jitted fn} for the executors available here."""
    out = {"reaxgrad jit": rg.jit(fn, backend="interpreter", **kw)}
    if FUSED:
        out["reaxgrad fused"] = rg.jit(fn, backend="fused", **kw)
    return out

try:
    import jax
    import jax.numpy as jjnp

    jax.config.update("jax_enable_x64", True)
except ImportError:  # JAX is optional
    jax = None


def timeit(fn, *args, min_time=0.3, repeats=5):
    """Best-of-`repeats` mean seconds per call (each repeat runs for ~min_time/repeats)."""
    out = fn(*args)
    _block(out)
    t0 = time.perf_counter()
    out = fn(*args)
    _block(out)
    once = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(min_time / repeats / once))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            out = fn(*args)
        _block(out)
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def _block(out):
    if jax is not None:
        for leaf in jax.tree_util.tree_leaves(out):
            if hasattr(leaf, "block_until_ready"):
                leaf.block_until_ready()


def report(name, results, base="numpy"):
    ref = results[base]
    jx = results.get("jax jit")
    print(f"\n{name}")
    for key, t in results.items():
        ratio = t / ref
        vs_jax = f"   {t / jx:7.2f}x jax" if jx else ""
        print(f"  {key:<18s} {t * 1e3:10.4f} ms   {ratio:7.2f}x {base}{vs_jax}")


# ---- SELU on 10^6 elements ----------------------------------------------------------------------
ALPHA, LAM = 1.6732632423543772, 1.0507009873554805


def selu_np(x):
    return LAM * np.where(x > 0, x, ALPHA * np.exp(x) - ALPHA)


def selu_rg(x):
    return LAM * rnp.where(x > 0, x, ALPHA * rnp.exp(x) - ALPHA)


def bench_selu(n):
    x = np.random.default_rng(0).normal(size=n)
    res = {"numpy": timeit(selu_np, x), "reaxgrad eager": timeit(selu_rg, x)}
    for key, f in jits(selu_rg).items():
        np.testing.assert_allclose(f(x), selu_np(x), rtol=1e-12, atol=1e-15)
        res[key] = timeit(f, x)
    if jax is not None:
        f = jax.jit(lambda x: LAM * jjnp.where(x > 0, x, ALPHA * jjnp.exp(x) - ALPHA))
        res["jax jit"] = timeit(f, jjnp.asarray(x))
    report(f"SELU, {n} elements", res)
    return res


# ---- Lennard-Jones energy + forces, all pairs ---------------------------------------------------

def lj_numpy(pos):
    """Hand-written energy and analytic forces (sigma = epsilon = 1)."""
    n = pos.shape[0]
    dr = pos[:, None, :] - pos[None, :, :]
    r2 = np.einsum("ijk,ijk->ij", dr, dr) + np.eye(n)
    inv2 = 1.0 / r2
    inv6 = inv2 * inv2 * inv2
    np.fill_diagonal(inv6, 0.0)
    energy = 2.0 * np.sum(inv6 * inv6 - inv6)
    coef = (48.0 * inv6 * inv6 - 24.0 * inv6) * inv2
    forces = np.einsum("ij,ijk->ik", coef, dr)
    return energy, forces


def lj_energy(pos, xp, eye, offdiag):
    dr = pos[:, None, :] - pos[None, :, :]
    r2 = xp.sum(dr * dr, axis=-1) + eye
    inv6 = (1.0 / r2) ** 3 * offdiag
    return 2.0 * xp.sum(inv6 * inv6 - inv6)


def bench_lj(n):
    rng = np.random.default_rng(1)
    side = round(n ** (1 / 3)) + 1
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n]
    pos = grid * 1.12 + rng.normal(scale=0.05, size=(n, 3))
    eye = np.eye(n)
    offdiag = 1.0 - eye

    def rg_ef(p):
        e, g = rg.value_and_grad(lambda q: lj_energy(q, rnp, eye, offdiag))(p)
        return e, -g

    e_ref, f_ref = lj_numpy(pos)
    res = {"numpy": timeit(lj_numpy, pos), "reaxgrad eager": timeit(rg_ef, pos)}
    for key, f in jits(rg_ef).items():
        e1, f1 = f(pos)
        np.testing.assert_allclose(e1, e_ref, rtol=1e-10)
        np.testing.assert_allclose(f1, f_ref, rtol=1e-8, atol=1e-8)
        res[key] = timeit(f, pos)
    if jax is not None:
        je, jo = jjnp.asarray(eye), jjnp.asarray(offdiag)
        jf = jax.jit(lambda p: (lambda e, g: (e, -g))(
            *jax.value_and_grad(lambda q: lj_energy(q, jjnp, je, jo))(p)))
        res["jax jit"] = timeit(jf, jjnp.asarray(pos))
    report(f"Lennard-Jones energy+forces, {n} atoms (all pairs)", res)
    return res


# ---- per-example gradients ----------------------------------------------------------------------

def bench_per_example(n, d=64):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(n, d))
    y = (rng.random(n) > 0.5).astype(float)
    w = rng.normal(size=d) * 0.1

    def loss(w, xi, yi, xp):
        z = xp.dot(xi, w)
        return xp.log1p(xp.exp(-z)) + (1.0 - yi) * z  # logistic loss

    def numpy_grads(w, x, y):
        z = x @ w
        s = 1.0 / (1.0 + np.exp(-z))
        return (s - y)[:, None] * x

    per_ex = rg.vmap(rg.grad(lambda w, xi, yi: loss(w, xi, yi, rnp)), in_axes=(None, 0, 0))
    res = {"numpy": timeit(numpy_grads, w, x, y), "reaxgrad eager": timeit(per_ex, w, x, y)}
    for key, f in jits(per_ex).items():
        np.testing.assert_allclose(f(w, x, y), numpy_grads(w, x, y), rtol=1e-10, atol=1e-12)
        res[key] = timeit(f, w, x, y)
    if jax is not None:
        jf = jax.jit(jax.vmap(jax.grad(lambda w, xi, yi: loss(w, xi, yi, jjnp)),
                              in_axes=(None, 0, 0)))
        res["jax jit"] = timeit(jf, *map(jjnp.asarray, (w, x, y)))
    report(f"per-example gradients, vmap(grad), {n} examples x {d} features", res)
    return res


# ---- dispatch cost ------------------------------------------------------------------------------

def ten_ops(x, y, xp):
    a = x * y + 1.0
    b = xp.sin(a) - y
    c = b * b + x
    d = xp.exp(-c) * 2.0
    return xp.sum(d + a)


def bench_dispatch():
    x, y = np.random.default_rng(3).random((2, 10))
    res = {"numpy": timeit(lambda x, y: ten_ops(x, y, np), x, y),
           "reaxgrad eager": timeit(lambda x, y: ten_ops(x, y, rnp), x, y)}
    for key, f in jits(lambda x, y: ten_ops(x, y, rnp)).items():
        res[key] = timeit(f, x, y)
    if jax is not None:
        jf = jax.jit(lambda x, y: ten_ops(x, y, jjnp))
        res["jax jit"] = timeit(jf, jjnp.asarray(x), jjnp.asarray(y))
    report("dispatch: cached jit call of a 10-op function on 10-element arrays", res)
    for key in ("reaxgrad jit", "reaxgrad fused"):
        if key in res:
            print(f"  {key} dispatch: {res[key] * 1e6:.1f} us per call (target <= 10 us)")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    args = ap.parse_args()
    import os

    threads = os.environ.get("REAXGRAD_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "all"
    print(f"numpy {np.__version__}; jax {jax.__version__ if jax else 'not installed'}; "
          f"fused backend {'available' if FUSED else 'not available (no C compiler)'}; "
          f"{os.cpu_count()} cores, threads: {threads}")
    selu = bench_selu(10**5 if args.quick else 10**6)
    lj = bench_lj(200 if args.quick else 1000)
    pex = bench_per_example(100 if args.quick else 1000)
    disp = bench_dispatch()
    ratio = lj["reaxgrad jit"] / lj["numpy"]
    print(f"\nLJ target (jit no slower than hand-written NumPy): {ratio:.2f}x "
          f"{'met' if ratio <= 1.0 else 'NOT met'}")
    if FUSED and jax is not None:
        print("\nfused backend vs JAX-CPU (targets: SELU, vmap(grad) <= 1.5x; LJ <= 1.0x; "
              "dispatch <= 10 us):")
        for name, res, target in (("SELU", selu, 1.5), ("vmap(grad)", pex, 1.5),
                                  ("LJ energy+forces", lj, 1.0)):
            r = res["reaxgrad fused"] / res["jax jit"]
            print(f"  {name:<18s} {r:6.2f}x  {'met' if r <= target else 'NOT met'}")
        us = disp["reaxgrad fused"] * 1e6
        print(f"  {'dispatch':<18s} {us:6.1f} us {'met' if us <= 10 else 'NOT met'}")


if __name__ == "__main__":
    main()
