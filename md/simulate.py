"""The MD run loop: a state advanced by an integrator's ``step``, observers called every so
many steps (ASE's ``attach(fn, interval)``), and atomic checkpoints from which a killed run
resumes to the same numbers.

A checkpoint (one pickle, written to a temporary file and renamed) holds the state (arrays at
full precision, the Langevin generator included), whatever the force provider needs to rebuild
the same interaction lists, and the byte size of every output file at that step. Resuming
truncates the outputs back to those sizes and replays from the checkpointed step, so the
outputs end up byte for byte those of an uninterrupted run.
"""
from __future__ import annotations

import os
import pickle
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .dynamics import MDState

__all__ = ["Simulation", "Checkpoint", "save_checkpoint", "load_checkpoint", "file_sizes",
           "truncate_files"]

CHECKPOINT_VERSION = 1


@dataclass
class Checkpoint:
    state: MDState
    lists: object  # the force provider's list state (md.forces.ListState)
    solver_guess: dict | None  # warm start of the iterative charge solver
    outputs: dict  # path -> byte size at this step
    settings: dict  # what must match for a resume (ensemble, time step, ...)
    version: int = CHECKPOINT_VERSION


def save_checkpoint(path, checkpoint: Checkpoint) -> None:
    """Pickle ``checkpoint`` to a temporary file beside ``path``, fsync it, rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(checkpoint, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path) -> Checkpoint:
    try:
        with open(path, "rb") as f:
            checkpoint = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise ValueError(f"{path}: not a readable reaxgrad MD checkpoint ({exc})") from None
    if not isinstance(checkpoint, Checkpoint) or checkpoint.version != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: not a reaxgrad MD checkpoint of version "
                         f"{CHECKPOINT_VERSION}")
    return checkpoint


def file_sizes(paths) -> dict:
    return {str(p): (os.path.getsize(p) if os.path.exists(p) else 0) for p in paths}


def truncate_files(sizes: dict) -> None:
    """Cut every file back to its recorded size (outputs written after the checkpoint)."""
    for path, size in sizes.items():
        if not os.path.exists(path):
            if size:
                raise ValueError(f"{path}: output of the checkpointed run is missing; "
                                 "cannot resume (delete the checkpoint to start again)")
            Path(path).touch()
            continue
        if os.path.getsize(path) < size:
            raise ValueError(f"{path}: shorter than when the checkpoint was written; cannot "
                             "resume (delete the checkpoint to start again)")
        os.truncate(path, size)


@dataclass
class Simulation:
    """Advance ``state`` with ``step``; observers ``fn(state)`` run at every multiple of
    their interval (step 0 included when the run starts there)."""

    step: Callable[[MDState], MDState]
    state: MDState
    observers: list = field(default_factory=list)

    def attach(self, fn: Callable[[MDState], None], interval: int = 1) -> None:
        if interval < 1:
            raise ValueError(f"observer interval must be >= 1, got {interval}")
        self.observers.append((fn, int(interval)))

    def _observe(self):
        for fn, interval in self.observers:
            if self.state.step % interval == 0:
                fn(self.state)

    def run(self, until_step: int, *, observe_start=True, progress=None) -> MDState:
        """Advance to ``until_step`` (absolute step number). ``progress``: a callable given the
        number of steps taken since its last call (e.g. a tqdm bar's ``update``)."""
        if observe_start:
            self._observe()
        last = time.monotonic()
        pending = 0
        while self.state.step < until_step:
            self.state = self.step(self.state)
            self._observe()
            pending += 1
            if progress is not None and (time.monotonic() - last > 0.2
                                         or self.state.step == until_step):
                progress(pending)
                pending, last = 0, time.monotonic()
        return self.state
