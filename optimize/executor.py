"""Where a fit's per-cluster tasks run. The driver (FitProblem, Relaxer, ImplicitGeometry)
hands out tasks by name with a payload; an executor runs them and returns the results in
order. ``LocalExecutor`` runs them here, one after the other; ``optimize.distributed``'s
``DaskExecutor`` runs the same tasks on Dask workers. Both go through ``WorkerState.run``,
so a serial fit and a distributed one compute the same numbers by the same code.

Tasks: "outputs", "forward", "vjp" (a cluster of the loss, ``optimize.cluster_eval``);
"relax" (a group of ``optimize.relax``); "jacobian" (a group of ``optimize.implicit``).

Tasks run with one BLAS thread: OpenBLAS's results depend on its thread count (the batched
charge solve differs in the last bits between 1 and 2 threads), and Dask workers have one
thread, so the driver's serial tasks must too for the two to agree bit for bit.
"""
from __future__ import annotations

import ctypes
from contextlib import contextmanager
from functools import lru_cache

_BLAS_THREADS = ("scipy_openblas_{}_num_threads64_", "scipy_openblas_{}_num_threads",
                 "openblas_{}_num_threads64_", "openblas_{}_num_threads")


@lru_cache(maxsize=1)
def _openblas():
    """(get, set) of the thread count of the OpenBLAS NumPy loaded, or None (another BLAS,
    or not Linux: then results may depend on its thread count)."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower()})
    except OSError:
        return None
    for path in paths:
        lib = ctypes.CDLL(path)
        for name in _BLAS_THREADS:
            if hasattr(lib, name.format("get")) and hasattr(lib, name.format("set")):
                get, set_ = getattr(lib, name.format("get")), getattr(lib, name.format("set"))
                set_.argtypes = [ctypes.c_int]
                return get, set_
    return None


@contextmanager
def one_blas_thread():
    """OpenBLAS limited to one thread inside the block (restored after)."""
    blas = _openblas()
    before = blas[0]() if blas else 1
    if blas and before != 1:
        blas[1](1)
    try:
        yield
    finally:
        if blas and before != 1:
            blas[1](before)


class WorkerState:
    """What one process keeps for one fit: the problem (its clusters' batches, compiled
    functions and residuals), relaxers and implicit-geometry models, built on first use."""

    def __init__(self, problem):
        self.problem = problem
        self._relaxers: dict = {}
        self._implicit: dict = {}

    def relaxer(self, max_clusters: int):
        from .relax import Relaxer

        if max_clusters not in self._relaxers:
            self._relaxers[max_clusters] = Relaxer(self.problem, max_clusters=max_clusters)
        return self._relaxers[max_clusters]

    def implicit(self, max_clusters: int, chunk: int):
        from .implicit import ImplicitGeometry

        key = (max_clusters, chunk)
        if key not in self._implicit:
            self._implicit[key] = ImplicitGeometry(self.problem, self.relaxer(max_clusters),
                                                   chunk=chunk)
        return self._implicit[key]

    def run(self, method: str, payload: dict):
        with one_blas_thread():
            return self._run(method, payload)

    def _run(self, method: str, payload: dict):
        local = self.problem.local
        if method == "outputs":
            return local.outputs(payload["request"], payload["theta"])
        if method == "forward":
            return local.forward(payload["request"], payload["theta"])
        if method == "vjp":
            return local.vjp(payload["request"], payload["theta"], payload["cotangents"])
        if method == "relax":
            return self.relaxer(payload["max_clusters"]).relax_group(payload)
        if method == "jacobian":
            model = self.implicit(payload["max_clusters"], payload["chunk"])
            return model.group_jacobian(payload)
        raise ValueError(f"unknown fit task {method!r}")


class LocalExecutor:
    """Runs the tasks in this process, in order, on the driver's own problem."""

    def __init__(self, problem):
        self.state = WorkerState(problem)

    def map(self, method: str, payloads: list, keys: list, costs: list | None = None) -> list:
        """Results of ``method`` on each payload (``keys``, ``costs``: which unit each payload
        is and its estimated work, for executors that place units on workers)."""
        return [self.state.run(method, p) for p in payloads]

    def close(self) -> None:
        pass
