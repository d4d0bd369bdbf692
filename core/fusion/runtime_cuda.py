"""CUDA runtime: compile a program's CUDA module with `cupy.RawModule` (NVRTC; CuPy caches
compiled modules on disk) and launch its kernels on CuPy arrays.

The same launcher runs in an emulation mode: the module built for the host with the C++
compiler (`-DRG_HOST_EMULATION`) and called through ctypes on NumPy arrays. It exercises the
generated CUDA source and this file's launch logic where no GPU exists (the tests use it).
`nvcc_check` compiles a source with nvcc for a given architecture (the tests' compile check).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .kernel import CHUNK, Node
from .render_cuda import CudaProgram

THREADS = 256
MAX_BLOCKS = 4096
SCRATCH_BYTES = 1 << 28  # bound on a kernel's per-thread scratch (fewer blocks when larger)


def nvcc() -> str | None:
    return shutil.which("nvcc") or (
        "/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None)


def nvcc_check(source: str, arch: str = "sm_90") -> None:
    """Compile `source` with nvcc for `arch` (cubin); raise RuntimeError with its messages."""
    exe = nvcc()
    if exe is None:
        raise RuntimeError("nvcc not found")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "k.cu"
        src.write_text(source)
        r = subprocess.run([exe, f"-arch={arch}", "--cubin", "-std=c++14", str(src), "-o",
                            str(Path(tmp) / "k.cubin")], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"nvcc -arch={arch} failed:\n{r.stderr[-4000:]}")


def _value(node: Node, sizes) -> int:
    """The value of a size Node (constant, runtime size, or a product of them)."""
    if node.op == "imul":
        return _value(node.args[0], sizes) * _value(node.args[1], sizes)
    return int(node.arg) if node.op == "const" else int(sizes[node.arg])


def _blocks(work: int, cap: int) -> int:
    return max(1, min(MAX_BLOCKS, cap, -(-int(work) // THREADS)))


class _CupyBackend:
    def __init__(self, source: str):
        import cupy

        self.xp = cupy
        self.module = cupy.RawModule(code=source, options=("-std=c++14",))
        self.fns: dict = {}

    def fn(self, name):
        f = self.fns.get(name)
        if f is None:
            f = self.fns[name] = self.module.get_function(name)
        return f

    def ptr(self, a):
        return a.data.ptr

    def table(self, ptrs):
        return self.xp.asarray(np.asarray(ptrs, dtype=np.uint64))

    def nthreads(self, work, cap=MAX_BLOCKS) -> int:
        return _blocks(work, cap) * THREADS

    def launch(self, name, work, *args, cap=MAX_BLOCKS):
        blocks = _blocks(work, cap)
        conv = [np.int64(a) if isinstance(a, (int, np.integer)) else a for a in args]
        self.fn(name)((blocks,), (THREADS,), tuple(conv))


class _HostBackend:
    """The CUDA source built for the host: one thread runs every row."""

    def __init__(self, source: str):
        from . import runtime_c

        cc = shutil.which(os.environ.get("REAXGRAD_CXX", "c++")) or shutil.which("g++")
        if cc is None:
            raise RuntimeError("no C++ compiler for CUDA host emulation")
        key = hashlib.sha256(source.encode()).hexdigest()[:32]
        d = runtime_c.cache_dir()
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"cuda-emu-{key}.so"
        if not path.exists():
            fd, tmp_src = tempfile.mkstemp(suffix=".cpp", dir=d, prefix=".emu-")
            with os.fdopen(fd, "w") as f:
                f.write(source)
            tmp_so = tmp_src[:-4] + ".so"
            r = subprocess.run([cc, "-O1", "-fPIC", "-shared", "-DRG_HOST_EMULATION", "-w",
                                tmp_src, "-o", tmp_so], capture_output=True, text=True)
            os.unlink(tmp_src)
            if r.returncode != 0:
                raise RuntimeError(f"host build of the CUDA source failed:\n{r.stderr[-4000:]}")
            os.replace(tmp_so, path)
        self.lib = ctypes.CDLL(str(path))
        self.xp = np

    def ptr(self, a):
        return a.ctypes.data

    def table(self, ptrs):
        return np.asarray(ptrs, dtype=np.uint64)

    def nthreads(self, work, cap=MAX_BLOCKS) -> int:
        return 1  # RG_NTHREADS on the host

    def launch(self, name, work, *args, cap=MAX_BLOCKS):
        conv = []
        for a in args:
            if isinstance(a, np.ndarray):
                conv.append(ctypes.c_void_p(a.ctypes.data))
            elif a is None:
                conv.append(ctypes.c_void_p(0))
            elif isinstance(a, (int, np.integer)):
                conv.append(ctypes.c_int64(int(a)))
            else:
                raise TypeError(type(a).__name__)
        getattr(self.lib, name)(*conv)


class CudaRunner:
    """Launches the kernels of one program (see render_cuda)."""

    def __init__(self, program: CudaProgram, sizes, emulate: bool = False):
        self.program = program
        self.sizes = [int(s) for s in sizes]
        self.backend = _HostBackend(program.source) if emulate else _CupyBackend(program.source)
        self.xp = self.backend.xp

    def run_kernels(self, kernels, S: list, err):
        """Run the named kernels (in order) on the buffer list S (n_slots arrays)."""
        xp, be, sizes = self.xp, self.backend, self.sizes
        extra = list(S) + [None] * len(self.program.extra)
        n_slots = self.program.n_slots
        by_name = {ck.name: ck for ck in self.program.kernels}
        Z = S[0]
        for kname in kernels:
            ck = by_name[kname]
            rows = _value(ck.rows, sizes) if ck.rows is not None else 1
            for r in ck.reductions:
                nch = max(1, -(-rows // CHUNK))
                extra[r.contrib] = xp.empty(rows * r.size, dtype=r.dtype)
                extra[r.partial] = xp.empty(nch * r.size, dtype=r.dtype)
            for s in ck.scatters:
                if s.operand_slot is not None:
                    extra[s.operand_slot] = xp.empty(_value(s.m, sizes) * s.width, dtype=s.dtype)
            cap = MAX_BLOCKS
            if ck.scratch:  # per-thread scratch: bound the threads so that it stays small
                per = sum(np.dtype(dt).itemsize * _value(n, sizes) for _s, dt, n in ck.scratch)
                cap = max(1, SCRATCH_BYTES // max(1, per * THREADS))
                nt = be.nthreads(rows, cap)
                for slot, dt, n in ck.scratch:
                    extra[slot] = xp.empty(max(1, nt * _value(n, sizes)), dtype=dt)
            table = be.table([be.ptr(a) if a is not None else 0 for a in extra])
            be.launch(kname, rows, table, Z, err, cap=cap)
            for r in ck.reductions:
                nch = max(1, -(-rows // CHUNK))
                be.launch(r.kernel_chunks, nch * r.size, extra[r.contrib], extra[r.partial],
                          rows, r.size)
                be.launch(r.kernel_final, r.size, extra[r.partial], S[r.out], nch, r.size)
            for s in ck.scatters:
                m = _value(s.m, sizes)
                if s.operand_kernel is not None:
                    be.launch(s.operand_kernel, m * s.width, table, Z, err)
                idx = S[s.idx].reshape(-1)
                perm = xp.argsort(idx, kind="stable").astype(np.int64)
                starts = xp.searchsorted(idx[perm], xp.arange(m + 1, dtype=np.int64),
                                         side="left").astype(np.int64)
                operand = extra[s.operand_slot] if s.operand_slot is not None else None
                be.launch(s.kernel, m * s.width, S[s.upd], perm, starts, operand, S[s.out], m,
                          s.width, 1 if s.mode == "add_into" else 0)
        del n_slots


def available() -> bool:
    """Is a CUDA device usable through CuPy?"""
    from ..backend import cupy_module

    return cupy_module() is not None
