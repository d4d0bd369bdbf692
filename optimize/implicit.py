"""Exact parameter gradients of geometry items through the relaxed minimum.

At a minimum x*(θ) of E(x, θ) (restraints included), ∇ₓE(x*, θ) = 0, so by the implicit
function theorem dx*/dθ = −H⁻¹ ∂²E/∂x∂θ with H = ∂²E/∂x². After each relaxation we compute,
per relaxed structure, H (Hessian-vector products, all structures of a batch probed at once:
H is block diagonal) and the mixed derivative (one forward-mode product per parameter through
∇ₓE), and solve for J = dx*/dθ. The loss at fixed geometry then measures DISTANCE / ANGLE /
TORSION items on x*(θ) ≈ x* + J (θ − θ₀): a consistent model whose value and gradient move
together inside the optimizer, instead of JAX-ReaxFF's geometry held fixed (zero gradient).
Directions of H with |eigenvalue| below 1e-8 of the largest (rigid translations and
rotations of molecules) are dropped; they do not change internal coordinates.
"""
from __future__ import annotations

import time

import numpy as np

import reaxgrad.core as rg
import reaxgrad.core.numpy as jnp

from .predict import batch_energies, restraint_energy

EIGEN_CUTOFF = 1e-8


def _gradient_fn(pmap, convention):
    def gradient(theta, x, lists, charges, restraints):
        params = pmap.tables(theta)

        def total(y):
            e, _ = batch_energies(y, params, lists, charges, convention)
            e = e + restraint_energy(y, restraints, charges.shape[0])
            return jnp.sum(e)

        return rg.grad(total)(x)

    return gradient


def _second_derivatives(pmap, convention):
    gradient = _gradient_fn(pmap, convention)

    def hessian_columns(theta, x, probes, lists, charges, restraints):
        return rg.vmap(lambda v: rg.jvp(lambda y: gradient(theta, y, lists, charges,
                                                           restraints), (x,), (v,))[1])(probes)

    def mixed_columns(theta, x, directions, lists, charges, restraints):
        return rg.vmap(lambda v: rg.jvp(lambda t: gradient(t, x, lists, charges, restraints),
                                        (theta,), (v,))[1])(directions)

    return rg.jit(hessian_columns), rg.jit(mixed_columns)


def _solve(h, b):
    """−H⁺ B on the non-rigid eigen-directions of the symmetric H."""
    h = 0.5 * (h + h.T)
    values, vectors = np.linalg.eigh(h)
    keep = np.abs(values) > EIGEN_CUTOFF * max(np.abs(values).max(initial=0.0), 1e-300)
    inverse = (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
    return -inverse @ b


class ImplicitGeometry:
    """dx*/dθ of the relaxed structures, laid out like ``problem.positions_all()``."""

    def __init__(self, problem, relaxer):
        self.problem = problem
        self.relaxer = relaxer
        self._hessian, self._mixed = _second_derivatives(problem.pmap, problem.convention)
        self.seconds = 0.0

    def linearize(self, theta) -> dict:
        """{"x0": (N, 3), "jacobian": (3N, P), "theta0": (P,)} at the current geometries."""
        t = time.perf_counter()
        problem, relaxer = self.problem, self.relaxer
        theta = np.asarray(theta, dtype=np.float64)
        x0 = problem.positions_all()
        n_params = len(theta)
        jacobian = np.zeros((x0.size, n_params))
        starts, sizes = problem.layout.atom_start, problem.layout.n_atoms
        for g, group in enumerate(relaxer.groups):
            positions = [problem.positions[k] for k in group]
            batch = relaxer._lists(g, theta, positions)
            group = batch.members
            x = np.concatenate([problem.positions[k] for k in group])
            offsets = batch.atom_offsets
            n = np.diff(offsets)
            width = int(n.max())
            probes = np.zeros((3 * width, len(x), 3))
            for a in range(width):
                for c in range(3):
                    rows = offsets[:-1][n > a] + a
                    probes[3 * a + c, rows, c] = 1.0
            args = (batch.lists, batch.charges, batch.restraints)
            hv = np.asarray(self._hessian(theta, x, probes, *args))  # (3m, N, 3)
            mixed = np.asarray(self._mixed(theta, x, np.eye(n_params), *args))  # (P, N, 3)
            for p, k in enumerate(group):
                lo, hi = offsets[p], offsets[p + 1]
                m = hi - lo
                h = hv[:3 * m, lo:hi].reshape(3 * m, 3 * m).T
                b = mixed[:, lo:hi].reshape(n_params, 3 * m).T
                rows = slice(3 * starts[k], 3 * (starts[k] + sizes[k]))
                jacobian[rows] = _solve(h, b)
        self.seconds += time.perf_counter() - t
        return {"x0": x0, "jacobian": jacobian, "theta0": theta}
