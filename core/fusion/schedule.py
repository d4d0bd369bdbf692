"""What fuses: groups the equations of an optimized Program into kernels and host steps.

A kernel (a `Group` here) runs over the rows of one leading axis. It holds chains of
elementwise equations together with the movement operations (reshape, broadcast, transpose,
slice, pad, concatenate) and gathers that feed them — those never become statements: they are
index maps folded into the kernel's loads — and ends with reductions and segment sums
(scatter_add). Everything else (dot_general, solve, host callbacks, scatter_set/mul, dtypes the
kernels do not handle, empty arrays) is a host step run by the primitive's implementation.

Rules that keep a kernel correct:
- a row value of a kernel is read only at its own row (a movement op that keeps the leading
  axis); reading it at another row (gathered, transposed, reshaped across rows) needs it
  materialized, so the reader goes to a later kernel;
- results of reductions over rows and of segment sums exist only when the kernel ends: their
  readers go to later kernels;
- an equation joins a kernel only if every value it reads from elsewhere is computed before
  that kernel runs;
- kernels never write in place: every stored value gets its own buffer, and nothing a kernel
  reads can be written while it runs (no aliasing).
"""
from __future__ import annotations

import numpy as np

from ..ir import Literal, Program
from ..primitive import c_exprs
from .kernel import SUPPORTED_DTYPES

MOVEMENT = frozenset({"reshape", "broadcast_in_dim", "transpose", "slice", "pad", "concatenate"})
REDUCTIONS = frozenset({"reduce_sum", "reduce_max", "reduce_min"})
MAX_INNER = 4096  # elements of a value's trailing axes held per row
MAX_GROUP_EQNS = 400  # equations per kernel (bounds the size of one C function)
_FLOAT_ONLY = frozenset({
    "div", "pow", "exp", "expm1", "log", "log1p", "sin", "cos", "tan", "asin", "acos", "atan",
    "sinh", "cosh", "tanh", "sqrt", "floor", "ceil", "round", "atan2", "integer_pow",
})
_NO_BOOL = frozenset({"add", "sub", "mul", "neg", "abs", "sign", "max", "min"})


class HostStep:
    """One equation run by its primitive implementation."""

    __slots__ = ("eqn",)

    def __init__(self, eqn):
        self.eqn = eqn

    def __repr__(self):
        return f"HostStep({self.eqn.prim.name})"


class Group:
    """Equations fused into one kernel over `rows` rows (None: scalars only)."""

    __slots__ = ("id", "rows", "eqns", "row_vals", "uniform_vals", "final", "store", "pos")

    def __init__(self, gid: int, pos: int):
        self.id = gid
        self.pos = pos
        self.rows = None
        self.eqns: list = []
        self.row_vals: set = set()
        self.uniform_vals: set = set()
        self.final: set = set()
        self.store: set = set()

    def values(self):
        return self.row_vals | self.uniform_vals | self.final

    def __repr__(self):
        names = ", ".join(e.prim.name for e in self.eqns[:6])
        more = "..." if len(self.eqns) > 6 else ""
        return f"Group({self.id}, rows={self.rows}, [{names}{more}])"


class Schedule:
    """steps: HostSteps and Groups in execution order; lazy: Var -> the movement/gather
    equation that defines it as an index map."""

    def __init__(self, program: Program, steps: list, lazy: dict):
        self.program = program
        self.steps = steps
        self.lazy = lazy

    @property
    def groups(self) -> list:
        return [s for s in self.steps if isinstance(s, Group)]

    def summary(self) -> str:
        g = self.groups
        fused = sum(len(x.eqns) for x in g)
        host = sum(1 for s in self.steps if isinstance(s, HostStep))
        return (f"{len(self.program.eqns)} equations: {fused} in {len(g)} kernels, "
                f"{len(self.lazy)} index maps, {host} host steps")


def _dtypes_ok(e) -> bool:
    for x in list(e.inputs) + list(e.outvars):
        if x.aval.dtype not in SUPPORTED_DTYPES:
            return False
        if not isinstance(x, Literal) and x.aval.size == 0:
            return False
    return True


def _inner(shape) -> int:
    return int(np.prod(shape[1:], dtype=np.int64)) if shape else 1


def classify(e) -> str:
    """elementwise | lazy | reduce | scatter | host."""
    name = e.prim.name
    if e.prim.multiple_results or not _dtypes_ok(e):
        return "host"
    out = e.outvars[0].aval
    if name in MOVEMENT:
        return "lazy"
    if name == "gather":
        return "lazy" if e.inputs[0].aval.ndim >= 1 else "host"
    if e.prim in c_exprs:
        kinds = {x.aval.dtype.kind for x in e.inputs}
        if name in _FLOAT_ONLY and kinds - {"f"}:
            return "host"
        if name in _NO_BOOL and "b" in kinds:
            return "host"
        if name == "select" and e.inputs[0].aval.dtype.kind != "b":
            return "host"
        if _inner(out.shape) > MAX_INNER:
            return "host"
        return "elementwise"
    if name in REDUCTIONS:
        x = e.inputs[0].aval
        if x.ndim == 0 or _inner(x.shape) > MAX_INNER or (
            name != "reduce_sum" and x.size == 0
        ):
            return "host"
        if out.dtype.kind == "b":
            return "host"
        return "reduce"
    if name == "dot_general":
        return "dot" if dot_kind(e) is not None else "host"
    if name == "scatter_add":
        operand, idx, upd = (x.aval for x in e.inputs)
        if idx.ndim == 0 or _inner(upd.shape) > MAX_INNER or operand.dtype.kind == "b":
            return "host"
        return "scatter"
    return "host"


MAX_CONTRACT = 64  # contraction size of a dot_general summed inside a kernel


def dot_kind(e):
    """How a dot_general fuses, or None (it stays a host matmul):
    "rows"  - lhs (N, ...) times a row-independent rhs, no batch axes: x @ M per row;
    "batch" - batch axis 0 on both sides: per-row products (rowwise dot products);
    "over"  - both contract axis 0: a sum over rows of outer products (x.T @ y)."""
    (lc, rc), (lb, rb) = e.params["dimension_numbers"]
    x, y = (v.aval for v in e.inputs)
    out = e.outvars[0].aval
    if x.dtype.kind != "f" or x.ndim == 0 or y.ndim == 0:
        return None
    csize = int(np.prod([x.shape[i] for i in lc], dtype=np.int64))
    if not lb and 0 in lc and 0 in rc and list(lc).index(0) == list(rc).index(0):
        per_row = csize // max(1, x.shape[0])
        if per_row > MAX_CONTRACT or out.size * max(1, per_row) > MAX_INNER:
            return None
        return "over"
    if out.ndim == 0 or csize > MAX_CONTRACT or _inner(out.shape) * max(1, csize) > MAX_INNER:
        return None
    if not lb and 0 not in lc:
        return "rows"
    if tuple(lb) == (0,) and tuple(rb) == (0,):
        return "batch"
    return None


def _preserves_rows(e) -> bool:
    """Does this movement op map row k of its (first) input to row k of its output?"""
    name = e.prim.name
    p = e.params
    x = e.inputs[0].aval
    out = e.outvars[0].aval
    if x.ndim == 0 or out.ndim == 0 or x.shape[0] != out.shape[0]:
        return False
    if name == "reshape":
        return True
    if name == "broadcast_in_dim":
        return p["broadcast_dimensions"][0] == 0
    if name == "transpose":
        return p["permutation"][0] == 0
    if name == "slice":
        return p["start_indices"][0] == 0 and p["strides"][0] == 1 and (
            p["limit_indices"][0] == x.shape[0])
    if name == "pad":
        return tuple(p["padding_config"][0]) == (0, 0, 0)
    if name == "concatenate":
        return p["dimension"] != 0
    return False


def schedule(program: Program) -> Schedule:
    """Group the program's equations into kernels and host steps (see the module docstring)."""
    steps: list = []
    lazy: dict = {}
    leaves: dict = {}  # lazy Var -> [(leaf Var, row_preserving)]
    producer: dict = {}  # Var -> position of the step (host or group) that produces it
    group_of: dict = {}  # Var -> Group (values computed in a group)
    host_done: set = set()

    def leaf_reads(x, row_ctx: bool):
        """[(leaf, mode)] of reading x: mode "row" when row k is read at row k, else "any"."""
        if isinstance(x, Literal):
            return []
        if x in lazy:
            return [(leaf, "row" if (row_ctx and pres) else "any") for leaf, pres in leaves[x]]
        return [(x, "row" if row_ctx else "any")]

    def note_lazy(e):
        out = e.outvars[0]
        lazy[out] = e
        acc = []
        if e.prim.name == "gather":
            xv, iv = e.inputs
            acc += [(leaf, False) for leaf, _ in _leaves_of(xv)]
            keep = iv.aval.ndim >= 1
            acc += [(leaf, p and keep) for leaf, p in _leaves_of(iv)]
        else:
            pres = _preserves_rows(e)
            for x in e.inputs:
                acc += [(leaf, p and pres) for leaf, p in _leaves_of(x)]
        leaves[out] = acc

    def _leaves_of(x):
        if isinstance(x, Literal):
            return []
        if x in lazy:
            return leaves[x]
        return [(x, True)]

    def materialize(x):
        """x is needed as an array by host code or as a program output."""
        if isinstance(x, Literal):
            return
        g = group_of.get(x)
        if g is not None:
            g.store.add(x)
            return
        e = lazy.get(x)
        if e is not None and x not in host_done:
            for y in e.inputs:
                materialize(y)
            host_done.add(x)
            producer[x] = len(steps)
            steps.append(HostStep(e))

    def compatible(g: Group, rows, reads, e) -> bool:
        if len(g.eqns) >= MAX_GROUP_EQNS:
            return False
        if rows is not None and g.rows is not None and rows != g.rows:
            return False
        for leaf, mode in reads:
            if leaf in g.final:
                return False
            if leaf in g.row_vals:
                if mode != "row":
                    return False
                continue
            if leaf in g.uniform_vals:
                if mode == "ext":
                    return False
                continue
            p = producer.get(leaf)
            if p is not None and p >= g.pos:
                return False
        return True

    for e in program.eqns:
        kind = classify(e)
        if kind == "lazy":
            note_lazy(e)
            continue
        if kind == "host":
            for x in e.inputs:
                materialize(x)
            pos = len(steps)
            steps.append(HostStep(e))
            for v in e.outvars:
                producer[v] = pos
            continue
        out = e.outvars[0]
        shape = out.aval.shape
        reads = []
        if kind == "elementwise":
            rows = shape[0] if shape else None
            for x in e.inputs:
                reads += leaf_reads(x, bool(shape) and x.aval.shape == shape)
        elif kind == "reduce":
            x = e.inputs[0]
            rows = x.aval.shape[0]
            reads += leaf_reads(x, True)
        elif kind == "dot":
            x, y = e.inputs
            dk = dot_kind(e)
            rows = x.aval.shape[0]
            reads += leaf_reads(x, True) + leaf_reads(y, dk in ("batch", "over"))
        else:  # scatter
            operand, iv, upd = e.inputs
            rows = iv.aval.shape[0]
            reads += leaf_reads(iv, True) + leaf_reads(upd, True)
            reads += [(leaf, "ext") for leaf, _ in leaf_reads(operand, False)]
        # candidates: groups computing what e reads, then the most recent groups
        own = {group_of[leaf] for leaf, _ in reads if leaf in group_of}
        recent = [s for s in steps[-8:] if isinstance(s, Group)]
        best, best_score = None, -1
        for g in sorted(own | set(recent), key=lambda g: g.pos):
            if compatible(g, rows, reads, e):
                score = sum(1 for leaf, _ in reads if group_of.get(leaf) is g)
                if score >= best_score:
                    best, best_score = g, score
        if best is None:
            best = Group(len([s for s in steps if isinstance(s, Group)]), len(steps))
            steps.append(best)
        g = best
        if rows is not None and g.rows is None:
            g.rows = rows
        g.eqns.append(e)
        if kind == "elementwise" and not shape:
            g.uniform_vals.add(out)
        elif kind == "scatter" or (kind == "reduce" and 0 in e.params["axes"]) or (
                kind == "dot" and dot_kind(e) == "over"):
            g.final.add(out)
        else:
            g.row_vals.add(out)
        group_of[out] = g
        producer[out] = g.pos
        for leaf, _ in reads:
            src = group_of.get(leaf)
            if src is not None and src is not g:
                src.store.add(leaf)
    for v in program.outvars:
        materialize(v)
    return Schedule(program, steps, lazy)
