"""CUDA renderer: the same kernel descriptions as CUDA C++ for `cupy.RawModule`.

One thread per row (grid-stride loop), the row's statements as scalar code. What ends a
kernel is made deterministic without atomics:
- reductions over rows: every row writes its contribution to scratch; `rg_reduce_chunks`
  sums fixed chunks of rows in row order and `rg_reduce_final` sums the chunk results in
  order (the same bits for any launch configuration);
- segment sums: rows record (index, update) pairs as in C; the runtime sorts the indices
  stably (equal indices keep their row order) and `rg_segment_sum` adds each output row's
  updates in that order — the order of a sequential loop, as on the CPU.

Row values whose trailing size is a runtime value (so that the source does not depend on it)
live in global scratch, one slice per launched thread, element j of thread t at
`[j * nthreads + t]` (coalesced); the runner bounds the launch so that the scratch stays small.

The source also builds for the host (`-DRG_HOST_EMULATION`, one "thread" doing every row):
the runtime's emulation mode uses it to test these kernels where no GPU is present.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .kernel import CHUNK, Accum, Assign, Kernel, Node, Reduce, Store, is_const
from .render_c import ExprRenderer, combine, ctype, reduce_init, zs

PRELUDE = r"""#ifndef RG_HOST_EMULATION
#ifdef __CUDACC_RTC__  /* NVRTC (cupy.RawModule) has no standard headers */
typedef long long int64_t;
typedef unsigned long long uint64_t;
typedef int int32_t;
typedef unsigned char uint8_t;
#else
#include <stdint.h>
#endif
#define RG_DEV static __device__ __forceinline__
#define RG_KERNEL extern "C" __global__
#define RG_TID ((int64_t) blockIdx.x * blockDim.x + threadIdx.x)
#define RG_NTHREADS ((int64_t) gridDim.x * blockDim.x)
#ifndef INFINITY
#define INFINITY __longlong_as_double(0x7ff0000000000000LL)
#endif
#ifndef NAN
#define NAN __longlong_as_double(0x7ff8000000000000LL)
#endif
#else  /* host emulation: one thread runs every row */
#include <math.h>
#include <stdint.h>
#define RG_DEV static inline
#define RG_KERNEL extern "C"
#define RG_TID ((int64_t) 0)
#define RG_NTHREADS ((int64_t) 1)
#endif
#ifndef INT64_C
#define INT64_C(x) x##LL
#endif
#define restrict __restrict__

RG_DEV int64_t rg_wrap(int64_t i, int64_t n, int64_t *err) {
    if (i < 0) i += n;
    if (i < 0 || i >= n) { *err = 1; return 0; }
    return i;
}
"""


@dataclass
class CudaReduction:
    contrib: int  # extra slot: rows x size contributions
    partial: int  # extra slot: chunks x size
    out: int  # slot of the result
    size: int
    op: str
    dtype: np.dtype
    kernel_chunks: str = ""
    kernel_final: str = ""


@dataclass
class CudaScatter:
    idx: int
    upd: int
    out: int
    per_row: int
    width: int
    m: Node
    mode: str
    dtype: np.dtype
    operand_kernel: str | None = None
    operand_slot: int | None = None  # extra slot the operand is materialized into
    kernel: str = ""


@dataclass
class CudaKernel:
    name: str
    rows: Node | None
    reductions: list = field(default_factory=list)
    scatters: list = field(default_factory=list)
    scratch: list = field(default_factory=list)  # (extra slot, dtype, size Node) per thread


@dataclass
class CudaProgram:
    source: str
    kernels: list  # CudaKernel, in the order of the C kernels
    n_slots: int
    extra: list = field(default_factory=list)  # (kind, slot, dtype, size info) of extra slots


def _in_scratch(loc) -> bool:
    """Does this row value live in global scratch (its size a runtime value)?"""
    return loc.size is not None and not is_const(loc.zsize)


def _ref(loc, idx, node=None) -> str:
    if loc.size is None:
        return loc.name
    if _in_scratch(loc):
        return f"g{loc.name}[({idx}) * rg_nt + rg_tid]"
    return f"{loc.name}[{idx}]"


def _declare(loc, lines, ind):
    if not _in_scratch(loc):
        lines.append(f"{ind}{ctype(loc.dtype)} {loc.name}[{loc.size}];")


def _n(zn) -> str:
    return "1" if zn is None else zs(zn)


def _stmt(er: ExprRenderer, s, lines: list, ind: str):
    if isinstance(s, Assign):
        loc, t = s.local, ctype(s.local.dtype)
        if loc.size is None:
            lines.append(f"{ind}const {t} {loc.name} = {er(s.expr)};")
        else:
            _declare(loc, lines, ind)
            lines.append(f"{ind}for (int64_t j = 0; j < {zs(loc.zsize)}; j++) "
                         f"{_ref(loc, 'j')} = {er(s.expr)};")
    elif isinstance(s, Reduce):
        loc, t = s.local, ctype(s.local.dtype)
        init = reduce_init(s.op, loc.dtype)
        target = loc.name if loc.size is None else _ref(loc, er(s.out))
        step = combine(er, s.op, loc.dtype, target, er(s.expr))
        if loc.size is None:
            lines.append(f"{ind}{t} {loc.name} = {init};")
        else:
            _declare(loc, lines, ind)
            lines.append(f"{ind}for (int64_t o = 0; o < {zs(loc.zsize)}; o++) "
                         f"{_ref(loc, 'o')} = {init};")
        lines.append(f"{ind}for (int64_t j = 0; j < {_n(s.zn)}; j++) {target} = {step};")
    elif isinstance(s, Store):
        line = f"b{s.buf.slot}[{er(s.offset)}] = {er(s.expr)};"
        if s.n is None:
            lines.append(f"{ind}{line}")
        else:
            lines.append(f"{ind}for (int64_t j = 0; j < {zs(s.zn)}; j++) {line}")
    elif isinstance(s, Accum):
        red = s.red
        target = _ref(red.acc, er(s.out))
        step = combine(er, red.op, red.acc.dtype, target, er(s.expr))
        lines.append(f"{ind}for (int64_t j = 0; j < {_n(s.zn)}; j++) {target} = {step};")
    else:  # pragma: no cover
        raise TypeError(type(s).__name__)


def _buffers(k: Kernel, lines: list):
    for slot in sorted(k.buffers):
        b = k.buffers[slot]
        const = "const " if b.role == "in" else ""
        lines.append(f"    {const}{ctype(b.dtype)} *restrict b{slot} = "
                     f"({const}{ctype(b.dtype)} *) B[{slot}];")


def render_kernel(k: Kernel, er: ExprRenderer, extra_slot) -> tuple[str, CudaKernel]:
    """The kernel's CUDA functions: the row kernel, and operand kernels of its segment sums."""
    ck = CudaKernel(k.name, k.rows)
    er.local_ref = None
    er.wrap_names = {}
    er.j = "j"
    sig = "(void **restrict B, const int64_t *restrict Z, int64_t *restrict err)"
    lines = [f"RG_KERNEL void {k.name}{sig} {{", "    (void) Z; (void) err;"]
    _buffers(k, lines)
    scratch = [st.local for st in k.body if isinstance(st, (Assign, Reduce))
               and _in_scratch(st.local)] + [red.acc for red in k.reductions
                                              if _in_scratch(red.acc)]
    if scratch:
        lines.append("    const int64_t rg_nt = RG_NTHREADS, rg_tid = RG_TID;")
    for loc in scratch:
        slot = extra_slot(("scratch", loc))
        ck.scratch.append((slot, loc.dtype, loc.zsize))
        t = ctype(loc.dtype)
        lines.append(f"    {t} *restrict g{loc.name} = ({t} *) B[{slot}];")
    er.local_ref = _ref
    for s in k.prologue:
        if isinstance(s, Store):
            continue
        _stmt(er, s, lines, "    ")
    stores = [s for s in k.prologue if isinstance(s, Store)]
    if stores:
        lines.append("    if (RG_TID == 0) {")
        for s in stores:
            _stmt(er, s, lines, "        ")
        lines.append("    }")
    for red in k.reductions:
        cr = CudaReduction(extra_slot(("contrib", red)), extra_slot(("partial", red)),
                           red.out.slot, red.size, red.op, red.acc.dtype)
        ck.reductions.append(cr)
        lines.append(f"    {ctype(red.acc.dtype)} *restrict c{red.acc.name} = "
                     f"({ctype(red.acc.dtype)} *) B[{cr.contrib}];")
    if k.rows is not None and (k.body or k.reductions):
        lines.append(f"    const int64_t n = {er(k.rows)};")
        lines.append("    for (int64_t k = RG_TID; k < n; k += RG_NTHREADS) {")
        for red in k.reductions:
            _declare(red.acc, lines, "        ")
            lines.append(f"        for (int64_t o = 0; o < {zs(red.zsize)}; o++) "
                         f"{_ref(red.acc, 'o')} = {reduce_init(red.op, red.acc.dtype)};")
        for s in k.body:
            _stmt(er, s, lines, "        ")
        for red in k.reductions:
            rs = zs(red.zsize)
            lines.append(f"        for (int64_t o = 0; o < {rs}; o++) "
                         f"c{red.acc.name}[k * {rs} + o] = {_ref(red.acc, 'o')};")
        lines.append("    }")
    lines.append("}")
    er.local_ref = None
    out = ["\n".join(lines)]
    for i, sc in enumerate(k.scatters):
        cs = CudaScatter(sc.idx.slot, sc.upd.slot, sc.out.slot, sc.per_row, sc.width, sc.m,
                         sc.mode, sc.dtype)
        if sc.operand is not None:
            cs.operand_slot = extra_slot(("operand", sc))
            cs.operand_kernel = f"{k.name}_operand{i}"
            t = ctype(sc.dtype)
            ol = [f"RG_KERNEL void {cs.operand_kernel}{sig} {{", "    (void) Z; (void) err;"]
            _buffers(k, ol)
            ol.append(f"    {t} *restrict dst = ({t} *) B[{cs.operand_slot}];")
            ol.append(f"    const int64_t total = {er(sc.m)} * {zs(sc.zwidth)};")
            ol.append("    for (int64_t r = RG_TID; r < total; r += RG_NTHREADS) "
                      f"dst[r] = {er(sc.operand)};")
            ol.append("}")
            out.append("\n".join(ol))
        ck.scatters.append(cs)
    return "\n\n".join(out), ck


def _generic(er: ExprRenderer, ck: CudaKernel, done: dict) -> list[str]:
    """Reduction and segment-sum kernels, one per (operation, dtype) used."""
    out = []
    for r in ck.reductions:
        t = ctype(r.dtype)
        key = f"{r.op}_{t.replace('_t', '')}"
        r.kernel_chunks, r.kernel_final = f"rg_reduce_chunks_{key}", f"rg_reduce_final_{key}"
        if key in done:
            continue
        done[key] = True
        init = reduce_init(r.op, r.dtype)
        step_c = combine(er, r.op, r.dtype, "s", "contrib[k * size + o]")
        step_f = combine(er, r.op, r.dtype, "s", "partial[c * size + o]")
        out.append(
            f"RG_KERNEL void {r.kernel_chunks}(const {t} *restrict contrib, {t} *restrict "
            f"partial, int64_t n, int64_t size) {{\n"
            f"    const int64_t nchunks = (n + {CHUNK - 1}) / {CHUNK};\n"
            f"    for (int64_t t = RG_TID; t < nchunks * size; t += RG_NTHREADS) {{\n"
            f"        const int64_t c = t / size, o = t % size;\n"
            f"        const int64_t end = (c + 1) * {CHUNK} < n ? (c + 1) * {CHUNK} : n;\n"
            f"        {t} s = {init};\n"
            f"        for (int64_t k = c * {CHUNK}; k < end; k++) s = {step_c};\n"
            f"        partial[t] = s;\n    }}\n}}\n"
            f"RG_KERNEL void {r.kernel_final}(const {t} *restrict partial, {t} *restrict out, "
            f"int64_t nchunks, int64_t size) {{\n"
            f"    for (int64_t o = RG_TID; o < size; o += RG_NTHREADS) {{\n"
            f"        {t} s = {init};\n"
            f"        for (int64_t c = 0; c < nchunks; c++) s = {step_f};\n"
            f"        out[o] = s;\n    }}\n}}")
    for s in ck.scatters:
        t = ctype(s.dtype)
        key = f"segsum_{t.replace('_t', '')}"
        s.kernel = f"rg_{key}"
        if key in done:
            continue
        done[key] = True
        out.append(
            f"RG_KERNEL void rg_{key}(const {t} *restrict upd, const int64_t *restrict perm, "
            f"const int64_t *restrict starts, const {t} *restrict operand, {t} *restrict out, "
            f"int64_t m, int64_t w, int add_into) {{\n"
            f"    /* out row r: its updates in row order (perm: stable sort of the indices) */\n"
            f"    for (int64_t t = RG_TID; t < m * w; t += RG_NTHREADS) {{\n"
            f"        const int64_t r = t / w, col = t % w;\n"
            f"        {t} s = (add_into && operand) ? operand[t] : ({t}) 0;\n"
            f"        for (int64_t q = starts[r]; q < starts[r + 1]; q++) "
            f"s += upd[perm[q] * w + col];\n"
            f"        out[t] = (!add_into && operand) ? operand[t] + s : s;\n    }}\n}}")
    return out


def render_program(kernels: list[Kernel], n_slots: int) -> CudaProgram:
    """The CUDA module for a program's kernels (all segments)."""
    er = ExprRenderer(fn_prefix="RG_DEV")
    extra: list = []

    def extra_slot(info):
        extra.append(info)
        return n_slots + len(extra) - 1

    bodies, cks = [], []
    for k in kernels:
        src, ck = render_kernel(k, er, extra_slot)
        bodies.append(src)
        cks.append(ck)
    done: dict = {}
    generic = [g for ck in cks for g in _generic(er, ck, done)]
    source = "\n\n".join([PRELUDE, "\n".join(er.helpers.values()), *bodies, *generic]) + "\n"
    return CudaProgram(source, cks, n_slots, extra)
