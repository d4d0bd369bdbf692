"""Per-cluster evaluation: the unit of work a fit spreads over processes.

For cluster c (one batch of structures) and parameters θ: the outputs o_c(θ) = (energies,
charges[, forces]) and, for the gradient, the VJP g_c = (do_c/dθ)ᵀ ō_c, with cotangents ō_c
that the driver computes from every cluster's outputs (the loss is not a sum over clusters:
an ENERGY item may subtract structures of different clusters). The forward pass keeps its
linearisation residuals (the constants of the linear program that reverse mode transposes)
so that the VJP does not rerun it; when they are missing (another process, a restarted
worker) the same compiled forward program runs again, so the result is the same either way.

A request carries the cluster's list state (the θ the lists are built for, the members'
positions, the list capacities the driver tracks), so every process builds the same batch,
hence the same compiled shapes and the same sums, whatever it evaluated before.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

import reaxgrad.core as rg
import reaxgrad.core.numpy as jnp
from reaxgrad.core.reverse import backward_pass, linearize_flat
from reaxgrad.core.trace import Tracer

from .batch import build_batch, padded_length
from .predict import batch_energies, batch_energies_and_forces


@dataclass
class ClusterRequest:
    """What a process needs to build cluster ``cluster``'s batch: lists for θ ``theta_lists``
    at ``positions`` (one (n, 3) array per member) with at least ``capacities``."""

    cluster: int
    theta_lists: np.ndarray
    positions: list
    capacities: dict | None = None

    def key(self) -> bytes:
        h = hashlib.blake2b(np.ascontiguousarray(self.theta_lists).tobytes(), digest_size=16)
        for p in self.positions:
            h.update(np.ascontiguousarray(p).tobytes())
        return h.digest()


def outputs_function(pmap, convention: str, need_forces: bool):
    """θ, positions, lists, total charges -> [energies (S,), charges (N,)[, forces (N, 3)]]."""

    def outputs(theta, positions, lists, charges):
        params = pmap.tables(theta)
        if need_forces:
            return list(batch_energies_and_forces(positions, params, lists, charges,
                                                  convention))
        return list(batch_energies(positions, params, lists, charges, convention))

    return outputs


class Linearized:
    """A compiled forward pass returning outputs, residuals and the index of its linear
    program, and the compiled transpose of that program (one per traced layout)."""

    def __init__(self, fn):
        self.fn = fn
        self.programs: list = []  # (linear program, which constants are residuals, jit)
        self.forward = rg.jit(self._forward)

    def _forward(self, theta, *args):
        outs, linear, _ = linearize_flat(lambda th: self.fn(th, *args), [theta])
        slots = [isinstance(c, Tracer) for c in linear.consts]
        self.programs.append([linear, slots, None])
        index = np.int64(len(self.programs) - 1)
        return outs, [c for c, s in zip(linear.consts, slots) if s], index

    def backward(self, index: int, residuals, cotangents):
        entry = self.programs[index]
        if entry[2] is None:
            linear, slots = entry[0], entry[1]

            def transpose(res, cts):
                it = iter(res)
                consts = [next(it) if s else c for c, s in zip(linear.consts, slots)]
                (ct,) = backward_pass(linear.replace(consts=consts), cts)
                return jnp.zeros(linear.invars[0].aval.shape) if ct is None else ct

            entry[2] = rg.jit(transpose)
        return entry[2](residuals, cotangents)


class ClusterEvaluator:
    """The batches, compiled functions and residuals of the clusters this process evaluates
    (all of them serially; a worker's share when distributed)."""

    def __init__(self, problem):
        self.problem = problem
        fn = outputs_function(problem.pmap, problem.convention, problem.need_forces)
        n = len(problem.clusters)
        self._fn = fn
        self._batches: list = [None] * n
        self._keys: list = [None] * n
        self._outputs = [rg.jit(fn) for _ in range(n)]
        self._linear = [Linearized(fn) for _ in range(n)]
        self._saved: dict = {}  # cluster -> (list key, θ bytes, program index, residuals)

    def batch(self, request: ClusterRequest):
        """(the cluster's batch for this request, seconds spent building lists)."""
        c, key = request.cluster, request.key()
        cached = self._batches[c]
        if self._keys[c] == key and cached.capacities() == {
                name: padded_length(m, request.capacities, name)
                for name, m in cached.counts.items()}:  # what a new build would give
            return cached, 0.0
        t = time.perf_counter()
        p = self.problem
        self._batches[c] = build_batch(
            p.structures, p.clusters[c], p.pmap.numpy_tables(request.theta_lists),
            [np.asarray(x, dtype=np.float64) for x in request.positions],
            elements=p.elements, control=p.control, capacities=request.capacities)
        self._keys[c] = key
        self._saved.pop(c, None)
        return self._batches[c], time.perf_counter() - t

    def _args(self, batch, request):
        positions = np.concatenate([np.asarray(x, dtype=np.float64) for x in request.positions])
        return positions, batch.lists, batch.charges

    def _info(self, c, batch, seconds, started) -> dict:
        return {"capacities": batch.capacities(), "counts": dict(batch.counts),
                "structures": len(batch.members), "atoms": batch.n_atoms,
                "padding": batch.padding(), "lists": seconds,
                "traces": {"loss_and_grad": self._linear[c].forward.trace_count,
                           "outputs": self._outputs[c].trace_count},
                "seconds": time.perf_counter() - started}

    def outputs(self, request: ClusterRequest, theta) -> dict:
        """{"outputs": [energies, charges[, forces]], "info": ...} (no residuals kept)."""
        t = time.perf_counter()
        batch, seconds = self.batch(request)
        outs = self._outputs[request.cluster](_theta(theta), *self._args(batch, request))
        return {"outputs": [np.array(o) for o in outs],
                "info": self._info(request.cluster, batch, seconds, t)}

    def _forward(self, request, theta):
        batch, seconds = self.batch(request)
        c = request.cluster
        outs, residuals, index = self._linear[c].forward(theta, *self._args(batch, request))
        self._saved[c] = (self._keys[c], theta.tobytes(), int(index), residuals)
        return batch, seconds, outs

    def forward(self, request: ClusterRequest, theta) -> dict:
        """Outputs as ``outputs``, by the linearised program; its residuals are kept for
        ``vjp`` at the same θ and lists."""
        t = time.perf_counter()
        batch, seconds, outs = self._forward(request, _theta(theta))
        return {"outputs": [np.array(o) for o in outs],
                "info": self._info(request.cluster, batch, seconds, t)}

    def vjp(self, request: ClusterRequest, theta, cotangents) -> dict:
        """{"grad": (do_c/dθ)ᵀ cotangents, "recomputed": whether the forward pass reran}."""
        t = time.perf_counter()
        theta = _theta(theta)
        c = request.cluster
        batch, seconds = self.batch(request)
        saved = self._saved.get(c)
        recomputed = saved is None or saved[:2] != (self._keys[c], theta.tobytes())
        if recomputed:
            batch, more, _ = self._forward(request, theta)
            seconds += more
            saved = self._saved[c]
        cts = [np.asarray(x, dtype=np.float64) for x in cotangents]
        grad = self._linear[c].backward(saved[2], saved[3], cts)
        del self._saved[c]  # one VJP per forward pass: free the residuals
        return {"grad": np.array(grad, dtype=np.float64), "recomputed": recomputed,
                "info": self._info(c, batch, seconds, t)}


def _theta(theta) -> np.ndarray:
    return np.ascontiguousarray(theta, dtype=np.float64)
