"""Where distributed work runs: a `dask.distributed` Client from command-line options.

Shared by `reaxgrad batch`, `evaluate` and `fit`:

* :func:`add_cluster_options` adds ``--workers N`` (a LocalCluster of N single-threaded worker
  processes), ``--scheduler-address`` / ``--scheduler-file`` (join a running cluster),
  ``--cluster {local,slurm,pbs,sge,lsf,mpi}`` with ``--cores --memory --walltime --queue
  --jobs`` (dask-jobqueue) and ``mpi`` (dask-mpi under ``mpirun``).
* :func:`open_client` turns them into a Client (a context manager that closes what it started,
  never an external cluster), or None when nothing was asked and the command runs serially.
* :func:`worker_model` keeps one ReaxFF model per (force field, options) in each worker
  process, so a force field is parsed and its kernels compiled once per worker, not per task.

Workers we start get one thread for everything (OpenMP, BLAS, reaxgrad's kernels), so N
workers on N cores do not oversubscribe them, and the driver's kernel disk cache directory,
so compiled kernels are shared rather than rebuilt per worker (kernels are installed there by
an atomic rename, so workers compiling the same one at once is safe). Workers of a cluster we
only join are the cluster owner's business (``dask worker`` also sets OMP_NUM_THREADS=1).
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from collections import OrderedDict
from contextlib import contextmanager, suppress
from pathlib import Path

from .inputs import InputError

__all__ = [
    "JOBQUEUE_KINDS",
    "ClusterOptionError",
    "add_cluster_options",
    "cpu_count",
    "ffield_digest",
    "jobqueue_cluster",
    "open_client",
    "worker_env",
    "worker_model",
]

JOBQUEUE_KINDS = ("slurm", "pbs", "sge", "lsf")
KINDS = ("local", *JOBQUEUE_KINDS, "mpi")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "REAXGRAD_NUM_THREADS")
MODEL_CACHE_SIZE = 4  # models kept per worker process (least recently used goes first)


class ClusterOptionError(InputError):
    """Contradictory or incomplete cluster options (message names the options)."""


def cpu_count() -> int:
    """Cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_cluster_options(parser, *, default_help: str = "run serially") -> None:
    """Add the options that say where the work runs. ``default_help`` says what happens when
    none is given (batch: a LocalCluster of one worker per core; evaluate/fit: serially)."""
    g = parser.add_argument_group(
        "where it runs (Dask)",
        f"Without any of these: {default_help}. One process per core with one thread each.")
    g.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="start a LocalCluster of N worker processes on this machine")
    g.add_argument("--scheduler-address", default=None, metavar="ADDR",
                   help="join a running Dask cluster (e.g. tcp://10.0.0.1:8786)")
    g.add_argument("--scheduler-file", default=None, metavar="FILE",
                   help="join a running Dask cluster through its scheduler file")
    g.add_argument("--cluster", default=None, choices=KINDS,
                   help="start a cluster: local, a batch system through dask-jobqueue "
                   "(slurm, pbs, sge, lsf; with --cores --memory --jobs ...), or mpi "
                   "(under mpirun: rank 0 scheduler, rank 1 this command, others workers)")
    g.add_argument("--cores", type=_positive_int, default=None,
                   help="cores per batch job, one single-threaded worker each (jobqueue)")
    g.add_argument("--memory", default=None,
                   help="memory per batch job, e.g. 16GB, shared by its workers (jobqueue)")
    g.add_argument("--walltime", default=None, help="wall-time limit per job, e.g. 02:00:00")
    g.add_argument("--queue", default=None, help="queue / partition of the jobs")
    g.add_argument("--jobs", type=_positive_int, default=None,
                   help="number of batch jobs to start (jobqueue; default 1)")


def _given(args, name):
    return getattr(args, name, None) is not None


def check_cluster_options(args) -> None:
    """Refuse contradictory or incomplete choices with a :class:`ClusterOptionError`."""
    joins = [f"--{n.replace('_', '-')}" for n in ("scheduler_address", "scheduler_file")
             if _given(args, n)]
    if len(joins) > 1:
        raise ClusterOptionError("give either --scheduler-address or --scheduler-file, not "
                                 "both")
    kind = getattr(args, "cluster", None)
    if joins and (kind or _given(args, "workers")):
        other = "--cluster" if kind else "--workers"
        raise ClusterOptionError(f"{joins[0]} joins a running cluster; it cannot be combined "
                                 f"with {other}, which starts one")
    if _given(args, "workers") and kind not in (None, "local"):
        raise ClusterOptionError(f"--workers sizes a local cluster; with --cluster {kind} the "
                                 + ("MPI ranks" if kind == "mpi" else "--jobs and --cores")
                                 + " give the workers")
    jq = [f"--{n}" for n in ("cores", "memory", "walltime", "queue", "jobs") if _given(args, n)]
    if jq and kind not in JOBQUEUE_KINDS:
        raise ClusterOptionError(f"{', '.join(jq)} only apply to --cluster "
                                 f"{'|'.join(JOBQUEUE_KINDS)}")
    if kind in JOBQUEUE_KINDS:
        missing = [f"--{n}" for n in ("cores", "memory") if not _given(args, n)]
        if missing:
            raise ClusterOptionError(f"--cluster {kind} needs {' and '.join(missing)} (per "
                                     "batch job)")
    f = getattr(args, "scheduler_file", None)
    if f is not None and not Path(f).is_file():
        raise ClusterOptionError("no such scheduler file", path=f, field="--scheduler-file")


def worker_env() -> dict[str, str]:
    """Environment of the workers we start: one thread each for OpenMP, BLAS and reaxgrad's
    kernels, and this process's kernel cache directory (compiled once, loaded by all)."""
    from reaxgrad.core.fusion.runtime_c import cache_dir

    env = dict.fromkeys(THREAD_VARS, "1")
    env["REAXGRAD_CACHE_DIR"] = str(cache_dir())
    return env


def jobqueue_cluster(kind: str, args):
    """The dask-jobqueue cluster (SLURM, PBS, SGE or LSF) of ``args``' --cores, --memory,
    --walltime and --queue, with no job submitted yet (``.scale(jobs=...)`` starts them;
    ``.job_script()`` shows what would be submitted). Each job runs --cores single-threaded
    worker processes sharing --memory."""
    import dask_jobqueue

    classes = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster,
               "sge": dask_jobqueue.SGECluster, "lsf": dask_jobqueue.LSFCluster}
    if kind not in classes:
        raise ClusterOptionError(f"unknown jobqueue cluster {kind!r}; one of "
                                 f"{', '.join(classes)}")
    prologue = [f"export {k}={v}" for k, v in dict.fromkeys(THREAD_VARS, "1").items()]
    if os.environ.get("REAXGRAD_CACHE_DIR"):  # else the nodes' default (~/.cache, shared $HOME)
        prologue.append(f"export REAXGRAD_CACHE_DIR={os.environ['REAXGRAD_CACHE_DIR']}")
    kw = {"cores": args.cores, "processes": args.cores, "memory": args.memory,
          "python": sys.executable, "job_script_prologue": prologue,
          "job_name": "reaxgrad-worker"}
    if getattr(args, "walltime", None):
        kw["walltime"] = args.walltime
    if getattr(args, "queue", None):
        kw["queue"] = args.queue
    return classes[kind](**kw)


def _mpi_client():
    """Under mpirun: rank 0 becomes the scheduler and rank >= 2 workers (they exit when the
    scheduler closes); rank 1 goes on with the command as the client, and shuts the cluster
    down itself when done (``open_client``) rather than through dask-mpi's exit hook, which
    opens a new client while the interpreter is exiting and could leave the other ranks
    running."""
    os.environ.update(dict.fromkeys(THREAD_VARS, "1"))  # set before any kernel is loaded
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ClusterOptionError(f"--cluster mpi needs mpi4py: {exc}") from None
    size = MPI.COMM_WORLD.Get_size()
    if size < 3:
        raise ClusterOptionError(f"--cluster mpi needs at least 3 MPI ranks (scheduler, this "
                                 f"command, one worker); found {size}: run it under "
                                 "mpirun -n 3 or more")
    import dask_mpi
    from distributed import Client

    logging.getLogger("distributed").setLevel(logging.WARNING)  # not every rank's INFO lines
    is_client = dask_mpi.initialize(nthreads=1, dashboard=False, dashboard_address=":0",
                                    exit=False)
    if not is_client:  # a scheduler or worker whose event loop has ended
        sys.exit(0)
    return Client()


def _local_cluster(n: int):
    """A LocalCluster of ``n`` single-threaded worker processes. Thread counts must be in the
    environment before a worker process starts (BLAS reads them when NumPy is imported), so
    they are Dask's "pre-spawn" variables; Dask takes those from this process's environment
    when set there, hence the temporary override (Dask leaves them set here, as it does
    for any LocalCluster)."""
    import dask
    from distributed import LocalCluster

    env = worker_env()
    threads = {k: env[k] for k in THREAD_VARS}
    saved = {k: os.environ.get(k) for k in threads}
    os.environ.update(threads)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": threads}):
            return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, env=env,
                                dashboard_address=None, silence_logs=logging.ERROR,
                                # its HTTP routes on a free port, not on a busy 8787
                                scheduler_kwargs={"dashboard_address": ":0"})
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def open_client(args, default_workers: int | None = None):
    """Yield a ``distributed.Client`` for ``args``' cluster options, or None when none was
    given and ``default_workers`` is None (the caller then runs serially). A cluster started
    here (local, jobqueue) is closed on exit; a joined one is left running."""
    check_cluster_options(args)
    kind = getattr(args, "cluster", None)
    address = getattr(args, "scheduler_address", None)
    sfile = getattr(args, "scheduler_file", None)
    workers = getattr(args, "workers", None)
    if not (kind or address or sfile or workers or default_workers):
        yield None
        return
    from distributed import Client

    cluster = None
    if address or sfile:
        client = Client(address) if address else Client(scheduler_file=sfile)
    elif kind == "mpi":
        client = _mpi_client()
    elif kind in JOBQUEUE_KINDS:
        cluster = jobqueue_cluster(kind, args)
        cluster.scale(jobs=getattr(args, "jobs", None) or 1)
        client = Client(cluster)
    else:
        cluster = _local_cluster(workers or default_workers or cpu_count())
        client = Client(cluster)
    try:
        yield client
    finally:
        if kind == "mpi" and not (address or sfile):
            with suppress(OSError, TimeoutError):
                client.shutdown()  # the scheduler closes, and with it every worker rank
        client.close()
        if cluster is not None:
            cluster.close()


# ----------------------------------------------------------------------------- worker side

_MODELS: OrderedDict = OrderedDict()


def ffield_digest(path) -> str:
    """SHA-256 of a force-field file's bytes: its identity for caches and databases."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def worker_model(forcefield, digest: str, **options):
    """The ReaxFF model of ``forcefield`` (a ``ForceField`` or a path) with ``options``
    (``load_model``'s keywords), built once per worker process and kept, keyed by the force
    field's content ``digest`` and the options (the last few are kept). Its charge solver's
    warm start is cleared, so a result never depends on what the worker ran before."""
    from .inputs import load_model

    key = (digest, tuple(sorted(options.items())))
    model = _MODELS.get(key)
    if model is None:
        model = load_model(forcefield, **options)
        _MODELS[key] = model
        while len(_MODELS) > MODEL_CACHE_SIZE:
            _MODELS.popitem(last=False)
    else:
        _MODELS.move_to_end(key)
    model._guess = None
    return model
