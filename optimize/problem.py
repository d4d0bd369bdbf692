"""A fitting problem: structures, their batches, the training (and validation) items, and the
loss with its gradient with respect to the fitted parameters θ, compiled once per batch layout.

The loss at fixed geometry is one traced function over every batch (JAX-ReaxFF's surrogate):
θ -> tables -> per-batch energies, charges and forces (forces through the charge solve in the
"jaxreaxff" convention) -> item predictions -> Σ ((target − prediction) / weight)². Geometry
items (DISTANCE, ANGLE, TORSION) and CELL depend on the positions only, so at fixed geometry
they are constants of θ; ``optimize.implicit`` adds their exact θ-gradient through the relaxed
minimum.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

import reaxgrad.core as rg
import reaxgrad.core.numpy as jnp

from .batch import Batch, Structure, build_batch, canonical_order
from .clusters import cluster_structures
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
        self.batches = self._build(pmap.initial)
        self.layout = self._layout()
        self.tables = {k: build_tables(v, self.names, self.layout, structures)
                       for k, v in item_sets.items()}
        cats = {c for t in self.tables.values() for c in t}
        self.need_forces = bool(cats & {"FORCE", "RMSG"})
        self._value_and_grad = rg.jit(rg.value_and_grad(self._traced_loss, has_aux=True),
                                      static_argnums=(1,))
        self._outputs = rg.jit(self._traced_outputs, static_argnums=(1,))

    # -- lists ------------------------------------------------------------------------------
    def _build(self, theta, previous=None) -> list[Batch]:
        t = time.perf_counter()
        tables = self.pmap.numpy_tables(theta)
        out = []
        for c, members in enumerate(self.clusters):
            prev = None if previous is None else previous[c]
            out.append(build_batch(self.structures, members, tables,
                                   [self.positions[k] for k in members],
                                   elements=self.elements, control=self.control,
                                   previous=prev))
        self.timings.lists += time.perf_counter() - t
        return out

    def refresh_lists(self, theta) -> None:
        """Rebuild every batch's lists at the current positions for parameters θ (nothing to
        do when neither changed since the last build)."""
        theta = np.array(theta, dtype=np.float64)
        same = (np.array_equal(theta, self.theta_lists) and all(
            np.array_equal(self._batch_positions(b), b.built_at) for b in self.batches))
        if same:
            return
        self.theta_lists = theta
        self.batches = self._build(theta, previous=self.batches)

    def set_positions(self, positions: list) -> None:
        """New geometries (after relaxation); the lists follow at ``refresh_lists``."""
        self.positions = [np.asarray(p, dtype=np.float64) for p in positions]
        self._geometry_cache = {}

    def _batch_positions(self, batch: Batch) -> np.ndarray:
        return np.concatenate([self.positions[k] for k in batch.members])

    def _layout(self) -> Layout:
        n = len(self.structures)
        slot, start, owner = np.zeros(n, np.int64), np.zeros(n, np.int64), []
        s_base = a_base = 0
        for b in self.batches:
            for p, k in enumerate(b.members):
                slot[k] = s_base + p
                start[k] = a_base + b.atom_offsets[p]
            owner.append(s_base + np.asarray(b.lists.atom_structure)[:b.n_atoms])
            s_base += len(b.members)
            a_base += b.n_atoms
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
        positions = [self._batch_positions(b)[:b.n_atoms] for b in self.batches]
        lists = [b.lists for b in self.batches]
        charges = [b.charges for b in self.batches]
        return positions, lists, charges

    def compile_counts(self) -> dict:
        """How often each compiled function was traced (one per list-capacity layout)."""
        return {"loss_and_grad": self._value_and_grad.trace_count,
                "outputs": self._outputs.trace_count}

    # -- host API ---------------------------------------------------------------------------
    def positions_all(self) -> np.ndarray:
        return np.concatenate([self._batch_positions(b) for b in self.batches])

    def loss_and_grad(self, theta, weights=None):
        """(loss, dloss/dθ) at the current geometries (the surrogate JAX-ReaxFF minimises);
        geometry items add their current (θ-independent) errors. weights: per item set
        multiplier (default: the train set only)."""
        weights = weights or {k: float(k == "train") for k in self.tables}
        t = time.perf_counter()
        (value, _), grad = self._value_and_grad(np.asarray(theta, dtype=np.float64),
                                                self.need_forces, *self._args(), weights,
                                                self.geometry_model)
        geometry = sum(weights[k] * self._geometry_loss(k) for k in self.tables)
        self.timings.loss += time.perf_counter() - t
        self.timings.evaluations += 1
        return float(value) + geometry, np.asarray(grad, dtype=np.float64)

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
        energy, q, forces = self._outputs(np.asarray(theta, dtype=np.float64),
                                          self.need_forces, *self._args())
        energy, q, forces = (np.asarray(a) for a in (energy, q, forces))
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
