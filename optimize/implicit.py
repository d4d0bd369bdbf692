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

from .batch import build_batch, canonical_order
from .clusters import cluster_cost, cluster_structures
from .items import GEOMETRY_CATEGORIES
from .predict import batch_energies, restraint_energy
from .relax import restraint_arrays

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
    """dx*/dθ of the relaxed structures that geometry items measure, laid out like
    ``problem.positions_all()`` (zero rows elsewhere)."""

    def __init__(self, problem, relaxer, chunk: int = 24):
        self.problem = problem
        self.chunk = chunk
        self.max_clusters = relaxer.max_clusters
        self._hessian, self._mixed = _second_derivatives(problem.pmap, problem.convention)
        measured = {problem.names[it.structures[0]] for tables in problem.tables.values()
                    for cat, t in tables.items() if cat in GEOMETRY_CATEGORIES
                    for it in t.items}
        members = np.array([k for k in relaxer.members if k in measured], dtype=np.int64)
        sizes = [problem.structures[k].n_atoms for k in members]
        self.groups = [canonical_order(problem.structures, members[g])
                       for g in cluster_structures(sizes, relaxer.max_clusters)]
        self.seconds = 0.0

    def _batch(self, group, theta, positions):
        p = self.problem
        batch = build_batch(p.structures, group, p.pmap.numpy_tables(theta), positions,
                            elements=p.elements, control=p.control)
        batch.restraints = restraint_arrays(p.structures, group, batch.atom_offsets)
        return batch

    def _columns(self, fn, theta, x, directions, args):
        """fn over blocks of ``chunk`` directions (one compiled shape)."""
        out = []
        for start in range(0, len(directions), self.chunk):
            block = directions[start:start + self.chunk]
            n = len(block)
            if n < self.chunk:
                block = np.concatenate([block, np.zeros((self.chunk - n,) + block.shape[1:])])
            out.append(np.asarray(fn(theta, x, block, *args))[:n])
        return np.concatenate(out)

    def linearize(self, theta) -> dict:
        """{"x0": (N, 3), "jacobian": (3N, P), "theta0": (P,)} at the current geometries;
        one task per group on the problem's executor."""
        t = time.perf_counter()
        problem = self.problem
        theta = np.asarray(theta, dtype=np.float64)
        x0 = problem.positions_all()
        jacobian = np.zeros((x0.size, len(theta)))
        starts, sizes = problem.layout.atom_start, problem.layout.n_atoms
        payloads = [{"group": g, "theta": theta, "chunk": self.chunk,
                     "max_clusters": self.max_clusters,
                     "positions": [problem.positions[k] for k in group]}
                    for g, group in enumerate(self.groups)]
        results = problem.executor.map(
            "jacobian", payloads, [("jacobian", g) for g in range(len(self.groups))],
            [cluster_cost([problem.structures[k].n_atoms for k in group])
             for group in self.groups])
        for group, result in zip(self.groups, results):
            for k, block in zip(group, result["blocks"]):
                jacobian[3 * starts[k]:3 * (starts[k] + sizes[k])] = block
        self.seconds += time.perf_counter() - t
        return {"x0": x0, "jacobian": jacobian, "theta0": theta}

    def group_jacobian(self, payload) -> dict:
        """The task: {"blocks": dx*/dθ (3n, P) of each member of group ``payload["group"]``}
        at the given positions."""
        theta = np.asarray(payload["theta"], dtype=np.float64)
        group = self.groups[payload["group"]]
        positions = [np.asarray(x, dtype=np.float64) for x in payload["positions"]]
        batch = self._batch(group, theta, positions)
        x = np.concatenate(positions)
        offsets = batch.atom_offsets
        n = np.diff(offsets)
        width = int(n.max())
        probes = np.zeros((3 * width, len(x), 3))
        for a in range(width):
            for c in range(3):
                probes[3 * a + c, offsets[:-1][n > a] + a, c] = 1.0
        args = (batch.lists, batch.charges, batch.restraints)
        n_params = len(theta)
        hv = self._columns(self._hessian, theta, x, probes, args)  # (3m, N, 3)
        mixed = self._columns(self._mixed, theta, x, np.eye(n_params), args)  # (P, N, 3)
        blocks = []
        for p in range(len(group)):
            lo, hi = offsets[p], offsets[p + 1]
            m = hi - lo
            h = hv[:3 * m, lo:hi].reshape(3 * m, 3 * m).T
            b = mixed[:, lo:hi].reshape(n_params, 3 * m).T
            blocks.append(_solve(h, b))
        return {"blocks": blocks}
