"""The fusing executor: runs a Program as fused kernels (generated C, compiled once and cached
on disk; CUDA for CuPy arrays) with the remaining equations run by the primitives'
implementations, as the interpreter runs them.

Memory: every value a kernel stores outside itself and every kernel's scratch lives in one
workspace per call context, allocated once and reused by later calls (contexts are pooled, so
concurrent calls never share one). Values the caller receives are fresh arrays: program
outputs written by kernels get their own buffers per call, and host results that may be views
of the workspace are copied.
"""
from __future__ import annotations

import ctypes
import functools
import weakref

import numpy as np

from ..array import Array
from ..fusion import render_c, render_cuda, runtime_c, runtime_cuda
from ..fusion.kernel import ProgramLayout, lower_group
from ..fusion.schedule import Group, schedule
from ..ir import Literal, Program, Var
from ..primitive import effectful, impl_rules
from . import interpreter, register_executor

_ALIGN = 64
_ARRAYS = (np.ndarray, Array)
_USER_CODE = ("pure_callback", "custom_lin")


class FusedIndexError(IndexError):
    pass


def _impl(e):
    impl = impl_rules[e.prim]
    plain = getattr(impl, "plain", None)
    if plain is not None and all(len(x.aval.shape) < 3 for x in e.inputs):
        impl = plain
    return functools.partial(impl, **e.params) if e.params else impl


def _for_kernel(x, dtype):
    """x as a C-contiguous ndarray of dtype (what kernels read)."""
    if type(x) not in _ARRAYS or not x.flags.c_contiguous or x.dtype != dtype:
        x = np.ascontiguousarray(x, dtype=dtype)
    return x


def _own(x, ws):
    """x, copied if it is a view into the workspace `ws`."""
    b = x
    while isinstance(b, np.ndarray) and b.base is not None:
        b = b.base
    return x.copy() if b is ws else x


class Plan:
    """A compiled program: schedule, kernels, C source and library, slot layout."""

    def __init__(self, program: Program):
        self.program = program
        self.schedule = sched = schedule(program)
        self.layout = layout = ProgramLayout()
        self.kernels = []
        self.segments: list[list] = []
        self.steps: list = []  # ("seg", i) | ("host", eqn)
        current = None
        for step in sched.steps:
            if isinstance(step, Group):
                k = lower_group(step, sched.lazy, layout, f"k{len(self.kernels)}")
                self.kernels.append(k)
                if current is None:
                    current = []
                    self.segments.append(current)
                    self.steps.append(("seg", len(self.segments) - 1))
                current.append(k)
            else:
                current = None
                self.steps.append(("host", step.eqn))
        layout.finish()
        self.source = render_c.render_program(
            self.kernels, self.segments, len(layout.slot_info), layout.sizes_slot,
            layout.err_slot)

    def describe(self) -> str:
        return (f"{self.schedule.summary()}; {len(self.kernels)} C functions, "
                f"{self.source.count(chr(10))} lines")

    def cuda(self):
        """The same kernels as a CUDA module (render_cuda.CudaProgram), rendered on demand."""
        if getattr(self, "_cuda", None) is None:
            self._cuda = render_cuda.render_program(self.kernels, len(self.layout.slot_info))
        return self._cuda


def compile_program(p: Program):
    """Executor entry: run(*consts, *args) -> list of outputs. NumPy arguments run the C
    kernels; CuPy arguments run the CUDA kernels (compiled on first use)."""
    plan = Plan(p)
    if not plan.kernels:
        return interpreter.compile_program(p)
    try:
        compiles = runtime_c.stats["compiles"]
        run = _make_runner(plan, runtime_c.load(plan.source))
        if runtime_c.stats["compiles"] > compiles:
            _report_compile()
    except (runtime_c.CompilerError, OSError) as exc:
        # no usable compiler here: run this program on the interpreter (said once)
        _notice(f"reaxgrad: fused kernels unavailable ({str(exc).splitlines()[0]}); "
                f"jit runs on the NumPy interpreter")
        run = interpreter.compile_program(p)
    cupy_type = _cupy_ndarray()
    if cupy_type is None:
        return run
    device: dict = {}

    def run_any(*args):
        if any(type(a) is cupy_type for a in args):
            runner = device.get("runner")
            if runner is None:
                runner = device["runner"] = runtime_cuda.CudaRunner(plan.cuda(),
                                                                   plan.layout.sizes)
            return run_device(plan, runner, *args)
        return run(*args)

    run_any.plan = plan
    run_any.source = getattr(run, "source", "")
    return run_any


_said: set = set()
SLOW_COMPILE = 10.0  # seconds: a compile this long is announced on an interactive terminal


def _report_compile() -> None:
    """Every compile is logged (logger "reaxgrad.jit", INFO: source lines, seconds); a slow one
    is also announced on stderr when it is a terminal, since the first call waits for it."""
    import logging
    import sys

    seconds = runtime_c.stats["last_compile_seconds"]
    lines = runtime_c.stats["last_source_lines"]
    message = (f"reaxgrad: compiled fused kernels ({lines} lines of C) in {seconds:.1f} s; "
               f"later runs load them from {runtime_c.cache_dir()}")
    logging.getLogger("reaxgrad.jit").info(message)
    if seconds >= SLOW_COMPILE and getattr(sys.stderr, "isatty", lambda: False)():
        print(message, file=sys.stderr)


def _notice(message: str) -> None:
    """A one-line notice on stderr, once per process."""
    if message not in _said:
        _said.add(message)
        import sys

        print(message, file=sys.stderr)


def _cupy_ndarray():
    from ..backend import cupy_module

    cp = cupy_module()
    return None if cp is None else cp.ndarray


def emulate_cuda(p: Program):
    """run(*consts, *args) through the CUDA kernels built for the host (testing without a
    GPU: the generated CUDA source and the launch logic, on NumPy arrays)."""
    plan = Plan(p)
    runner = runtime_cuda.CudaRunner(plan.cuda(), plan.layout.sizes, emulate=True)

    def run(*args):
        return run_device(plan, runner, *args)

    run.plan = plan
    return run


def run_device(plan: Plan, runner, *args):
    """Run a plan with the CUDA runner (host steps through the primitives' implementations,
    which follow the arrays to CuPy)."""
    xp = runner.xp
    layout, p = plan.layout, plan.program
    S: list = [None] * len(layout.slot_info)
    S[layout.sizes_slot] = xp.asarray(np.array(layout.sizes or [0], dtype=np.int64))
    err = S[layout.err_slot] = xp.zeros(1, dtype=np.int64)
    env: dict = {}
    for v, x in zip(list(p.constvars) + list(p.invars), args):
        env[v] = x
        s = layout.slots.get(v)
        if s is not None:
            S[s] = xp.ascontiguousarray(xp.asarray(x, dtype=v.aval.dtype))
    written = {b.slot for k in plan.kernels for b in k.buffers.values()
               if b.role in ("out", "scratch")}
    for s in written:
        _kind, shape, dtype = layout.slot_info[s]
        S[s] = xp.empty(shape, dtype=dtype)
    slot_var = {s: v for v, s in layout.slots.items()}

    def read(x):
        if isinstance(x, Literal):
            return x.val
        if x in env:
            return env[x]
        return S[layout.slots[x]]

    for kind, what in plan.steps:
        if kind == "seg":
            runner.run_kernels([k.name for k in plan.segments[what]], S, err)
            continue
        e = what
        outs = _impl(e)(*[read(x) for x in e.inputs])
        outs = outs if e.prim.multiple_results else [outs]
        for v, o in zip(e.outvars, outs):
            env[v] = o
            s = layout.slots.get(v)
            if s is not None:
                S[s] = xp.ascontiguousarray(xp.asarray(o, dtype=v.aval.dtype))
    if int(err[0]):
        raise FusedIndexError("index out of bounds in a gather or scatter of a fused kernel "
                              "(jit backend 'fused', CUDA)")
    del slot_var
    return [read(v) for v in p.outvars]


_FRESH = frozenset({  # host primitives whose results never share memory with their inputs
    "dot_general", "solve", "gather", "scatter_add", "scatter_set", "scatter_mul", "pad",
    "concatenate", "reduce_max", "reduce_min", "pure_callback", "convert_element_type",
    "integer_pow"})


def _may_view(e) -> bool:
    """Can the host result of e be a view of one of its inputs?"""
    from ..primitive import c_exprs

    name = e.prim.name
    if name in _FRESH:
        return False
    return name == "stop_gradient" or e.prim not in c_exprs


def workspace_layout(plan: Plan, slots: set) -> tuple[dict, int]:
    """Offsets of the workspace slots: two slots share bytes when their lifetimes (from the
    kernel writing one to its last reader) do not overlap, as the interpreter frees values
    after their last use. A slot read by a host step that may return a view lives to the end."""
    layout = plan.layout
    first: dict = {}
    last: dict = {}
    step = 0
    for kind, what in plan.steps:
        if kind == "seg":
            for k in plan.segments[what]:
                for b in k.buffers.values():
                    if b.slot in slots:
                        first.setdefault(b.slot, step)
                        last[b.slot] = step
                step += 1
            continue
        for x in what.inputs:
            sl = layout.slots.get(x) if isinstance(x, Var) else None
            if sl in slots:
                last[sl] = float("inf") if _may_view(what) else step
        step += 1
    order = sorted(slots, key=lambda sl: (first.get(sl, 0), sl))
    live: list = []  # (offset, end offset, last step)
    offsets: dict = {}
    total = 0
    for sl in order:
        _kind, shape, dtype = layout.slot_info[sl]
        nbytes = max(1, int(np.prod(shape, dtype=np.int64))) * np.dtype(dtype).itemsize
        nbytes = -(-nbytes // _ALIGN) * _ALIGN
        start = first.get(sl, 0)
        live = [a for a in live if a[2] >= start]  # dead before this slot is written
        off = 0
        for a0, a1, _ in sorted(live):
            if off + nbytes <= a0:
                break
            off = max(off, a1)
        offsets[sl] = off
        live.append((off, off + nbytes, last.get(sl, start)))
        total = max(total, off + nbytes)
    return offsets, total


def _make_runner(plan: Plan, lib):
    p, layout = plan.program, plan.layout
    slot_info = layout.slot_info
    n_slots = len(slot_info)
    kernel_written = {b.slot for k in plan.kernels for b in k.buffers.values()
                      if b.role in ("out", "scratch")}
    slot_vars = {s: v for v, s in layout.slots.items()}
    outset = {v for v in p.outvars if isinstance(v, Var)}
    fresh_slots = {layout.slots[v] for v in outset if v in layout.slots
                   and layout.slots[v] in kernel_written}
    # workspace: kernel-written slots that are not program outputs, and scratch
    offsets, total = workspace_layout(plan, kernel_written - fresh_slots)
    plan.workspace_bytes = total
    sizes = np.array(layout.sizes or [0], dtype=np.int64)

    started = []

    def new_context():
        # only a plan's first context may take over another plan's workspace: plans used in
        # turn (fitting) would otherwise take each other's on every call
        ws = _spare_workspace(total, reuse=not started)
        started.append(True)
        S = [None] * n_slots
        for s, off in offsets.items():
            _kind, shape, dtype = slot_info[s]
            n = int(np.prod(shape, dtype=np.int64))
            S[s] = ws[off:off + n * np.dtype(dtype).itemsize].view(dtype).reshape(shape)
        S[layout.sizes_slot] = sizes
        S[layout.err_slot] = np.zeros(1, dtype=np.int64)
        return S, ws

    use_list = runtime_c.list_entry_ok()

    def entry(fname, kernels):
        if use_list:
            f = getattr(lib, fname)
            f.argtypes = [ctypes.py_object]
            f.restype = None
            return f
        f = getattr(lib, f"{fname}_p")
        f.argtypes = [ctypes.c_void_p]
        f.restype = None
        used = sorted({s for k in kernels for s in k.buffers} | {layout.sizes_slot,
                                                                 layout.err_slot})
        return _pointer_entry(f, used, n_slots)

    entries = [entry(f"seg{i}", seg) for i, seg in enumerate(plan.segments)]
    pool = _Pool()
    _POOLS[id(pool)] = pool
    ctx = dict(plan=plan, layout=layout, slot_vars=slot_vars, fresh_slots=fresh_slots,
               entries=entries, pool=pool, new_context=new_context)
    run = _driver(ctx, profile=False)
    run.plan = plan

    def profile(*args):
        """Run once, timing every kernel and host step: [(description, seconds)]."""
        if "kernel_entries" not in ctx:
            ctx["kernel_entries"] = {k.name: entry(f"kern_{k.name}", [k])
                                     for k in plan.kernels}
            ctx["profiled"] = _driver(ctx, profile=True)
        timings: list = []
        ctx["profiled"].timings = timings
        ctx["profiled"](*args)
        return timings

    run.profile = profile
    return run


class _Pool(list):
    """A plan's idle call contexts (S, ws), weakly registered in _POOLS (a list subclass,
    since a list cannot be weakly referenced)."""


_POOLS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # id -> _Pool
_HEADROOM = 1.25  # large workspaces get this much spare room, so a slightly larger plan fits
_LARGE = 1 << 24  # bytes: a workspace worth reusing across plans


def _spare_workspace(nbytes: int, reuse: bool = True) -> np.ndarray:
    """A workspace of at least nbytes: an idle context's of another plan when one fits (a new
    plan after list capacities grew, e.g. along MD, takes over the old plan's memory instead
    of adding to it; touching fresh memory is slow, ~1 s per 500 MB on some machines), else a
    new one with headroom when large."""
    nbytes = max(nbytes, _ALIGN)
    if nbytes < _LARGE:
        return np.empty(nbytes, dtype=np.uint8)
    best = None
    for pool in list(_POOLS.values()) if reuse else ():
        for entry in list(pool):
            size = entry[1].nbytes
            if nbytes <= size <= 2 * nbytes and (best is None or size < best[1][1].nbytes):
                best = (pool, entry)
    if best is not None and _take(*best):
        return best[1][1]
    return np.empty(int(nbytes * _HEADROOM), dtype=np.uint8)


def _take(pool: list, entry) -> bool:
    """Remove `entry` (by identity) from `pool` unless another thread took it first."""
    for k, e in enumerate(pool):
        if e is entry:
            try:
                got = pool.pop(k)
            except IndexError:
                return False
            if got is entry:
                return True
            pool.append(got)  # the list changed under us: give that one back
            return False
    return False


def _driver(ctx, profile: bool):
    """Generate the Python function that runs the plan (straight-line code)."""
    plan, layout = ctx["plan"], ctx["layout"]
    p = plan.program
    slot_vars, fresh_slots = ctx["slot_vars"], ctx["fresh_slots"]
    glob: dict = {"np": np, "_empty": np.empty, "_for_kernel": _for_kernel, "_own": _own,
                  "_err": _raise_index, "_pool": ctx["pool"], "_new": ctx["new_context"]}
    names: dict = {}

    def name(v):
        if isinstance(v, Literal):
            key = f"k{len(glob)}"
            glob[key] = v.val
            return key
        n = names.get(v)
        if n is None:
            n = names[v] = f"v{len(names)}"
        return n

    params = [name(v) for v in p.constvars] + [name(v) for v in p.invars]
    lines = [f"def run({', '.join(params)}):",
             "    try:", "        S, ws = _pool.pop()", "    except IndexError:",
             "        S, ws = _new()"]
    if profile:
        import time

        glob["_pc"] = time.perf_counter
        lines.append("    _T = run.timings")
    host_known = set(p.constvars) | set(p.invars)
    filled = []
    for v in list(p.constvars) + list(p.invars):  # inputs and constants that kernels read
        s = layout.slots.get(v)
        if s is not None:
            lines.append(f"    S[{s}] = _for_kernel({name(v)}, {_dt(glob, v)})")
            filled.append(s)
    for s in sorted(fresh_slots):  # fresh output buffers written by kernels
        v = slot_vars[s]
        lines.append(f"    S[{s}] = {name(v)} = _empty({v.aval.shape!r}, {_dt(glob, v)})")
        filled.append(s)
        host_known.add(v)

    def host_read(x):
        if isinstance(x, Literal) or x in host_known:
            return name(x)
        return f"S[{layout.slots[x]}]"  # a workspace value written by an earlier kernel

    def timed(line, desc):
        if not profile:
            lines.append(line)
            return
        lines.append("    _t0 = _pc()")
        lines.append(line)
        lines.append(f"    _T.append(({desc!r}, _pc() - _t0))")

    for kind, what in plan.steps:
        if kind == "seg":
            if not profile:
                glob[f"seg{what}"] = ctx["entries"][what]
                lines.append(f"    seg{what}(S)")
                continue
            for k in plan.segments[what]:
                glob[f"kern_{k.name}"] = ctx["kernel_entries"][k.name]
                rows = layout.sizes[k.rows.arg] if k.rows is not None and k.rows.op == "size" \
                    else (k.rows.arg if k.rows is not None else None)
                timed(f"    kern_{k.name}(S)", f"kernel {k.name}: {k.eqns} eqns, rows={rows}")
            continue
        e = what
        fn = f"f{len(glob)}"
        glob[fn] = _impl(e)
        args = [host_read(x) for x in e.inputs]
        if e.prim.name in _USER_CODE or e.prim in effectful:
            args = [f"np.array({a})" if a.startswith("S[") else a for a in args]
        outs = [name(v) for v in e.outvars]
        target = ", ".join(outs) + ("," if e.prim.multiple_results and len(outs) == 1 else "")
        shapes = " ".join(x.aval.str_short() for x in e.inputs)
        timed(f"    {target} = {fn}({', '.join(args)})", f"host {e.prim.name} {shapes}")
        for v in e.outvars:
            host_known.add(v)
            s = layout.slots.get(v)
            if s is not None:
                lines.append(f"    S[{s}] = _for_kernel({name(v)}, {_dt(glob, v)})")
                filled.append(s)
    lines.append("    if S[1][0]:")
    lines.append("        _err(S)")
    results = []
    fresh_vars = {slot_vars[s] for s in fresh_slots}
    for v in p.outvars:
        if isinstance(v, Literal) or v in p.invars or v in p.constvars or v in fresh_vars:
            results.append(name(v))
        elif v in host_known:
            results.append(f"_own({name(v)}, ws)")
        else:  # pragma: no cover - every output is materialized by the schedule
            raise AssertionError(f"output {v} not materialized")
    for s in sorted(set(filled)):
        lines.append(f"    S[{s}] = None")
    lines.append("    _pool.append((S, ws))")
    lines.append(f"    return [{', '.join(results)}]")
    source = "\n".join(lines)
    exec(compile(source, "<reaxgrad.fused>", "exec"), glob)  # noqa: S102
    run = glob["run"]
    run.source = source
    return run


def _dt(glob, v):
    key = f"dt_{v.aval.dtype.name}"
    glob[key] = v.aval.dtype
    return key


def _raise_index(S):
    code = int(S[1][0])
    S[1][0] = 0
    if code == 2:
        raise MemoryError("a fused kernel could not allocate its block workspace")
    raise FusedIndexError("index out of bounds in a gather or scatter of a fused kernel "
                          "(jit backend 'fused')")


def _pointer_entry(f, used, n_slots):
    """Entry through an array of pointers (when the list layout check fails)."""
    ptrs = (ctypes.c_void_p * n_slots)()

    def call(S):
        for s in used:
            ptrs[s] = S[s].ctypes.data
        f(ptrs)

    return call


register_executor("fused", compile_program)
