"""A self-contained demo of the engine on a physical problem: relax a Lennard-Jones cluster
with forces from `grad`, check them against finite differences, and read vibrational
frequencies from the `hessian`."""
from __future__ import annotations

import time

import numpy as np
from scipy.optimize import minimize

import reaxgrad.core as rg
import reaxgrad.core.numpy as jnp


def lj_energy(positions):
    """Total Lennard-Jones energy (epsilon = sigma = 1) over all pairs i < j."""
    n = positions.shape[0]
    i, j = np.triu_indices(n, k=1)
    d = positions[i] - positions[j]
    r2 = jnp.sum(d * d, axis=1)
    inv6 = 1.0 / r2**3
    return 4.0 * jnp.sum(inv6 * inv6 - inv6)


def initial_cluster(n: int, seed: int = 0) -> np.ndarray:
    """Atoms on a jittered cubic lattice near the LJ pair distance."""
    side = int(np.ceil(n ** (1 / 3)))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n]
    rng = np.random.default_rng(seed)
    return grid * 1.1 + rng.normal(scale=0.05, size=(n, 3))


def run_demo(n_atoms: int = 38, steps: int = 500) -> int:
    x0 = initial_cluster(n_atoms)
    energy_and_grad = rg.jit(rg.value_and_grad(lj_energy))
    e0, g0 = energy_and_grad(x0)
    print(f"Lennard-Jones cluster, {n_atoms} atoms")
    print(f"  initial energy            {float(e0):14.6f}")

    # forces against central finite differences on a few coordinates
    h = 1e-6
    worst = 0.0
    for k in range(min(6, x0.size)):
        dx = np.zeros(x0.size)
        dx[k] = h
        dx = dx.reshape(x0.shape)
        fd = (lj_energy(x0 + dx) - lj_energy(x0 - dx)) / (2 * h)
        worst = max(worst, abs(float(fd) - float(g0.reshape(-1)[k])))
    print(f"  max |grad - finite diff|  {worst:14.3e}")

    def fun(flat):
        e, g = energy_and_grad(flat.reshape(x0.shape))
        return float(e), np.asarray(g).reshape(-1)

    t0 = time.perf_counter()
    res = minimize(fun, x0.reshape(-1), jac=True, method="L-BFGS-B",
                   options={"maxiter": steps, "gtol": 1e-10, "ftol": 1e-16})
    dt = time.perf_counter() - t0
    x = res.x.reshape(x0.shape)
    fmax = float(np.abs(energy_and_grad(x)[1]).max())
    print(f"  relaxed energy            {res.fun:14.6f}   ({res.nit} L-BFGS steps, {dt:.2f} s)")
    print(f"  max |force| after relax   {fmax:14.3e}")

    hess = np.asarray(rg.hessian(lj_energy)(x)).reshape(x.size, x.size)
    asym = float(np.abs(hess - hess.T).max())
    eig = np.linalg.eigvalsh(0.5 * (hess + hess.T))
    zero = int(np.sum(np.abs(eig) < 1e-4 * np.abs(eig).max()))
    print(f"  Hessian asymmetry         {asym:14.3e}")
    print(f"  near-zero modes           {zero:14d}   (translations + rotations: 6)")
    print(f"  lowest / highest nonzero  {eig[zero]:14.6f} / {eig[-1]:.6f}")
    print(f"  jit: {energy_and_grad.trace_count} trace(s), reused for every step")
    return 0
