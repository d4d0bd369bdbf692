"""A small runtime for the C kernels that build neighbour and interaction lists: compile a C
source with the system compiler once, cache the shared library on disk, load it with ctypes.

The library's file name is a hash of the source, the flags and the compiler's version string,
so an edited source or another compiler gets its own file. The compiler writes into a temporary
file in the cache directory, which is then renamed onto the final name (atomic on POSIX): any
number of processes may compile the same source at once, and each loads a complete library.

Environment:
  REAXGRAD_NATIVE=0       never compile; callers use their NumPy paths.
  REAXGRAD_CACHE_DIR      cache directory (default $XDG_CACHE_HOME/reaxgrad or ~/.cache/reaxgrad);
                          the libraries go into its ``native`` folder.
  CC                      the compiler (default ``cc``).

``load(name, source)`` returns the ``ctypes.CDLL`` or None when no compiler works (a one-line
warning says why, once per source); callers then fall back to NumPy.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shlex
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

__all__ = ["available", "cache_dir", "compiler", "load"]

FLAGS = ("-O2", "-fPIC", "-shared", "-std=c99", "-ffp-contract=off", "-fno-math-errno")
# -ffp-contract=off: no fused multiply-adds, so distances and products round exactly as NumPy's
# (lists chosen by thresholds are the same whichever path builds them)

_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL | None] = {}
_compiler_version: dict[str, str | None] = {}


def enabled() -> bool:
    return os.environ.get("REAXGRAD_NATIVE", "1").strip().lower() not in ("0", "false", "no",
                                                                            "off")


def compiler() -> list[str]:
    return shlex.split(os.environ.get("CC", "cc")) or ["cc"]


def cache_dir() -> Path:
    root = os.environ.get("REAXGRAD_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "reaxgrad"
    return base / "native"


def _version(cc: list[str]) -> str | None:
    key = " ".join(cc)
    if key not in _compiler_version:
        try:
            out = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30)
            _compiler_version[key] = out.stdout.strip() if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            _compiler_version[key] = None
    return _compiler_version[key]


def _build(name: str, source: str, extra=()) -> ctypes.CDLL:
    cc = compiler()
    flags = (*FLAGS, *extra)
    version = _version(cc)
    if version is None:
        raise OSError(f"no working C compiler ({' '.join(cc)} --version failed)")
    digest = hashlib.sha256("\0".join([source, " ".join(flags), " ".join(cc), version])
                            .encode()).hexdigest()[:24]
    folder = cache_dir()
    target = folder / f"{name}-{digest}.so"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        fd, src_path = tempfile.mkstemp(prefix=f".{name}-", suffix=".c", dir=folder)
        tmp_lib = src_path[:-2] + ".so"
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(source)
            out = subprocess.run([*cc, *flags, "-o", tmp_lib, src_path, "-lm"],
                                 capture_output=True, text=True, timeout=300)
            if out.returncode != 0:
                raise OSError(f"{' '.join(cc)} failed: {out.stderr.strip()[:400]}")
            os.replace(tmp_lib, target)  # atomic: readers see no file or a whole one
        finally:
            for path in (src_path, tmp_lib):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
    return ctypes.CDLL(str(target))


def load(name: str, source: str, openmp: bool = False) -> ctypes.CDLL | None:
    """The compiled library of ``source`` (cached), or None when compiled code is off or
    unavailable. openmp: build with -fopenmp, or without it when the compiler refuses (the
    source must then compile as plain C: its pragmas are ignored)."""
    if not enabled():
        return None
    key = name + "\0" + source + ("\0openmp" if openmp else "")
    with _lock:
        if key not in _loaded:
            try:
                try:
                    _loaded[key] = _build(name, source, ("-fopenmp",) if openmp else ())
                except OSError:
                    if not openmp:
                        raise
                    _loaded[key] = _build(name, source)
            except (OSError, subprocess.SubprocessError) as err:
                warnings.warn(f"reaxgrad: compiled {name} unavailable, using NumPy ({err})",
                              RuntimeWarning, stacklevel=3)
                _loaded[key] = None
        return _loaded[key]


def available() -> bool:
    """True when a C compiler works here (compiles a trivial source)."""
    return load("probe", "int reaxgrad_probe(void) { return 1; }\n") is not None
