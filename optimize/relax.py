"""In-loop relaxation of the structures the geo file flags (``relax_steps`` > 0), batched.

Two minimisers, both starting from the input geometries every time (as JAX-ReaxFF does):
* ``steepest_descent``: JAX-ReaxFF's adaptive steepest descent (``--num_e_minim_steps``,
  ``--e_minim_LR``, ``--end_RMSG``), reproduced step for step: per-structure learning rates
  ×1.1 while the energy falls and ×0.75 when it rises, gradients clipped to ±10 and zeroed
  below 0.1, moves clipped to 0.01 Å per step and 1 Å from the start, a structure stops when
  its RMSG = sqrt((Σg² + 1e-5) / 3n) is at or below end_RMSG or its budget is spent;
* ``minimize``: FIRE or L-BFGS from ``md.minimize`` to a force tolerance (``--minimizer``).
The energy includes the geo file's restraints; forces follow the problem's charge convention.
Lists are rebuilt when an atom has moved more than half the skin.
"""
from __future__ import annotations

import time

import numpy as np

import reaxgrad.core as rg
import reaxgrad.core.numpy as jnp
from reaxgrad.md.minimize import fire, lbfgs

from .batch import FIT_CONTROL, build_batch, canonical_order, moved_too_far
from .clusters import cluster_cost, cluster_structures
from .predict import batch_energies, restraint_energy

# JAX-ReaxFF's constants (its learning rates are float32 numbers)
LR_INCREASE = float(np.float32(1.1))
LR_DECREASE = float(np.float32(0.75))
GRAD_CLIP, GRAD_FLOOR, STEP_CLIP, TOTAL_CLIP = 10.0, 0.1, 0.01, 1.0
COMPACT_EVERY = 20  # steps between checks for stopped structures to drop from the batch


def restraint_arrays(structures, members, offsets) -> dict:
    out = {}
    for kind, width in (("bond", 2), ("angle", 3), ("torsion", 4)):
        rows = [(p, r) for p, k in enumerate(members)
                for r in (structures[k].restraints or {}).get(kind, [])]
        out[kind] = {
            "atoms": np.array([[offsets[p] + a for a in r["atoms"]] for p, r in rows],
                              dtype=np.int64).reshape(-1, width),
            "target": np.array([r["target"] for _, r in rows], dtype=np.float64),
            "force1": np.array([r["force1"] for _, r in rows], dtype=np.float64),
            "force2": np.array([r["force2"] for _, r in rows], dtype=np.float64),
            "structure": np.array([p for p, _ in rows], dtype=np.int64),
        }
    return out


def _energy_and_gradient(theta, positions, lists, charges, restraints, pmap, convention):
    params = pmap.tables(theta)

    def total(x):
        e, _ = batch_energies(x, params, lists, charges, convention)
        e = e + restraint_energy(x, restraints, charges.shape[0])
        return jnp.sum(e), e

    (_, energy), grad = rg.value_and_grad(total, has_aux=True)(positions)
    return energy, grad


class Relaxer:
    """Relaxes the flagged structures of a FitProblem; results go to ``problem.positions``."""

    def __init__(self, problem, max_clusters=10):
        self.problem = problem
        structures = problem.structures
        self.members = np.array([k for k, s in enumerate(structures) if s.relax_steps > 0],
                                dtype=np.int64)
        self.max_clusters = max_clusters
        groups = cluster_structures([structures[k].n_atoms for k in self.members], max_clusters)
        self.groups = [canonical_order(structures, self.members[g]) for g in groups]
        self.batches = [None] * len(self.groups)
        self._fn = rg.jit(_energy_and_gradient, static_argnums=(5, 6))
        self.seconds = 0.0

    def __bool__(self) -> bool:
        return len(self.members) > 0

    def _build(self, members, theta, positions, previous=None):
        b = build_batch(self.problem.structures, members, self.problem.pmap.numpy_tables(theta),
                        positions, elements=self.problem.elements,
                        control={**self.problem.control, "skin": FIT_CONTROL["skin"]},
                        previous=previous)
        b.restraints = restraint_arrays(self.problem.structures, members, b.atom_offsets)
        return b

    def _lists(self, g, theta, positions):
        b = self.batches[g]
        if b is None or moved_too_far(b, np.concatenate(positions)):
            self.batches[g] = self._build(self.groups[g], theta, positions, previous=b)
        return self.batches[g]

    def _evaluate(self, batch, theta, positions):
        e, grad = self._fn(np.asarray(theta, dtype=np.float64), np.concatenate(positions),
                           batch.lists, batch.charges, batch.restraints, self.problem.pmap,
                           self.problem.convention)
        return np.asarray(e), batch.split(np.asarray(grad))

    def energy_and_gradient(self, g, theta, positions):
        """(E (S,), dE/dx as a list of (n, 3)) of group g at the given per-structure positions."""
        return self._evaluate(self._lists(g, theta, positions), theta, positions)

    def steepest_descent(self, theta, steps, learning_rate, end_rmsg) -> dict:
        """JAX-ReaxFF's energy minimisation; returns {structure index: RMSG at the last step}.
        One task per group on the problem's executor (this process, or Dask workers)."""
        return self._run({"method": "sd", "steps": int(steps),
                          "learning_rate": float(learning_rate), "end_rmsg": float(end_rmsg)},
                         theta)

    def minimize(self, theta, steps, fmax, method="fire") -> dict:
        """FIRE / L-BFGS (ASE's algorithms) to max |F| < fmax (kcal/mol/Å), at most
        min(steps, relax_steps) steps per structure; returns {structure: max |F|}."""
        return self._run({"method": method, "steps": int(steps), "fmax": float(fmax)}, theta)

    def _run(self, settings, theta) -> dict:
        """Relax every group through the executor; positions go to ``problem.positions``."""
        t = time.perf_counter()
        theta = np.asarray(theta, dtype=np.float64)
        payloads = [{**settings, "max_clusters": self.max_clusters, "group": g, "theta": theta}
                    for g in range(len(self.groups))]
        results = self.problem.executor.map(
            "relax", payloads, [("relax", g) for g in range(len(self.groups))],
            [cluster_cost([self.problem.structures[k].n_atoms for k in group])
             for group in self.groups])
        out, self.active = {}, []
        for group, result in zip(self.groups, results):
            for p, k in enumerate(group):
                self.problem.positions[k] = np.asarray(result["positions"][p], dtype=np.float64)
                out[int(k)] = float(result["measure"][p])
            self.active.extend(result["active"])
        self.problem.set_positions(self.problem.positions)
        self.seconds += time.perf_counter() - t
        return out

    def relax_group(self, payload) -> dict:
        """One group's relaxation (the task): {"positions": per member, "measure": RMSG or
        max |F| per member, "active": structures still moving per step}. Lists start afresh,
        so the result depends on the payload only, not on what this process ran before."""
        g, theta = payload["group"], np.asarray(payload["theta"], dtype=np.float64)
        self.batches[g] = None
        if payload["method"] == "sd":
            return self._steepest_descent_group(g, theta, payload["steps"],
                                                payload["learning_rate"], payload["end_rmsg"])
        return self._minimize_group(g, theta, payload["steps"], payload["fmax"],
                                    payload["method"])

    def _steepest_descent_group(self, g, theta, steps, learning_rate, end_rmsg) -> dict:
        """Structures that stopped (learning rate 0: converged or out of budget) never move
        again, so every COMPACT_EVERY steps the batch is rebuilt without them once they are
        at least half of it."""
        s = self.problem.structures
        active = []
        global_lr = float(np.float32(learning_rate))
        group = self.groups[g]
        start = [s[k].positions.copy() for k in group]
        x = [p.copy() for p in start]
        lr = np.ones(len(group))
        budget = np.array([s[k].relax_steps for k in group], dtype=np.int64)
        n = np.array([s[k].n_atoms for k in group], dtype=np.float64)
        previous = np.zeros(len(group))
        rmsg = np.zeros(len(group))
        live, local = np.arange(len(group)), None  # structures evaluated, their batch
        for it in range(steps):
            if not np.any(lr > 0):
                break
            moving = lr[live] > 0
            if it % COMPACT_EVERY == 0 and np.count_nonzero(moving) <= 0.5 * len(live):
                live, local = live[moving], None
            positions = [x[p] for p in live]
            if len(live) == len(group):
                energy, grad = self.energy_and_gradient(g, theta, positions)
            else:
                if local is None or moved_too_far(local, np.concatenate(positions)):
                    local = self._build(group[live], theta, positions, previous=local)
                energy, grad = self._evaluate(local, theta, positions)
            rmsg[live] = np.sqrt((np.array([np.sum(gk * gk) for gk in grad]) + 1e-5)
                                 / (3 * n[live]))
            if it > 0:
                lr[live] = np.where(energy < previous[live], lr[live] * LR_INCREASE,
                                    lr[live] * LR_DECREASE)
            lr = lr * (budget > 0) * (rmsg > end_rmsg)
            active.append(int(np.count_nonzero(lr > 0)))
            budget -= 1
            for q, p in enumerate(live):
                gk = np.clip(grad[q], -GRAD_CLIP, GRAD_CLIP)
                gk = np.where(np.abs(gk) < GRAD_FLOOR, 0.0, gk) * (global_lr * lr[p])
                moved = x[p] - np.clip(gk, -STEP_CLIP, STEP_CLIP)
                x[p] = start[p] - np.clip(start[p] - moved, -TOTAL_CLIP, TOTAL_CLIP)
            previous[live] = energy
        return {"positions": x, "measure": rmsg.tolist(), "active": active}

    def _minimize_group(self, g, theta, steps, fmax, method) -> dict:
        s = self.problem.structures
        group = self.groups[g]
        n = np.array([s[k].n_atoms for k in group])
        width = int(n.max())
        mask = np.arange(width)[None, :] < n[:, None]
        x0 = np.zeros((len(group), width, 3))
        for p, k in enumerate(group):
            x0[p, :n[p]] = s[k].positions

        def value_and_grad(x):
            parts = [x[p, :n[p]] for p in range(len(n))]
            energy, grad = self.energy_and_gradient(g, theta, parts)
            full = np.zeros_like(x)
            for p in range(len(n)):
                full[p, :n[p]] = grad[p]
            return energy, full

        budget = np.minimum([s[k].relax_steps for k in group], steps)
        minimizer = fire if method == "fire" else lbfgs
        res = minimizer(value_and_grad, x0, mask, fmax=fmax, max_steps=int(steps),
                        steps=budget)
        return {"positions": [res.positions[p, :n[p]].copy() for p in range(len(n))],
                "measure": [float(np.linalg.norm(res.gradient[p, :n[p]], axis=1).max())
                            for p in range(len(n))],
                "active": []}
