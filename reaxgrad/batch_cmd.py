"""`reaxgrad batch TASK INPUT... --ffield F --db OUT.db`: many single points, relaxations or
short MD runs on Dask, results in an ASE database.

TASK is ``energy``, ``minimize`` or ``md``, with the options of `reaxgrad energy`, `reaxgrad
minimize` and `reaxgrad md` (the same argument definitions and per-structure functions).
Every structure of the inputs (all frames of each file, in order; BGF geo files, any format ASE
reads, ASE databases) is keyed by ``source_index``, its 0-based position across the inputs.
Structures go to the workers in chunks (``--chunk``, see :class:`ChunkSizer`), several per
Dask task, so the driver's cost per task (Dask's scheduler and client) is shared by the
chunk; each structure is still computed, timed and recorded on its own (one failing does not
fail its chunk-mates). Workers compute and return results; only this driver writes the
database, one row per structure, a chunk's rows in one transaction as its result arrives, so
the database is always a set of complete rows: rerunning the same command skips the
``source_index`` values it already holds (done or failed) and re-chunks the missing ones, and
a driver killed at any moment resumes with nothing lost or duplicated.
The database's metadata names the task, the force field and the inputs (by content) and the
options; another command is refused.

Rows (ASE units, as `reaxgrad minimize`'s output): the final structure (the input for
``energy``) with energy (eV), forces (eV/Å), charges (e) and stress as calculator results;
keys ``source_index status task source source_frame wall_time worker energy_kcal_mol``
(``worker``: the host:pid that computed it), ``error`` for a failed structure, ``converged
opt_steps evaluations`` for minimize, ``md_steps md_time temperature`` for md; data
``energy_terms`` (kcal/mol) and, for md, ``thermo``.

Exit status: 0 every structure done; 1 some structure failed (recorded in the database);
2 bad input or options (nothing run); 130 interrupted (rows written so far are kept).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .inputs import InputError, error_message, run_command

TASKS = ("energy", "minimize", "md")
MODEL_OPTIONS = {"energy": ("charge_method", "convention"),
                 "minimize": ("charge_method", "convention"),
                 "md": ("charge_method", "convention", "solver")}
EXIT_FAILED = 1
RETRIES = 3
CHUNK_MAX = 64  # structures per task, at most (automatic sizing)
CHUNKS_PER_WORKER = 8  # automatic sizing: the remaining structures in >= 8 chunks per worker
CHUNK_SECONDS = 2.0  # automatic sizing: a chunk's expected compute time, at most


class BatchError(InputError):
    """A batch that cannot run as asked (the database, the inputs, the cluster)."""


@dataclass(frozen=True)
class Job:
    """What a worker needs besides the structure and the force field."""

    task: str
    options: dict  # the task's options (argparse names -> values)
    digest: str  # the force field's sha256
    source: str  # input file
    frame: int  # index of the structure in it


# ----------------------------------------------------------------------------- worker side


def run_structure(task: str, options: dict, model, atoms, *, source) -> dict:
    """One structure's results: ``{"atoms": final structure with results in eV units,
    "keys": database keys, "data": arrays and term energies}``. Also the serial reference
    (scripts/bench/batch.py)."""
    ns = argparse.Namespace(**options)
    if task == "energy":
        return _energy(ns, model, atoms, source)
    if task == "minimize":
        return _minimize(ns, model, atoms, source)
    if task == "md":
        return _md(ns, model, atoms, source)
    raise ValueError(f"unknown batch task {task!r}; one of {', '.join(TASKS)}")


def _energy(ns, model, atoms, source):
    from .energy_cmd import single_point
    from .minimize_cmd import _kcal_mol, _snapshot

    res = single_point(model, atoms, charge=ns.charge, source=source)
    _finite(res.energy, source)
    final = _snapshot(atoms, atoms.positions, atoms.cell.array, res, _kcal_mol())
    return {"atoms": final, "keys": {"energy_kcal_mol": float(res.energy)},
            "data": {"energy_terms": {k: float(v) for k, v in res.terms.items()}}}


def _minimize(ns, model, atoms, source):
    from .minimize_cmd import relax_atoms

    final, result, res = relax_atoms(atoms, model, ns, source=source)
    final.info.clear()
    return {"atoms": final,
            "keys": {"energy_kcal_mol": float(res.energy), "converged": bool(result.converged),
                     "opt_steps": int(result.steps), "evaluations": int(result.evaluations)},
            "data": {"energy_terms": {k: float(v) for k, v in res.terms.items()}}}


def _md(ns, model, atoms, source):
    from reaxgrad.md import dynamics as d
    from reaxgrad.md.simulate import Simulation

    from .md_cmd import dynamics, initial_state, state_atoms

    forces, integrator = dynamics(ns, atoms, model, source=source)
    sim = Simulation(integrator.step, initial_state(ns, atoms, integrator))
    thermo = []

    def record(state):
        ke = float(d.kinetic_energy(state.velocities, state.masses))
        thermo.append((state.step, state.time, float(d.temperature(state.velocities,
                                                                    state.masses)),
                       float(state.forces.energy), ke))

    sim.attach(record, ns.interval or max(ns.steps, 1))
    state = sim.run(ns.steps)
    if thermo[-1][0] != state.step:
        record(state)
    energy = float(state.forces.energy)
    _finite(energy, source, f" at MD step {state.step}")
    final = state_atoms(atoms, state)
    final.info.clear()
    return {"atoms": final,
            "keys": {"energy_kcal_mol": energy, "md_steps": int(state.step),
                     "md_time": float(state.time), "temperature": thermo[-1][2]},
            "data": {"thermo": np.array(thermo, dtype=float),
                     "thermo_columns": "step time[fs] T[K] PE[kcal/mol] KE[kcal/mol]"}}


def _finite(energy, source, where=""):
    if not np.isfinite(energy):
        raise ValueError(f"{source}: the energy is {energy}{where}")


def run_task(job: Job, forcefield, atoms) -> dict:
    """A Dask task: one structure with the worker's cached model. Bad input or a failed
    computation is returned as ``{"status": "failed", "error": ...}``, not raised, so it is
    recorded once rather than retried."""
    from .cluster import worker_model
    from .inputs import check_elements, check_structure

    started = time.perf_counter()
    try:
        check_structure(atoms, job.source, index=job.frame)
        options = {k: job.options[k] for k in MODEL_OPTIONS[job.task]}
        model = worker_model(forcefield, job.digest, **options)
        check_elements(model, atoms, job.source)
        out = run_structure(job.task, job.options, model, atoms, source=job.source)
        out["status"] = "done"
    except (ValueError, OSError, ArithmeticError) as exc:
        out = {"status": "failed", "error": error_message(exc)}
    except Exception as exc:  # noqa: BLE001 - a structure that breaks the code is recorded
        out = {"status": "failed", "error": f"{type(exc).__name__}: {error_message(exc)}"}
    out["wall_time"] = time.perf_counter() - started
    out["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return out


def run_chunk(jobs: list[Job], forcefield, atoms_list) -> list[dict]:
    """A Dask task: several structures, each with :func:`run_task` (its own checks, error and
    wall time), in order. One structure's failure is its own result; only what kills the
    worker process or escapes :func:`run_task` fails the chunk (the driver then retries its
    structures one per task)."""
    return [run_task(job, forcefield, atoms) for job, atoms in zip(jobs, atoms_list)]


def _forcefield(ff):
    """The force field as a task result: held by the workers, recomputed if they are lost."""
    return ff


# ----------------------------------------------------------------------------- driver side


def read_inputs(paths) -> tuple[list[tuple[str, int, object]], list[int]]:
    """(source, frame, atoms) of every structure of ``paths`` in order (calculators and
    ``info`` other than the total charge dropped: input results are not ours), and the
    number of structures of each path."""
    from .inputs import read_structures

    out, counts = [], []
    for path in paths:
        frames = read_structures(path)
        counts.append(len(frames))
        for frame, atoms in enumerate(frames):
            a = atoms.copy()
            a.info = {k: v for k, v in atoms.info.items() if k == "charge"}
            out.append((str(path), frame, a))
    return out, counts


def _sha256(path) -> str:
    p = Path(path)
    if not p.is_file():
        return str(path)  # a database URL: its name
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def batch_identity(task, options, digest, inputs, counts) -> dict:
    """What makes two runs the same batch (JSON-normal, as stored in the metadata): the task,
    its options, the force field's and the inputs' contents, and their structure counts."""
    ident = {"command": f"reaxgrad batch {task}", "ffield_sha256": digest,
             "options": options,
             "inputs": [{"sha256": _sha256(p), "structures": n} for p, n in zip(inputs, counts)]}
    return json.loads(json.dumps(ident))


def connect_db(name):
    """An ASE database: a URL passes through; ``.json`` is ASE's JSON backend; any other file
    name is SQLite."""
    from ase.db import connect

    text = str(name)
    try:
        if "://" in text or text.endswith(".json"):
            return connect(text)
        if Path(text).is_dir():
            raise BatchError("is a directory", path=text, field="--db")
        if not Path(text).exists():
            _create_sqlite(text)
        # no ASE lock file per write (0.7 ms a row): only this driver writes, SQLite locks
        return connect(text, type="db", use_lock_file=False)
    except BatchError:
        raise
    except Exception as exc:  # noqa: BLE001 - ASE and the drivers raise many types
        raise BatchError(f"cannot open it as an ASE database: {error_message(exc)}",
                         path=text, field="--db") from None


def _create_sqlite(path: str) -> None:
    """A new, initialized ASE SQLite database at ``path``, made beside it and renamed into
    place: ASE creates its tables in several commits, so a reader (or a rerun after a kill)
    could otherwise find a file with tables but no version row, which ASE cannot open."""
    from ase.db import connect

    tmp = Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp")
    try:
        db = connect(str(tmp), type="db", use_lock_file=False)
        db.metadata = {}  # creates the tables
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def open_batch_db(name, identity: dict, paths):
    """(database, {source_index: status} of the rows it holds). A new or empty database gets
    ``identity`` as metadata; one made by another command, force field, options or inputs is
    refused with a :class:`BatchError` naming the differences."""
    db = connect_db(name)
    try:
        meta = db.metadata
        count = db.count()
    except Exception as exc:  # noqa: BLE001
        raise BatchError(f"cannot read it as an ASE database: {error_message(exc)}",
                         path=name, field="--db") from None
    theirs = meta.get("reaxgrad_batch")
    if theirs is None:
        if count:
            raise BatchError(f"holds {count} rows not written by reaxgrad batch; use another "
                             "--db", path=name, field="--db")
        db.metadata = {**meta, "reaxgrad_batch": identity,
                       "reaxgrad_batch_inputs": [str(p) for p in paths]}
        return db, {}
    if theirs != identity:
        raise BatchError(f"was made by a different batch ({_differences(theirs, identity)}); "
                         "use another --db, or delete it to start again", path=name,
                         field="--db")
    recorded = {}
    for row in db.select("source_index", include_data=False):
        recorded[int(row.source_index)] = row.get("status")
    return db, recorded


def _differences(then: dict, now: dict) -> str:
    out = []
    for key in ("command", "ffield_sha256"):
        if then.get(key) != now.get(key):
            out.append(f"{key} {then.get(key)!r} then, {now.get(key)!r} now")
    a, b = then.get("options", {}), now.get("options", {})
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            out.append(f"--{key.replace('_', '-')} {a.get(key)!r} then, {b.get(key)!r} now")
    if then.get("inputs") != now.get("inputs"):
        out.append("the inputs' contents differ")
    return "; ".join(out) or "different metadata"


NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "lustre", "gpfs",
                       "beegfs", "ceph", "cephfs", "glusterfs", "panfs", "afs", "9p")


def _local_filesystem(path) -> bool:
    """Whether ``path``'s folder is on a local filesystem (unknown counts as local)."""
    folder = Path(path).resolve().parent
    try:
        with open("/proc/mounts") as fh:
            mounts = [line.split()[1:3] for line in fh if len(line.split()) > 2]
    except OSError:
        return True
    best, kind = "", ""
    for point, fstype in mounts:
        point = point.replace("\\040", " ")
        if (str(folder) == point or str(folder).startswith(point.rstrip("/") + "/")) \
                and len(point) > len(best):
            best, kind = point, fstype
    return not (kind in NETWORK_FILESYSTEMS or kind.startswith("fuse."))


@contextmanager
def row_transactions(db, name):
    """Yield ``commit()``, called after each chunk's rows: one connection for the run, one
    transaction per chunk (all its rows or none; ASE's own commit every 5,000 writes is kept
    from landing inside a chunk). A SQLite file on a local disk runs in WAL mode with
    synchronous=NORMAL for it: a commit then costs no fsync (2 ms instead of 25 ms here), and
    a killed driver still keeps every committed chunk (an OS crash may lose the last ones,
    never corrupt the file); the file is put back in the ordinary rollback-journal mode at the
    end. On network filesystems (no WAL there) commits keep SQLite's defaults. PostgreSQL
    commits per chunk too; ASE's JSON backend rewrites its file at every row (small batches
    only)."""
    from ase.db.sqlite import SQLite3Database

    if not isinstance(db, SQLite3Database):
        yield lambda: None
        return
    import sqlite3

    with db:
        con = db.connection
        wal = type(db) is SQLite3Database and _local_filesystem(name)
        if wal:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
        def commit():
            con.commit()
            db.change_count = 0  # ASE commits by itself every 5,000 writes: not mid-chunk

        try:
            yield commit
        finally:
            if wal:
                try:
                    con.commit()
                    con.execute("PRAGMA journal_mode=DELETE")
                except sqlite3.Error:  # a reader holds it: WAL mode stays, which is fine
                    pass


def write_row(db, task, source_index, source, frame, atoms, out) -> None:
    """One structure's row (committed by the caller)."""
    keys = {"source_index": int(source_index), "status": out["status"], "task": task,
            "source": source, "source_frame": int(frame),
            "wall_time": float(out.get("wall_time", 0.0)), "worker": out.get("worker", "")}
    data = {}
    if out["status"] == "done":
        atoms = out["atoms"]
        keys.update(out["keys"])
        data = out["data"]
    else:
        keys["error"] = out["error"]
    db.write(atoms, key_value_pairs=keys, data=data)


def _check_options(task, args):
    if task == "minimize":
        from .minimize_cmd import check_options

        check_options(args)
    elif task == "md":
        from .md_cmd import check_options

        check_options(args)
        if args.interval is not None and args.interval < 1:
            raise BatchError(f"--interval must be >= 1, got {args.interval}")


def batch(args) -> int:
    from .cluster import check_cluster_options, cpu_count, ffield_digest, open_client
    from .inputs import load_model

    task = args.task
    started = time.perf_counter()
    options = {k: getattr(args, k) for k in args.task_options}
    _check_options(task, args)
    check_cluster_options(args)
    model = load_model(args.ffield, **{k: options[k] for k in MODEL_OPTIONS[task]})
    digest = ffield_digest(args.ffield)
    structures, counts = read_inputs(args.inputs)
    identity = batch_identity(task, options, digest, args.inputs, counts)
    db, recorded = open_batch_db(args.db, identity, args.inputs)
    todo = [i for i in range(len(structures)) if i not in recorded]
    tally = {"done": 0, "failed": 0}
    shown = []
    workers = 0
    if todo:
        with open_client(args, default_workers=cpu_count()) as client, \
                row_transactions(db, args.db) as commit:
            def record(rows):
                for row in rows:
                    write_row(db, task, *row)
                commit()  # the chunk's rows: all or none

            tag = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
            _run(client, args, task, options, digest, model.ff, structures, todo, record, tag,
                 tally, shown)
            workers = len(client.scheduler_info().get("workers", {}))
    for line in shown:
        print(f"reaxgrad batch: {line}", file=sys.stderr)
    statuses = list(recorded.values())
    total_failed = statuses.count("failed") + tally["failed"]
    total_done = len(structures) - total_failed
    where = f"on {workers} workers" if todo else "nothing to run"
    print(f"reaxgrad batch {task}: {len(structures)} structures in {args.db}: {total_done} done, "
          f"{total_failed} failed; this run: {tally['done']} done, {tally['failed']} failed, "
          f"{len(recorded)} skipped (already recorded); {time.perf_counter() - started:.1f} s "
          f"{where}")
    return EXIT_FAILED if total_failed else 0


class ChunkSizer:
    """How many structures the next Dask task gets.

    ``--chunk N``: N (the last chunk takes what is left). Automatic (the default): each task
    costs the driver ~5 ms of CPU whatever it holds (Dask's scheduler and client), so short
    structures (single points of small molecules: ~1 ms) need many per task, while long ones
    need few, so that a killed worker costs little recomputation and the last chunks do not
    leave workers idle. The automatic size is the smallest of

    * the remaining structures / (workers x 8), so that every worker gets about 8 chunks of
      what is left and the tail shrinks with it (load balance);
    * 64 (``CHUNK_MAX``);
    * 2 s (``CHUNK_SECONDS``) / the median wall time of the last structures computed, so that
      a chunk runs for about 2 s at most (overhead of a few ms per 2 s, and a killed worker
      loses about 2 s of work);

    and at least 1. Until the first result has come back, nothing is known about a
    structure's time: the first chunks hold one structure each (a structure could take
    hours).
    """

    def __init__(self, fixed: int | None, workers: int):
        self.fixed = fixed
        self.workers = max(1, workers)
        self.times: list[float] = []

    def observe(self, wall_times) -> None:
        self.times.extend(wall_times)
        del self.times[:-64]

    def size(self, remaining: int) -> int:
        if self.fixed is not None:
            return max(1, min(self.fixed, remaining))
        if not self.times:
            return 1
        n = min(CHUNK_MAX, -(-remaining // (self.workers * CHUNKS_PER_WORKER)))
        typical = float(np.median(self.times))
        if typical > 0:
            n = min(n, int(CHUNK_SECONDS / typical))
        return max(1, min(n, remaining))


def _workers(client, args) -> int:
    """Worker threads of the cluster now, else (jobqueue workers still queued) those asked."""
    now = sum(client.nthreads().values())
    if now:
        return now
    asked = getattr(args, "workers", None)
    if asked is None and getattr(args, "cores", None):
        asked = args.cores * (getattr(args, "jobs", None) or 1)
    return asked or 1


def _run(client, args, task, options, digest, ff, structures, todo, record, tag, tally,
         shown):
    """Submit ``todo`` in chunks (a window of chunks at a time, so the scheduler never holds
    the whole batch) and, as each chunk's result arrives, ``record(rows)`` with its rows
    ``(source_index, source, frame, atoms, result)``. A chunk whose task failed as a whole (its
    worker killed past the retries, or an error outside :func:`run_task`) is split: each of
    its structures is resubmitted as a task of its own, so only the culprit is recorded as
    failed."""
    from distributed import as_completed
    from tqdm import tqdm

    ff_future = client.submit(_forcefield, ff, key=f"reaxgrad-ffield-{digest[:16]}")
    workers = _workers(client, args)
    sizer = ChunkSizer(getattr(args, "chunk", None), workers)
    pending = list(reversed(todo))  # popped from the end: in source_index order
    chunks = {}
    window = max(8, 4 * workers)  # chunks in flight
    checked = time.monotonic()

    def submit_chunk(indexes):
        jobs, atoms_list = [], []
        for i in indexes:
            source, frame, atoms = structures[i]
            jobs.append(Job(task, options, digest, source, frame))
            atoms_list.append(atoms)
        name = hashlib.sha256(",".join(map(str, indexes)).encode()).hexdigest()[:8]
        key = f"reaxgrad-{task}-{tag}-{indexes[0]}+{len(indexes)}-{name}"
        fut = client.submit(run_chunk, jobs, ff_future, atoms_list, key=key, retries=RETRIES)
        chunks[fut.key] = indexes
        done_iter.add(fut)

    def submit(n):
        nonlocal checked
        if getattr(args, "chunk", None) is None and time.monotonic() - checked > 5:
            sizer.workers = max(1, _workers(client, args))  # jobqueue workers come and go
            checked = time.monotonic()
        for _ in range(n):
            if not pending:
                return
            size = sizer.size(len(pending))
            submit_chunk([pending.pop() for _ in range(size)])

    done_iter = as_completed(with_results=True, raise_errors=False)  # results come batched
    submit(window)
    with tqdm(total=len(todo), desc=f"batch {task}", unit="structure", file=sys.stderr,
              disable=args.no_progress, mininterval=0.5) as bar:
        for fut, result in done_iter:
            indexes = chunks.pop(fut.key)
            if fut.status == "finished":
                outs = result
            elif fut.status == "error":
                if len(indexes) > 1:
                    fut.release()
                    for i in indexes:
                        submit_chunk([i])
                    continue
                if isinstance(result, tuple) and len(result) == 3:  # (type, exception, tb)
                    result = result[1]
                outs = [{"status": "failed", "error": f"{type(result).__name__}: "
                         f"{error_message(result)}"}]
            else:
                raise BatchError(f"structures {indexes[0]}..{indexes[-1]} were {fut.status} "
                                 "by the Dask scheduler (lost connection?); rerun the same "
                                 "command to resume")
            fut.release()
            record([(i, *structures[i], out) for i, out in zip(indexes, outs)])
            sizer.observe([out["wall_time"] for out in outs if "wall_time" in out])
            for i, out in zip(indexes, outs):
                tally[out["status"]] += 1
                if out["status"] == "failed" and len(shown) < 5:
                    source, frame, _ = structures[i]
                    shown.append(f"structure {i} ({source} frame {frame}) failed: "
                                 f"{out['error']}")
            bar.update(len(indexes))
            submit(1)


def run_batch(args) -> int:
    return run_command("batch", batch, args)


def add_parser(sub):
    from . import energy_cmd, md_cmd, minimize_cmd
    from .cluster import _positive_int, add_cluster_options

    p = sub.add_parser("batch", help="energy, minimize or md over many structures on Dask, "
                       "results in an ASE database (resumable)",
                       description="Run a single-structure command over every structure of "
                       "the inputs on Dask workers; one row per structure in an ASE database, "
                       "keyed by source_index. Rerunning the same command resumes.")
    tasks = p.add_subparsers(dest="task", required=True, metavar="TASK")
    adders = {"energy": energy_cmd.add_options, "minimize": minimize_cmd.add_options,
              "md": md_cmd.add_options}
    helps = {"energy": "single points (the options of reaxgrad energy)",
             "minimize": "relaxations (the options of reaxgrad minimize)",
             "md": "short MD runs (the options of reaxgrad md); the final frame is stored"}
    for task in TASKS:
        t = tasks.add_parser(task, help=helps[task], description=helps[task])
        t.add_argument("inputs", nargs="+", metavar="INPUT",
                       help="structure files (all frames of each: extxyz, xyz, BGF geo, ...) "
                       "or ASE databases")
        t.add_argument("--ffield", required=True, help="ReaxFF force-field file")
        t.add_argument("--db", required=True, help="results database (ASE; SQLite file, "
                       ".json, or a postgresql:// URL); rerunning resumes it")
        before = {a.dest for a in t._actions}
        adders[task](t)
        if task == "md":
            t.add_argument("--interval", type=int, default=None, help="record step, time, "
                           "temperature and energies every K steps in the row's data "
                           "(default: the first and last step)")
        dests = [a.dest for a in t._actions if a.dest not in before]
        t.add_argument("--no-progress", action="store_true", help="no progress bar")
        t.add_argument("--chunk", type=_positive_int, default=None, metavar="N",
                       help="structures per Dask task (one database transaction each); "
                       "default automatic: the remaining structures / (workers x 8), at most "
                       f"{CHUNK_MAX} and at most ~{CHUNK_SECONDS:g} s of measured work per "
                       "chunk, 1 until the first result is back. Results do not depend on it")
        add_cluster_options(t, default_help="a LocalCluster of one worker process per core")
        t.set_defaults(func=run_batch, task_options=dests)
