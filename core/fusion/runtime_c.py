"""C runtime: compile a translation unit once with the system C compiler, cache the shared
object on disk, load it with ctypes.

The cache key hashes the source, the flags, the compiler's version and the target CPU that
`-march=native` resolves to (a cache directory shared between different machines never hands
one of them code for another's instruction set). Several processes may compile the same source
at once: each writes to its own temporary file and renames it into place (atomic), so a reader
sees either nothing or a complete library.

Environment: REAXGRAD_CC (compiler, default `cc`), REAXGRAD_CACHE_DIR (default
$XDG_CACHE_HOME/reaxgrad/kernels or ~/.cache/reaxgrad/kernels), REAXGRAD_NUM_THREADS.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

BASE_FLAGS = ("-O2", "-ftree-loop-vectorize", "-fvect-cost-model=dynamic",
              "--param=vect-epilogues-nomask=0", "--param=max-combine-insns=2", "-fno-ipa-cp",
              "-fPIC", "-shared", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno",
              "-fno-trapping-math", "-fwrapv", "-w")
# -O2 with loop vectorization (SIMD loops over blocks of rows), without vectorized epilogues
# and with a cheaper instruction combiner: a third of -O3's compile time for the same speed.
# -fno-ipa-cp: GCC 12's interprocedural constant propagation miscompiles the part functions
# that share a kernel's block workspace (wrong values in tests/forcefields test_charges
# jit(vmap(grad)); found by bisecting optimization flags).
# -ffp-contract=off: no fused multiply-adds, so every operation rounds as NumPy's does;
# -fno-math-errno, -fno-trapping-math: math functions have no side effects, so that SIMD loops
# may call them and evaluate both sides of a select (values unchanged); -fwrapv: integer
# overflow wraps as NumPy's does. When glibc's libmvec links, -DRG_MVEC=1|2 declares the SIMD
# variants of the math functions (at most a few ulps from the scalar ones).

stats = {"compiles": 0, "compile_seconds": 0.0, "disk_hits": 0, "memory_hits": 0,
         "last_compile_seconds": 0.0, "last_source_lines": 0}
_loaded: dict[str, ctypes.CDLL] = {}
_lock = threading.Lock()


class CompilerError(RuntimeError):
    pass


def cache_dir() -> Path:
    d = os.environ.get("REAXGRAD_CACHE_DIR")
    if d:
        return Path(d)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reaxgrad" / "kernels"


def compiler() -> str | None:
    """Path of the C compiler, or None."""
    cc = os.environ.get("REAXGRAD_CC", "cc")
    return shutil.which(cc) or (shutil.which("gcc") if cc == "cc" else None)


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _machine_id() -> str:
    """What the compiler's view of this machine depends on: CPU model and flags, libc."""
    parts = [os.uname().machine, os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr")
             and "CS_GNU_LIBC_VERSION" in os.confstr_names else ""]
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags", "Features", "CPU part")):
                    parts.append(line.strip())
                if line.strip() == "":
                    break  # the first processor is enough
    except OSError:
        pass
    return "\n".join(parts)


@functools.cache
def _probe_compiler(cc: str) -> tuple[str, tuple[str, ...]]:
    """(identity string for the cache key, flags this compiler accepts), probed once per
    compiler binary and machine and remembered in the cache directory."""
    st = os.stat(os.path.realpath(cc))
    key = hashlib.sha256("\0".join([
        os.path.realpath(cc), str(st.st_size), str(st.st_mtime_ns), _machine_id(),
        " ".join(BASE_FLAGS), os.environ.get("PATH", "")]).encode()).hexdigest()[:24]
    memo = cache_dir() / f"probe-{key}.json"
    try:
        ident, flags = json.loads(memo.read_text())
        return ident, tuple(flags)
    except (OSError, ValueError):
        pass
    ident, flags = _probe_compiler_now(cc)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=memo.parent, prefix=".probe-")
        with os.fdopen(fd, "w") as f:
            json.dump([ident, list(flags)], f)
        os.replace(tmp, memo)
    except OSError:
        pass
    return ident, flags


def _probe_compiler_now(cc: str) -> tuple[str, tuple[str, ...]]:
    version = _run([cc, "--version"]).stdout.strip().splitlines()
    ident = version[0] if version else cc
    flags = list(BASE_FLAGS)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "t.c"
        src.write_text("#include <omp.h>\nint f(void) { return omp_get_max_threads(); }\n")
        for extra in (["-march=native"], ["-fopenmp"]):
            r = _run([cc, *flags, *extra, str(src), "-o", str(Path(tmp) / "t.so")])
            if r.returncode == 0:
                flags += extra
        level = _mvec_level()
        if level and "-fopenmp" in flags:
            src.write_text("#include <math.h>\n#pragma omp declare simd notinbranch\n"
                           "double exp(double);\nvoid f(const double *restrict x, double "
                           "*restrict y, long n) {\n#pragma omp simd\nfor (long i = 0; i < n; "
                           "i++) y[i] = exp(x[i]);\n}\n")
            r = _run([cc, *flags, str(src), "-o", str(Path(tmp) / "t.so"), "-lmvec", "-lm"])
            if r.returncode == 0:
                flags += [f"-DRG_MVEC={level}", "-lmvec"]
        if "-march=native" in flags:
            # what native means here (target name and every enabled instruction-set option),
            # part of the cache key
            r = _run([cc, "-march=native", "-Q", "--help=target"])
            target = r.stdout
            if r.returncode != 0 or not target.strip():
                target = _run([cc, "-march=native", "-E", "-v", "-"], input="").stderr
            ident += " | native " + hashlib.sha256(target.encode()).hexdigest()[:16]
    return ident, tuple(flags)


def _mvec_level() -> int:
    """Which libmvec function set glibc provides: 2 (2.35+: also expm1, log1p, tan, inverse
    trigonometric and hyperbolic functions), 1 (2.22+: exp, log, sin, cos, pow), 0."""
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
        major, minor = (int(x) for x in version.split(".")[:2])
    except (ValueError, OSError, AttributeError):
        return 0
    if name != "glibc":
        return 0
    return 2 if (major, minor) >= (2, 35) else (1 if (major, minor) >= (2, 22) else 0)


def available() -> bool:
    """Is there a working C compiler?"""
    cc = compiler()
    if cc is None:
        return False
    try:
        _probe_compiler(cc)
    except OSError:
        return False
    return True


def has_openmp() -> bool:
    cc = compiler()
    return cc is not None and "-fopenmp" in _probe_compiler(cc)[1]


def library_key(source: str) -> tuple[str, str, tuple[str, ...]]:
    cc = compiler()
    if cc is None:
        raise CompilerError("no C compiler found (set REAXGRAD_CC)")
    ident, flags = _probe_compiler(cc)
    h = hashlib.sha256()
    for part in (source, " ".join(flags), ident, cc):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32], cc, flags


SPLIT_LINES = 3000  # sources longer than this compile as parallel units, one per core (<= 8)


def _jobs(source: str) -> int:
    return min(os.cpu_count() or 1, 8) if source.count("\n") > SPLIT_LINES else 1


def build(source: str) -> Path:
    """Path of the shared library for `source`, compiling it if no cached copy exists."""
    key, cc, flags = library_key(source)
    d = cache_dir()
    path = d / f"{key}.so"
    if path.exists():
        stats["disk_hits"] += 1
        return path
    d.mkdir(parents=True, exist_ok=True)
    fd, tmp_c = tempfile.mkstemp(suffix=".c", prefix=f".{key}-", dir=d)
    with os.fdopen(fd, "w") as f:
        f.write(source)
    tmp_so = tmp_c[:-2] + ".so"
    t0 = time.perf_counter()
    leftovers = [tmp_so]
    try:
        libs = [f for f in flags if f.startswith("-l")]
        opts = [f for f in flags if not f.startswith("-l") and f != "-shared"]
        from .render_c import split_units

        units = split_units(source, _jobs(source))
        procs, objs = [], []
        for i, unit in enumerate(units):
            src_i = tmp_c if len(units) == 1 else f"{tmp_c[:-2]}-{i}.c"
            if src_i != tmp_c:
                with open(src_i, "w") as f:
                    f.write(unit)
                leftovers.append(src_i)
            obj = f"{src_i[:-2]}.o"
            leftovers.append(obj)
            objs.append(obj)
            unit_flag = ["-DRG_UNIT"] if i > 0 else []
            procs.append(subprocess.Popen([cc, *opts, *unit_flag, "-c", src_i, "-o", obj],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
        for proc in procs:
            _out, errs = proc.communicate()
            if proc.returncode != 0:
                raise CompilerError(f"{cc} failed on the generated kernels ({tmp_c}):\n"
                                    f"{errs[-4000:]}")
        r = _run([cc, "-shared", *[f for f in opts if f in ("-fopenmp", "-fPIC")], *objs,
                  "-o", tmp_so, *libs, "-lm"])
        if r.returncode != 0:
            raise CompilerError(f"linking the generated kernels failed:\n{r.stderr[-4000:]}")
        os.replace(tmp_so, path)  # atomic: concurrent builders each install a complete file
        os.replace(tmp_c, d / f"{key}.c")
    finally:
        for leftover in leftovers:
            if os.path.exists(leftover):
                os.unlink(leftover)
    dt = time.perf_counter() - t0
    stats["compiles"] += 1
    stats["compile_seconds"] += dt
    stats["last_compile_seconds"] = dt
    stats["last_source_lines"] = source.count("\n")
    return path


def load(source: str) -> ctypes.CDLL:
    """The loaded library for `source` (compiled and cached as needed)."""
    key = library_key(source)[0]
    # OpenMP threads that spin long after a parallel region starve BLAS threads (NumPy's
    # solve, matmul) between kernels: spin briefly, then sleep (unless the user chose)
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    with _lock:
        lib = _loaded.get(key)
        if lib is not None:
            stats["memory_hits"] += 1
            return lib
        lib = ctypes.CDLL(str(build(source)))
        lib.rg_set_parallel.argtypes = [ctypes.c_int]
        lib.rg_set_threads.argtypes = [ctypes.c_int]
        lib.rg_probe.argtypes = [ctypes.py_object, ctypes.c_int64]
        lib.rg_probe.restype = ctypes.c_void_p
        n = os.environ.get("REAXGRAD_NUM_THREADS")
        if n:
            lib.rg_set_threads(int(n))
        if _in_forked_child:
            lib.rg_set_parallel(0)
        _loaded[key] = lib
        return lib


def set_num_threads(n: int) -> None:
    """Threads used by every loaded kernel library (0: the OpenMP default)."""
    os.environ["REAXGRAD_NUM_THREADS"] = str(int(n))
    for lib in _loaded.values():
        lib.rg_set_threads(int(n))


_in_forked_child = False


def _after_fork_in_child():
    # OpenMP thread pools do not survive fork: children run kernels serially (also those of
    # libraries they load later)
    global _in_forked_child
    _in_forked_child = True
    for lib in _loaded.values():
        lib.rg_set_parallel(0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.lru_cache(maxsize=1)
def list_entry_ok() -> bool:
    """Can entry points read data pointers from a Python list of arrays (rg_probe agrees with
    NumPy's own pointers)? Checked once per process on the first loaded library."""
    if not _loaded:
        return False
    lib = next(iter(_loaded.values()))
    arrays = [np.arange(3.0), np.zeros((2, 2), np.int64)[1:], np.ones(())]
    try:
        return all(lib.rg_probe(arrays, i) == a.ctypes.data for i, a in enumerate(arrays))
    except Exception:  # noqa: BLE001 - any failure: use the pointer entry points
        return False
