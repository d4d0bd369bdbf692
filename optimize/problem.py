"""A fitting problem: structures, their batches, the training (and validation) items, and the
loss with its gradient with respect to the fitted parameters θ, compiled once per batch layout.

The loss at fixed geometry is one traced function over every batch (JAX-ReaxFF's surrogate):
θ -> tables -> per-batch energies, charges and forces (forces through the charge solve in the
"jaxreaxff" convention) -> item predictions -> Σ ((target − prediction) / weight)². Geometry
items (DISTANCE, ANGLE, TORSION) and CELL depend on the positions only, so at fixed geometry
they are constants of θ; ``optimize.implicit`` adds their exact θ-gradient through the relaxed
minimum.

The work is split by cluster (``optimize.cluster_eval``) and run by ``self.executor`` (this
process by default, Dask workers with ``optimize.distributed``): each cluster's outputs, then
the items' loss and its cotangents here, then each cluster's VJP, summed in cluster order. The
same decomposition and order serially and distributed, so both give the same bits.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

import reaxgrad.core as rg
import reaxgrad.core.numpy as jnp

from .batch import Batch, Structure, canonical_order
from .cluster_eval import ClusterEvaluator, ClusterRequest
from .clusters import cluster_cost, cluster_structures
from .executor import LocalExecutor
from .items import (
    GEOMETRY_CATEGORIES,
    JAXREAXFF_CATEGORIES,
    PARAMETER_CATEGORIES,
    Layout,
    build_tables,
    errors,
    geometry_predictions,
    parameter_predictions,
)
from .parameters import ParameterMap
from .predict import batch_energies, batch_energies_and_forces


@dataclass
class Evaluation:
    """Loss of one item set: total (scored categories), per category, per item."""

    loss: float
    categories: dict
    predictions: dict
    errors: dict
    scored: tuple


@dataclass
class Timings:
    lists: float = 0.0
    compile: float = 0.0
    loss: float = 0.0
    relax: float = 0.0
    evaluations: int = 0
    recomputed: int = 0  # cluster VJPs that reran the forward pass (residuals not found)
    traces: dict = field(default_factory=dict)


class FitProblem:
    """Everything a fit evaluates. ``item_sets``: {"train": items, "valid": items, ...}."""

    def __init__(self, pmap: ParameterMap, structures: list[Structure], item_sets: dict, *,
                 convention="jaxreaxff", scored=JAXREAXFF_CATEGORIES, max_clusters=10,
                 control=None):
        self.pmap = pmap
        self.structures = structures
        self.names = {s.name: k for k, s in enumerate(structures)}
        self.convention = convention
        # lists rebuilt whenever x moves (no skin) and between outer iterations; legs of
        # angles/torsions/H-bonds kept while their bond orders stay above 10 % of the
        # thresholds as the optimizer moves θ (on disulfide the 1,825 torsions that count are
        # the same at the start and at the end of a fit, out of 7,515 candidates)
        self.control = {"skin": 0.0, **(control or {})}
        if convention == "jaxreaxff":  # JAX-ReaxFF's periodic images and torsion atoms
            self.control.setdefault("image_limit", "jaxreaxff")
            self.control.setdefault("index_exclusions", True)
        self.scored = tuple(scored)
        self.timings = Timings()
        self.elements = list(pmap.ff.elements)
        self.clusters = [canonical_order(structures, c) for c in
                         cluster_structures([s.n_atoms for s in structures], max_clusters)]
        self.positions = [s.positions.copy() for s in structures]
        self.geometry_model = None  # optimize.implicit: x*(θ) ≈ x0 + J (θ − θ0)
        self._geometry_cache: dict = {}
        self.theta_lists = pmap.initial.copy()
        # list capacities per cluster (tracked here, sent with every request, so that any
        # process builds the same padded lists) and what the last evaluation reported
        self.capacities: list = [None] * len(self.clusters)
        self.cluster_info: list = [None] * len(self.clusters)
        self._costs = [cluster_cost([structures[k].n_atoms for k in members])
                       for members in self.clusters]
        self.layout = self._layout()
        self.tables = {k: build_tables(v, self.names, self.layout, structures)
                       for k, v in item_sets.items()}
        cats = {c for t in self.tables.values() for c in t}
        self.need_forces = bool(cats & {"FORCE", "RMSG"})
        self.spec = {"pmap": pmap, "structures": structures, "item_sets": item_sets,
                     "convention": convention, "scored": self.scored,
                     "max_clusters": max_clusters, "control": control}
        self.local = ClusterEvaluator(self)
        self.executor = LocalExecutor(self)
        self._items_grad = rg.jit(rg.value_and_grad(self._items_loss, argnums=(0, 1, 2, 3),
                                                    has_aux=True))
        self._value_and_grad = rg.jit(rg.value_and_grad(self._traced_loss, has_aux=True),
                                      static_argnums=(1,))
        self._outputs = rg.jit(self._traced_outputs, static_argnums=(1,))

    def local_executor(self) -> LocalExecutor:
        """An executor running the tasks in this process (the default)."""
        return LocalExecutor(self)

    # -- lists ------------------------------------------------------------------------------
    def requests(self) -> list[ClusterRequest]:
        """Each cluster's list state: lists for ``theta_lists`` at the current positions."""
        return [ClusterRequest(c, self.theta_lists, [self.positions[k] for k in members],
                               self.capacities[c])
                for c, members in enumerate(self.clusters)]

    @property
    def batches(self) -> list[Batch]:
        """Every cluster's batch in this process, at the current list state (serial uses;
        ``_args``: the sensitivity report, the demo's targets)."""
        out = []
        for request in self.requests():
            batch, seconds = self.local.batch(request)
            self.timings.lists += seconds
            self.capacities[request.cluster] = batch.capacities()
            out.append(batch)
        return out

    def refresh_lists(self, theta) -> None:
        """Lists for parameters θ from now on (built where each cluster is next evaluated,
        unless neither θ nor the positions changed since the last build)."""
        self.theta_lists = np.array(theta, dtype=np.float64)

    def set_positions(self, positions: list) -> None:
        """New geometries (after relaxation); lists follow at the next evaluation."""
        self.positions = [np.asarray(p, dtype=np.float64) for p in positions]
        self._geometry_cache = {}

    def _cluster_positions(self, c: int) -> np.ndarray:
        return np.concatenate([self.positions[k] for k in self.clusters[c]])

    def _layout(self) -> Layout:
        n = len(self.structures)
        slot, start, owner = np.zeros(n, np.int64), np.zeros(n, np.int64), []
        s_base = a_base = 0
        self._slices = []  # per cluster: (structure slots, atom rows) in the outputs
        for members in self.clusters:
            sizes = np.array([self.structures[k].n_atoms for k in members])
            offsets = np.concatenate([[0], np.cumsum(sizes)])
            for p, k in enumerate(members):
                slot[k] = s_base + p
                start[k] = a_base + offsets[p]
            owner.append(s_base + np.repeat(np.arange(len(members)), sizes))
            self._slices.append((slice(s_base, s_base + len(members)),
                                 slice(a_base, a_base + int(offsets[-1]))))
            s_base += len(members)
            a_base += int(offsets[-1])
        counts = np.array([s.n_atoms for s in self.structures])
        return Layout(slot, start, counts, np.concatenate(owner))

    # -- traced functions -------------------------------------------------------------------
    def _traced_outputs(self, theta, need_forces, positions, lists, charges):
        params = self.pmap.tables(theta)
        energies, qs, forces = [], [], []
        for pos, lst, q0 in zip(positions, lists, charges):
            if need_forces:
                e, q, f = batch_energies_and_forces(pos, params, lst, q0, self.convention)
                forces.append(f)
            else:
                e, q = batch_energies(pos, params, lst, q0, self.convention)
            energies.append(e)
            qs.append(q)
        n_atoms = [int(np.shape(p)[0]) for p in positions]
        energy = jnp.concatenate(energies)
        charges_all = jnp.concatenate(qs)
        forces_all = (jnp.concatenate(forces) if need_forces
                      else jnp.zeros((sum(n_atoms), 3)))
        return energy, charges_all, forces_all

    def _traced_loss(self, theta, need_forces, positions, lists, charges, weights,
                     geometry=None):
        energy, q, forces = self._traced_outputs(theta, need_forces, positions, lists, charges)
        return self._items_loss(theta, energy, q, forces, weights, geometry)

    def _items_loss(self, theta, energy, q, forces, weights, geometry=None):
        """(loss of the θ-dependent items, predictions) from every cluster's outputs."""
        total = jnp.zeros(())
        preds = {}
        if geometry is not None:  # relaxed positions linearised in θ (optimize.implicit)
            shift = jnp.matmul(geometry["jacobian"], theta - geometry["theta0"])
            moved = geometry["x0"] + jnp.reshape(shift, geometry["x0"].shape)
        for name, tables in self.tables.items():
            p = parameter_predictions(tables, energy, q, forces, self.layout)
            if geometry is not None:
                p.update({k: v for k, v in geometry_predictions(tables, moved).items()
                          if k in GEOMETRY_CATEGORIES})
            err = errors(tables, p)
            preds[name] = p
            for cat, e in err.items():
                if cat in self.scored:
                    total = total + weights[name] * jnp.sum(e)
        return total, preds

    def _args(self):
        batches = self.batches
        positions = [self._cluster_positions(c) for c in range(len(batches))]
        lists = [b.lists for b in batches]
        charges = [b.charges for b in batches]
        return positions, lists, charges

    def compile_counts(self) -> dict:
        """How often the compiled function of a cluster was traced (one per list-capacity
        layout; the most over clusters and the processes that reported)."""
        out = {"loss_and_grad": 0, "outputs": 0}
        for info in self.cluster_info:
            for k in out:
                out[k] = max(out[k], (info or {}).get("traces", {}).get(k, 0))
        return out

    # -- host API ---------------------------------------------------------------------------
    def positions_all(self) -> np.ndarray:
        return np.concatenate([self._cluster_positions(c) for c in range(len(self.clusters))])

    def _run(self, method: str, requests: list, theta, extra=None) -> list:
        """``method`` on every cluster through the executor; list state bookkept."""
        payloads = [{"request": r, "theta": theta, **(extra[r.cluster] if extra else {})}
                    for r in requests]
        results = self.executor.map(method, payloads,
                                    [("cluster", r.cluster) for r in requests],
                                    [self._costs[r.cluster] for r in requests])
        for r, result in zip(requests, results):
            self.timings.recomputed += int(result.get("recomputed", False))
            info = {**result["info"], "worker": result.get("worker")}
            self.capacities[r.cluster] = info["capacities"]
            self.cluster_info[r.cluster] = info
            self.timings.lists += info["lists"]
        return results

    def _gather(self, results):
        """Every cluster's (energies, charges, forces) concatenated in layout order."""
        energy = np.concatenate([r["outputs"][0] for r in results])
        charges = np.concatenate([r["outputs"][1] for r in results])
        if self.need_forces:
            forces = np.concatenate([r["outputs"][2] for r in results])
        else:
            forces = np.zeros((len(charges), 3))
        return energy, charges, forces

    def loss_and_grad(self, theta, weights=None):
        """(loss, dloss/dθ) at the current geometries (the surrogate JAX-ReaxFF minimises);
        geometry items add their current (θ-independent) errors. weights: per item set
        multiplier (default: the train set only)."""
        weights = weights or {k: float(k == "train") for k in self.tables}
        t = time.perf_counter()
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        requests = self.requests()
        energy, q, forces = self._gather(self._run("forward", requests, theta))
        (value, _), (grad, ct_e, ct_q, ct_f) = self._items_grad(
            theta, energy, q, forces, weights, self.geometry_model)
        ct_e, ct_q, ct_f = (np.asarray(a, dtype=np.float64) for a in (ct_e, ct_q, ct_f))
        cotangents = []
        for structures, atoms in self._slices:
            ct = [ct_e[structures], ct_q[atoms]]
            if self.need_forces:
                ct.append(ct_f[atoms])
            cotangents.append({"cotangents": ct})
        grad = np.array(grad, dtype=np.float64)
        for result in self._run("vjp", requests, theta, cotangents):  # fixed order
            grad = grad + result["grad"]
        geometry = sum(weights[k] * self._geometry_loss(k) for k in self.tables)
        self.timings.loss += time.perf_counter() - t
        self.timings.evaluations += 1
        return float(value) + geometry, grad

    def _geometry_loss(self, name: str) -> float:
        """The position-only items held fixed in the loss (all of them, or CELL only when the
        geometry model linearises the relaxed positions in θ); cached until x changes."""
        key = (name, id(self.geometry_model))
        if key not in self._geometry_cache:
            self._geometry_cache[key] = self._fixed_geometry_loss(name)
        return self._geometry_cache[key]

    def _fixed_geometry_loss(self, name: str) -> float:
        tables = self.tables[name]
        preds = geometry_predictions(tables, self.positions_all())
        if self.geometry_model is not None:
            preds = {k: v for k, v in preds.items() if k not in GEOMETRY_CATEGORIES}
        err = errors(tables, preds)
        return float(sum(np.sum(np.asarray(e)) for c, e in err.items() if c in self.scored))

    def evaluate(self, theta) -> dict:
        """{item set: Evaluation} at the current geometries."""
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        energy, q, forces = self._gather(self._run("outputs", self.requests(), theta))
        out = {}
        for name, tables in self.tables.items():
            preds = {k: np.asarray(v) for k, v in
                     parameter_predictions(tables, energy, q, forces, self.layout).items()}
            preds.update({k: np.asarray(v) for k, v in
                          geometry_predictions(tables, self.positions_all()).items()})
            errs = {k: np.asarray(v) for k, v in errors(tables, preds).items()}
            cats = {k: float(np.sum(v)) for k, v in errs.items()}
            loss = float(sum(v for k, v in cats.items() if k in self.scored))
            out[name] = Evaluation(loss, cats, preds, errs, self.scored)
        return out


__all__ = ["Evaluation", "FitProblem", "GEOMETRY_CATEGORIES", "PARAMETER_CATEGORIES"]
