"""Fitting on Dask workers: the executor that runs a FitProblem's per-cluster tasks
(``optimize.executor``) on a ``distributed.Client``.

* The problem's inputs (parameter map, structures, items, options: ``FitProblem.spec``) go to
  every worker once, in a worker plugin, which Dask also installs on workers that join or
  restart later. Each worker process builds its own FitProblem from them on its first task
  and keeps it (batches, compiled functions, residuals), keyed by a token of this executor.
* Every unit (a cluster of the loss, a group of the relaxation or of the implicit geometry)
  is kept on one worker, chosen by largest-first balancing of an estimated cost, so that its
  lists, compiled kernels and forward residuals stay where its next task runs. The pin is
  loose: when that worker is gone the task runs elsewhere and rebuilds what it needs.
* Results come back in the order asked, and the driver reduces them in that order, so the
  numbers do not depend on which worker ran what, or on a worker lost and replaced.
"""
from __future__ import annotations

import threading
import uuid

from distributed import WorkerPlugin, get_worker

from .executor import WorkerState

_SPECS: dict = {}  # token -> FitProblem keyword arguments (set by the plugin)
_STATES: dict = {}  # token -> WorkerState
_LOCK = threading.Lock()  # one task at a time per worker process touches a state


class ProblemPlugin(WorkerPlugin):
    """Carries a fit's inputs to every worker (present and future)."""

    def __init__(self, token: str, spec: dict):
        self.token = token
        self.spec = spec

    def setup(self, worker) -> None:
        _SPECS[self.token] = self.spec

    def teardown(self, worker) -> None:
        _SPECS.pop(self.token, None)
        _STATES.pop(self.token, None)


def run_task(token: str, method: str, payload: dict) -> dict:
    """A fit task on a worker: the worker's state for ``token`` (built on first use)."""
    with _LOCK:
        state = _STATES.get(token)
        if state is None:
            if token not in _SPECS:
                raise RuntimeError(f"fit {token}: its inputs never reached this worker")
            from .problem import FitProblem

            state = _STATES[token] = WorkerState(FitProblem(**_SPECS[token]))
        result = state.run(method, payload)
    try:
        result["worker"] = get_worker().address
    except ValueError:  # not on a worker (a client running tasks in process)
        result["worker"] = None
    return result


def balance(costs: dict, workers: list) -> dict:
    """{unit: worker}: largest cost first onto the least loaded worker (ties: sorted order),
    a deterministic function of its inputs."""
    load = {w: 0.0 for w in workers}
    out = {}
    for unit in sorted(costs, key=lambda u: (-costs[u], u)):
        w = min(workers, key=lambda x: (load[x], x))
        out[unit] = w
        load[w] += costs[unit]
    return out


class DaskExecutor:
    """Runs fit tasks on the workers of ``client``; ``retries``: re-runs of a task that
    raised (a task whose worker died is re-run by Dask anyway)."""

    def __init__(self, client, problem, retries: int = 3):
        self.client = client
        self.token = uuid.uuid4().hex
        self.name = f"reaxgrad-fit-{self.token}"
        self.retries = retries
        self._pools: dict = {}  # pool -> (workers, {unit: worker})
        client.register_plugin(ProblemPlugin(self.token, problem.spec), name=self.name)

    def workers(self) -> list:
        """Addresses of the workers now connected (waits for a first one)."""
        workers = sorted(self.client.nthreads())
        if not workers:
            self.client.wait_for_workers(1)
            workers = sorted(self.client.nthreads())
        return workers

    def _placement(self, keys: list, costs: list | None) -> list:
        """The worker of each unit: kept while the set of workers stays the same."""
        workers = self.workers()
        pool = keys[0][0] if keys else None
        known_workers, placed = self._pools.get(pool, (None, {}))
        if known_workers != workers or any(k not in placed for k in keys):
            weights = dict(zip(keys, costs or [1.0] * len(keys)))
            placed = balance(weights, workers)
            self._pools[pool] = (workers, placed)
        return [placed[k] for k in keys]

    def map(self, method: str, payloads: list, keys: list, costs: list | None = None) -> list:
        """Results of ``method`` on each payload, in order; unit ``keys[i]`` stays on one
        worker from call to call (``costs``: estimated work per unit, for the balance)."""
        if not payloads:
            return []
        tag = uuid.uuid4().hex[:12]
        futures = [self.client.submit(run_task, self.token, method, payload,
                                      key=f"reaxgrad-{method}-{'-'.join(map(str, k))}-{tag}",
                                      workers=[w], allow_other_workers=True,
                                      retries=self.retries, pure=False)
                   for payload, k, w in zip(payloads, keys, self._placement(keys, costs))]
        return self.client.gather(futures)

    def close(self) -> None:
        """Remove the fit's state from the workers."""
        try:
            self.client.unregister_worker_plugin(self.name)
        except Exception:  # noqa: BLE001 - the cluster may already be gone
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
