"""One fused kernel, described independently of the language it is rendered to.

A kernel runs over a loop domain of `rows` rows (the leading axis shared by its values; None
for a kernel that only computes scalars). Per row it evaluates a list of statements; every
statement writes one small local array (the value's trailing axes, flattened; a scalar when
there are none) or stores into a buffer, inside its own loop over `j`, the flat index of those
trailing axes. Index expressions of loads and local reads are trees of `Node`s in the loop
indices (`k` the row, `j`), constants, and runtime sizes (`Z[i]`, so that one compiled source
serves every list capacity whose equality pattern of large sizes is the same).

A kernel ends with cross-row reductions (per-chunk partial results over fixed chunks of rows,
combined in chunk order: the result does not depend on the thread count) and segment sums
(updates and indices recorded per row, then summed into the output, each output row by one
thread in the original row order: the same bits as a sequential loop).

`lower_group` turns a scheduled group of IR equations into a `Kernel`; movement operations and
gathers never become statements: they compose into the index expressions of the loads.
"""
from __future__ import annotations

import numpy as np

from ..ir import Literal, Var

SMALL_DIM = 8  # dimensions up to this size are compile-time constants in index arithmetic
# (row counts, index bounds and integer literals are always runtime values: the source of a
# program is the same for every structure and list capacity with the same small dimensions)
CHUNK = 512  # rows per chunk (fixed, so that reductions repeat bitwise on any thread count)

SUPPORTED_DTYPES = frozenset(
    np.dtype(t) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)
)


# ---- expressions ---------------------------------------------------------------------------------

class Node:
    """An expression. `op` is one of:
    const (arg: value), k (the row), j (the statement's inner index), r (the flat output index
    of a segment-sum pass), size (arg: index into the runtime size table), read (arg: Local;
    args: (index,)), load (arg: Buffer; args: (offset,)), prim (arg: (primitive, params);
    args: operands), where (args: cond, a, b), cast (to `dtype`), wrap (args: (i, n): a
    gathered index made non-negative and bounds-checked), and integer index arithmetic on
    non-negative values: iadd, imul, idiv, imod, ilt, ige, ieq, iand."""

    __slots__ = ("op", "args", "dtype", "arg")

    def __init__(self, op, args=(), dtype=None, arg=None):
        self.op = op
        self.args = tuple(args)
        self.dtype = dtype
        self.arg = arg

    def __repr__(self):
        if self.op == "const":
            return repr(self.arg)
        if self.op in ("k", "j", "r"):
            return self.op
        if self.op == "size":
            return f"Z[{self.arg}]"
        return f"{self.op}({', '.join(map(repr, self.args))})"


I64 = np.dtype(np.int64)
BOOL = np.dtype(np.bool_)
K = Node("k", dtype=I64)
J = Node("j", dtype=I64)
R = Node("r", dtype=I64)


def const(v, dtype=I64) -> Node:
    return Node("const", dtype=np.dtype(dtype), arg=v)


def is_const(n, v=None) -> bool:
    return isinstance(n, Node) and n.op == "const" and (v is None or n.arg == v)


def iadd(a: Node, b: Node) -> Node:
    if is_const(a) and is_const(b):
        return const(a.arg + b.arg)
    if is_const(a, 0):
        return b
    if is_const(b, 0):
        return a
    return Node("iadd", (a, b), I64)


def imul(a: Node, b: Node) -> Node:
    if is_const(a) and is_const(b):
        return const(a.arg * b.arg)
    if is_const(a, 0) or is_const(b, 0):
        return const(0)
    if is_const(a, 1):
        return b
    if is_const(b, 1):
        return a
    return Node("imul", (a, b), I64)


def idiv(a: Node, b: Node) -> Node:
    if is_const(b, 1):
        return a
    if is_const(a) and is_const(b):
        return const(a.arg // b.arg)
    if is_const(a, 0):
        return a
    return Node("idiv", (a, b), I64)


def imod(a: Node, b: Node) -> Node:
    if is_const(b, 1):
        return const(0)
    if is_const(a) and is_const(b):
        return const(a.arg % b.arg)
    return Node("imod", (a, b), I64)


def _split_inner(n_out: int, zcsz: Node) -> tuple[Node, Node]:
    """(output index, contraction index) of a dot's inner index j over n_out x contraction:
    with one output element, j is the contraction index itself (no integer division by a
    runtime size in the inner loop, which would stop it vectorizing)."""
    if n_out == 1:
        return const(0), J
    return idiv(J, zcsz), imod(J, zcsz)


def icmp(op: str, a: Node, b: Node) -> Node:
    return Node(op, (a, b), BOOL)


def iand(a, b):
    if a is None:
        return b
    return Node("iand", (a, b), BOOL)


# ---- buffers, locals, statements -----------------------------------------------------------------

class Buffer:
    """A pointer argument: slot `slot` of the program's buffer table, holding `dtype`."""

    __slots__ = ("slot", "dtype", "role")

    def __init__(self, slot: int, dtype, role: str = "in"):
        self.slot = slot
        self.dtype = np.dtype(dtype)
        self.role = role  # in | out | scratch

    def __repr__(self):
        return f"b{self.slot}"


def size_key(n: Node):
    """A hashable key of a size Node (equal keys: equal sizes in every program instance)."""
    return repr(n)


class Local:
    """A per-row (or, in the prologue, per-call) temporary: `size` elements of `dtype`
    (`size` None: a scalar). `zsize`: the size as rendered (a Node: a constant when every
    dimension is small, else in runtime sizes), so that the source does not depend on it."""

    __slots__ = ("name", "dtype", "size", "zsize")

    def __init__(self, name, dtype, size, zsize=None):
        self.name = name
        self.dtype = np.dtype(dtype)
        self.size = size
        self.zsize = zsize if zsize is not None or size is None else const(size)

    def __repr__(self):
        return self.name


class Assign:
    """local[j] = expr for j < local.size (local = expr when scalar)."""

    __slots__ = ("local", "expr")

    def __init__(self, local, expr):
        self.local, self.expr = local, expr


class Reduce:
    """local[:] = init; for j < n: local[out] = op(local[out], expr)  (within a row).
    `n` an int (decisions), `zn` the same as a size Node (rendering); likewise below."""

    __slots__ = ("local", "expr", "n", "out", "op", "zn")

    def __init__(self, local, expr, n, out, op, zn=None):
        self.local, self.expr, self.n, self.out, self.op = local, expr, n, out, op
        self.zn = zn if zn is not None or n is None else const(n)


class Store:
    """for j < n: buf[offset] = expr."""

    __slots__ = ("buf", "offset", "expr", "n", "zn")

    def __init__(self, buf, offset, expr, n, zn=None):
        self.buf, self.offset, self.expr, self.n = buf, offset, expr, n
        self.zn = zn if zn is not None or n is None else const(n)


class Accum:
    """Cross-row reduction step: for j < n: red.acc[out] = op(red.acc[out], expr)."""

    __slots__ = ("red", "expr", "n", "out", "zn")

    def __init__(self, red, expr, n, out, zn=None):
        self.red, self.expr, self.n, self.out = red, expr, n, out
        self.zn = zn if zn is not None or n is None else const(n)


class RowReduction:
    """A reduction over the rows: chunk-private accumulator `acc` (size elements), partial
    results per chunk in `partial` (scratch, chunks x size), combined in order into `out`."""

    __slots__ = ("acc", "op", "size", "out", "partial", "zsize")

    def __init__(self, acc, op, size, out, partial):
        self.acc, self.op, self.size, self.out, self.partial = acc, op, size, out, partial
        self.zsize = acc.zsize


class Scatter:
    """A segment sum ending the kernel: out[idx[q]] += upd[q] over the recorded q in order.
    `per_row` indices per row, `width` elements per index, `m` rows of the output. `operand`:
    an expression in R (the flat output index) or None for zeros. mode "sum_then_add"
    (out = operand + sum, the sum started from zero) or "add_into" (out = operand, then each
    update added in turn), as the interpreter's implementation does. `zper_row`, `zwidth`:
    those sizes as Nodes (rendering)."""

    __slots__ = ("out", "operand", "idx", "upd", "per_row", "width", "m", "mode", "dtype",
                 "zper_row", "zwidth")

    def __init__(self, out, operand, idx, upd, per_row, width, m, mode, dtype,
                 zper_row=None, zwidth=None):
        self.out, self.operand, self.idx, self.upd = out, operand, idx, upd
        self.per_row, self.width, self.m, self.mode = per_row, width, m, mode
        self.dtype = np.dtype(dtype)
        self.zper_row = zper_row if zper_row is not None else const(per_row)
        self.zwidth = zwidth if zwidth is not None else const(width)


class Kernel:
    """One fused loop nest (see the module docstring)."""

    __slots__ = ("name", "rows", "prologue", "body", "reductions", "scatters", "buffers",
                 "locals", "cost", "cost_terms", "eqns")

    def __init__(self, name):
        self.name = name
        self.rows = None  # Node (row count) or None
        self.prologue: list = []
        self.body: list = []
        self.reductions: list[RowReduction] = []
        self.scatters: list[Scatter] = []
        self.buffers: dict[int, Buffer] = {}
        self.locals: list[Local] = []
        self.cost = 0  # rough work per row (for the parallel threshold)
        # the same as sum(coefficient * size) over size Nodes: {size_key: [Node, coefficient]}
        # (the rendered threshold must not depend on large sizes)
        self.cost_terms: dict = {}
        self.eqns = 0

    def add_cost(self, coeff: int, n: Node | None, value: int | None):
        """Add coeff * n (n None: coeff) to the row cost."""
        self.cost += coeff * (value or 1)
        n = n if n is not None else const(1)
        term = self.cost_terms.setdefault(size_key(n), [n, 0])
        term[1] += coeff

    def __repr__(self):
        return f"Kernel({self.name}, rows={self.rows}, {self.eqns} eqns)"


# ---- lowering a scheduled group ---------------------------------------------------------------

_COSTLY = {"exp", "expm1", "log", "log1p", "sin", "cos", "tan", "asin", "acos", "atan", "sinh",
           "cosh", "tanh", "pow", "atan2", "sqrt", "div"}


class ProgramLayout:
    """What lowering needs from the executor: the slot of every materialized value in the
    program's buffer table, scratch slots, and the runtime size table."""

    def __init__(self):
        self.slots: dict = {}  # Var -> slot
        self.slot_info: list = []  # slot -> (kind, shape, dtype); kind: var | scratch | sizes | err
        self.sizes: list[int] = []  # the runtime size table (complete after finish())
        self._size_nodes: dict[int, Node] = {}
        self._shared: list[int] = []  # values of the per-value entries (numbered last)
        self.sizes_slot = self._new_slot(("sizes", None, I64))
        self.err_slot = self._new_slot(("err", (1,), I64))

    def _new_slot(self, info) -> int:
        self.slot_info.append(info)
        return len(self.slot_info) - 1

    def slot_of(self, v: Var) -> int:
        s = self.slots.get(v)
        if s is None:
            s = self.slots[v] = self._new_slot(("var", v.aval.shape, v.aval.dtype))
        return s

    def scratch(self, n_elements: int, dtype) -> int:
        return self._new_slot(("scratch", (int(n_elements),), np.dtype(dtype)))

    def dim(self, n: int) -> Node:
        """A dimension in index arithmetic: a constant when small, else a runtime size."""
        n = int(n)
        if n <= SMALL_DIM:
            return const(n)
        return self.size(n)

    def size(self, n: int) -> Node:
        """A runtime size (Z[i]), whatever its value: one entry per value (dimensions in
        index arithmetic, whose equality the lowering relies on)."""
        n = int(n)
        node = self._size_nodes.get(n)
        if node is None:  # numbered by finish()
            node = self._size_nodes[n] = Node("size", dtype=I64, arg=-1 - len(self._shared))
            self._shared.append(n)
        return node

    def finish(self):
        """Number the per-value entries after the per-use ones: how many per-value entries a
        program has depends on which of its sizes coincide, the per-use ones do not."""
        base = len(self.sizes)
        for node in self._size_nodes.values():
            node.arg = base + (-1 - node.arg)
        self.sizes = self.sizes + self._shared

    def fresh(self, n: int) -> Node:
        """A runtime size with its own entry (row counts, index bounds, integer literals):
        numbered by first use, so that values which coincide in one program instance and
        not in another (list capacities that happen to be equal) give the same source."""
        node = Node("size", dtype=I64, arg=len(self.sizes))
        self.sizes.append(int(n))
        return node


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _as_i64(n: Node) -> Node:
    return n if n.dtype == I64 else Node("cast", (n,), I64)


def is_zero_value(v, lazy) -> bool:
    """Is v a broadcast (or reshape) of the literal zero?"""
    while not isinstance(v, Literal):
        e = lazy.get(v)
        if e is None or e.prim.name not in ("broadcast_in_dim", "reshape"):
            return False
        v = e.inputs[0]
    return bool(v.val == 0)


class _Lowering:
    def __init__(self, kernel: Kernel, group, lazy: dict, layout: ProgramLayout):
        self.k = kernel
        self.group = group
        self.lazy = lazy
        self.layout = layout
        self.local_of: dict = {}  # Var -> Local
        self.index_locals: dict = {}  # (index Var, bound) -> Local of wrapped indices
        self.in_body = False
        self._unr: dict = {}

    # -- index helpers --
    def dims(self, shape) -> list:
        return [self.layout.dim(d) for d in shape]

    def prod(self, shape) -> Node:
        """The number of elements of `shape` as a size Node: a constant when every dimension
        is small, else a product in runtime sizes."""
        p = const(1)
        for d in self.dims(shape):
            p = imul(p, d)
        return p

    @staticmethod
    def _key(dims):
        return tuple((d.op, d.arg) for d in dims)

    def unravel(self, flat: Node, shape) -> tuple:
        dims = self.dims(shape)
        if not dims:
            return ()
        strides, s = [], const(1)
        for d in reversed(dims):
            strides.append(s)
            s = imul(s, d)
        strides.reverse()
        out = []
        for i, (d, st) in enumerate(zip(dims, strides)):
            if is_const(d, 1):
                out.append(const(0))
                continue
            q = idiv(flat, st)
            out.append(q if i == 0 else imod(q, d))
        if len(out) == 1 and not is_const(out[0], 0):
            out = [flat]  # a single axis: the flat index itself
        out = tuple(out)
        self._unr[tuple(map(id, out))] = (flat, self._key(dims), out)
        return out

    def _hit(self, idx, dims):
        h = self._unr.get(tuple(map(id, idx)))
        return h[0] if h is not None and h[1] == self._key(dims) else None

    def ravel(self, idx, shape) -> Node:
        if not idx:
            return const(0)
        dims = self.dims(shape)
        flat = self._hit(idx, dims)
        if flat is not None:
            return flat
        if len(idx) > 1:
            tail = self._hit(idx[1:], dims[1:])
            if tail is not None:
                inner = const(1)
                for d in dims[1:]:
                    inner = imul(inner, d)
                return iadd(imul(idx[0], inner), tail)
        flat = const(0)
        for i, d in zip(idx, dims):
            flat = iadd(imul(flat, d), i)
        return flat

    def row_index(self, shape) -> tuple:
        return (K,) + self.unravel(J, shape[1:])

    # -- buffers and locals --
    def buffer(self, v: Var, role="in") -> Buffer:
        slot = self.layout.slot_of(v)
        b = self.k.buffers.get(slot)
        if b is None:
            b = self.k.buffers[slot] = Buffer(slot, v.aval.dtype, role)
        elif role == "out":
            b.role = "out"
        return b

    def scratch(self, n, dtype) -> Buffer:
        slot = self.layout.scratch(n, dtype)
        b = self.k.buffers[slot] = Buffer(slot, dtype, "scratch")
        return b

    def new_local(self, dtype, inner_shape) -> Local:
        size = _size(inner_shape) if inner_shape else None
        loc = Local(f"t{len(self.k.locals)}", dtype, size,
                    self.prod(inner_shape) if inner_shape else None)
        self.k.locals.append(loc)
        return loc

    @property
    def stmts(self):
        return self.k.body if self.in_body else self.k.prologue

    # -- the element of a value at a multi-index --
    def emit(self, x, idx) -> Node:
        if isinstance(x, Literal):
            v = x.val.item() if hasattr(x.val, "item") else x.val
            if x.aval.dtype.kind in "iu" and v >= 2:
                # integers (sizes, strides, offsets) are runtime values, as sizes are
                n = self.layout.fresh(v)
                return n if x.aval.dtype == I64 else Node("cast", (n,), x.aval.dtype)
            return const(v, x.aval.dtype)
        loc = self.local_of.get(x)
        if loc is not None:
            if x.aval.shape:
                assert idx[0] is K, "a row value read at another row"
            if loc.size is None:
                return Node("read", (), loc.dtype, loc)
            return Node("read", (self.ravel(idx[1:], x.aval.shape[1:]),), loc.dtype, loc)
        e = self.lazy.get(x)
        if e is not None:
            return self.emit_lazy(e, idx)
        buf = self.buffer(x)
        return Node("load", (self.ravel(idx, x.aval.shape),), x.aval.dtype, buf)

    def emit_lazy(self, e, idx) -> Node:
        name = e.prim.name
        p = e.params
        x = e.inputs[0]
        out_shape = e.outvars[0].aval.shape
        in_shape = x.aval.shape
        if name == "reshape":
            if in_shape and out_shape and in_shape[0] == out_shape[0]:
                flat = self.ravel(idx[1:], out_shape[1:])
                return self.emit(x, (idx[0],) + self.unravel(flat, in_shape[1:]))
            return self.emit(x, self.unravel(self.ravel(idx, out_shape), in_shape))
        if name == "broadcast_in_dim":
            new = tuple(
                idx[d] if in_shape[s] == out_shape[d] else const(0)
                for s, d in enumerate(p["broadcast_dimensions"])
            )
            return self.emit(x, new)
        if name == "transpose":
            new = [None] * len(idx)
            for d, src in enumerate(p["permutation"]):
                new[src] = idx[d]
            return self.emit(x, tuple(new))
        if name == "slice":
            new = tuple(
                iadd(const(s), imul(i, const(st)))
                for i, s, st in zip(idx, p["start_indices"], p["strides"])
            )
            return self.emit(x, new)
        if name == "pad":
            new, valid = [], None
            for i, (lo, hi, interior), n in zip(idx, p["padding_config"], in_shape):
                if lo == 0 and hi == 0 and interior == 0:
                    new.append(i)
                    continue
                step = interior + 1
                shifted = iadd(i, const(-lo)) if lo else i
                ok = icmp("ige", shifted, const(0))
                if step > 1:
                    ok = iand(ok, icmp("ieq", imod(shifted, const(step)), const(0)))
                pos = idiv(shifted, const(step))
                ok = iand(ok, icmp("ilt", pos, self.layout.dim(n)))
                valid = iand(valid, ok)
                new.append(Node("where", (ok, pos, const(0)), I64))  # in bounds when unused
            val = self.emit(x, tuple(new))
            if valid is None:
                return val
            return Node("where", (valid, val, const(0, val.dtype)), val.dtype)
        if name == "concatenate":
            # every part is read at an in-bounds index (clamped where it is not selected)
            dim = p["dimension"]
            parts, start = [], 0
            for xi in e.inputs:
                n = xi.aval.shape[dim]
                sub = list(idx)
                if start == 0:
                    ok = icmp("ilt", idx[dim], self.layout.dim(n))
                    sub[dim] = Node("where", (ok, idx[dim], const(0)), I64)
                else:
                    shifted = iadd(idx[dim], const(-start))
                    ok = iand(icmp("ige", shifted, const(0)),
                              icmp("ilt", shifted, self.layout.dim(n)))
                    sub[dim] = Node("where", (ok, shifted, const(0)), I64)
                parts.append((start + n, self.emit(xi, tuple(sub))))
                start += n
            out = parts[-1][1]
            for end, val in reversed(parts[:-1]):
                cond = icmp("ilt", idx[dim], self.layout.dim(end))
                out = Node("where", (cond, val, out), val.dtype)
            return out
        if name == "gather":
            xv, iv = e.inputs
            r = iv.aval.ndim
            bound = self.layout.fresh(xv.aval.shape[0])
            if r and idx[0] is K and self.in_body:
                # the row's indices, wrapped and bounds-checked once per row
                key = (iv, xv.aval.shape[0])
                loc = self.index_locals.get(key)
                if loc is None:
                    loc = self.new_local(I64, iv.aval.shape[1:])
                    val = self.emit(iv, self.row_index(iv.aval.shape))
                    self.stmts.append(Assign(loc, Node("wrap", (_as_i64(val), bound), I64)))
                    self.index_locals[key] = loc
                if loc.size is None:
                    row = Node("read", (), I64, loc)
                else:
                    row = Node("read", (self.ravel(idx[1:r], iv.aval.shape[1:]),), I64, loc)
            else:
                row = Node("wrap", (_as_i64(self.emit(iv, tuple(idx[:r]))), bound), I64)
            return self.emit(xv, (row,) + tuple(idx[r:]))
        raise NotImplementedError(f"lazy {name}")

    # -- equations --
    def lower_eqn(self, e):
        name = e.prim.name
        if name in ("reduce_sum", "reduce_max", "reduce_min"):
            return self.lower_reduce(e)
        if name == "scatter_add":
            return self.lower_scatter(e)
        if name == "dot_general":
            return self.lower_dot(e)
        out = e.outvars[0]
        shape = out.aval.shape
        self.in_body = bool(shape)
        loc = self.new_local(out.aval.dtype, shape[1:])
        idx = self.row_index(shape) if shape else ()
        args = [self.emit(x, idx if x.aval.shape == shape else ()) for x in e.inputs]
        self.stmts.append(Assign(loc, Node("prim", args, out.aval.dtype, (e.prim, e.params))))
        self.local_of[out] = loc
        self.k.add_cost(8 if name in _COSTLY else 1, loc.zsize, loc.size)
        if out in self.group.store:
            self.store_local(out, loc)

    def store_local(self, v, loc):
        buf = self.buffer(v, "out")
        if not v.aval.shape:
            self.stmts.append(Store(buf, const(0), Node("read", (), loc.dtype, loc), None))
        elif loc.size is None:
            self.stmts.append(Store(buf, K, Node("read", (), loc.dtype, loc), None))
        else:
            off = iadd(imul(K, loc.zsize), J)
            self.stmts.append(Store(buf, off, Node("read", (J,), loc.dtype, loc), loc.size,
                                    loc.zsize))

    def lower_reduce(self, e):
        (x,) = e.inputs
        out = e.outvars[0]
        axes = e.params["axes"]
        op = {"reduce_sum": "sum", "reduce_max": "max", "reduce_min": "min"}[e.prim.name]
        in_shape = x.aval.shape
        self.in_body = True
        idx = self.row_index(in_shape)
        val = self.emit(x, idx)
        n_in = _size(in_shape[1:]) if len(in_shape) > 1 else None
        zn_in = self.prod(in_shape[1:]) if len(in_shape) > 1 else None
        kept = [d for d in range(1, len(in_shape)) if d not in axes]
        out_idx = self.ravel(tuple(idx[d] for d in kept), [in_shape[d] for d in kept])
        self.k.add_cost(1, zn_in, n_in)
        if 0 in axes:  # across rows: chunk partials, combined in order
            size = _size(out.aval.shape)
            acc = Local(f"acc{len(self.k.reductions)}", out.aval.dtype, size,
                        self.prod(out.aval.shape))
            red = RowReduction(acc, op, size, self.buffer(out, "out"), None)
            self.k.reductions.append(red)
            self.k.body.append(Accum(red, val, n_in, out_idx, zn_in))
            return
        loc = self.new_local(out.aval.dtype, out.aval.shape[1:])
        self.k.body.append(Reduce(loc, val, n_in, out_idx, op, zn_in))
        self.local_of[out] = loc
        if out in self.group.store:
            self.store_local(out, loc)

    def lower_dot(self, e):
        """dot_general as a sum of products: within each row ("rows", "batch": a Reduce
        statement) or over the rows ("over": an accumulation ending the kernel)."""
        from ..prims.elementwise import mul_p
        from .schedule import dot_kind

        x, y = e.inputs
        out = e.outvars[0]
        (lc, rc), (lb, rb) = e.params["dimension_numbers"]
        kind = dot_kind(e)
        xs, ys = x.aval.shape, y.aval.shape
        lf = [d for d in range(len(xs)) if d not in lc and d not in lb]
        rf = [d for d in range(len(ys)) if d not in rc and d not in rb]
        self.in_body = True
        if kind == "over":
            pairs = [(a, b) for a, b in zip(lc, rc) if a != 0]
            cshape = [xs[a] for a, _ in pairs]
            csz = _size(cshape)
            zcsz = self.prod(cshape)
            n = out.aval.size * csz
            zn = imul(self.prod(out.aval.shape), zcsz)
            o, c = _split_inner(out.aval.size, zcsz)
            oi = self.unravel(o, out.aval.shape)
            ci = self.unravel(c, cshape)
            lidx = [K if d == 0 else (oi[lf.index(d)] if d in lf else
                                      ci[[a for a, _ in pairs].index(d)]) for d in range(len(xs))]
            ridx = [K if d == 0 else (oi[len(lf) + rf.index(d)] if d in rf else
                                      ci[[b for _, b in pairs].index(d)]) for d in range(len(ys))]
            expr = Node("prim", (self.emit(x, tuple(lidx)), self.emit(y, tuple(ridx))),
                        out.aval.dtype, (mul_p, {}))
            acc = Local(f"acc{len(self.k.reductions)}", out.aval.dtype, out.aval.size,
                        self.prod(out.aval.shape))
            red = RowReduction(acc, "sum", out.aval.size, self.buffer(out, "out"), None)
            self.k.reductions.append(red)
            self.k.body.append(Accum(red, expr, n, o, zn))
            self.k.add_cost(2, zn, n)
            return
        cshape = [xs[d] for d in lc]
        csz = _size(cshape)
        zcsz = self.prod(cshape)
        inner = out.aval.shape[1:]
        n = _size(inner) * csz
        zn = imul(self.prod(inner), zcsz)
        o, c = _split_inner(_size(inner), zcsz)
        oi = (K,) + self.unravel(o, inner)
        ci = self.unravel(c, cshape)
        nb = len(lb)
        lidx = [oi[lb.index(d)] if d in lb else (oi[nb + lf.index(d)] if d in lf else
                                                 ci[lc.index(d)]) for d in range(len(xs))]
        ridx = [oi[rb.index(d)] if d in rb else (oi[nb + len(lf) + rf.index(d)] if d in rf else
                                                 ci[rc.index(d)]) for d in range(len(ys))]
        expr = Node("prim", (self.emit(x, tuple(lidx)), self.emit(y, tuple(ridx))),
                    out.aval.dtype, (mul_p, {}))
        loc = self.new_local(out.aval.dtype, inner)
        if csz == 1:  # no contraction: an elementwise product (outer or batched)
            self.k.body.append(Assign(loc, expr))
        else:
            self.k.body.append(Reduce(loc, expr, n if n > 1 or inner else None, o, "sum",
                                      zn if n > 1 or inner else None))
        self.local_of[out] = loc
        self.k.add_cost(2, zn, n)
        if out in self.group.store:
            self.store_local(out, loc)

    def lower_scatter(self, e):
        operand, iv, upd = e.inputs
        out = e.outvars[0]
        self.in_body = True
        n_rows = iv.aval.shape[0]
        per_row = _size(iv.aval.shape[1:])
        width = _size(operand.aval.shape[1:])
        zper_row = self.prod(iv.aval.shape[1:])
        zwidth = self.prod(operand.aval.shape[1:])
        m = operand.aval.shape[0]
        # indices, wrapped and bounds-checked, recorded per row
        idx_buf = self.scratch(n_rows * per_row, I64)
        ival = self.emit(iv, self.row_index(iv.aval.shape))
        m_node = self.layout.fresh(m)
        wrapped = Node("wrap", (_as_i64(ival), m_node), I64)
        inner_i = len(iv.aval.shape) > 1
        self.k.body.append(Store(idx_buf, iadd(imul(K, zper_row), J if inner_i else
                                               const(0)), wrapped, per_row if inner_i else None,
                                 zper_row if inner_i else None))
        # updates, recorded per row
        row_u = per_row * width
        zrow_u = imul(zper_row, zwidth)
        upd_buf = self.scratch(n_rows * row_u, upd.aval.dtype)
        uval = self.emit(upd, self.row_index(upd.aval.shape))
        inner_u = len(upd.aval.shape) > 1
        self.k.body.append(Store(upd_buf, iadd(imul(K, zrow_u), J if inner_u else
                                               const(0)), uval, row_u if inner_u else None,
                                 zrow_u if inner_u else None))
        self.k.add_cost(2, zrow_u, row_u)
        operand_expr = None
        if not is_zero_value(operand, self.lazy):
            self.in_body = False
            operand_expr = self.emit(operand, self.unravel(R, operand.aval.shape))
        mode = "sum_then_add" if (out.aval.dtype.kind == "f" and width <= 16) else "add_into"
        self.k.scatters.append(Scatter(self.buffer(out, "out"), operand_expr, idx_buf, upd_buf,
                                       per_row, width, m_node, mode,
                                       out.aval.dtype, zper_row, zwidth))


def lower_group(group, lazy: dict, layout: ProgramLayout, name: str) -> Kernel:
    """The kernel description of a scheduled group (see schedule.py)."""
    k = Kernel(name)
    k.rows = layout.fresh(group.rows) if group.rows is not None else None
    low = _Lowering(k, group, lazy, layout)
    for e in group.eqns:
        low.lower_eqn(e)
    k.eqns = len(group.eqns)
    for red in k.reductions:
        chunks = max(1, -(-int(group.rows) // CHUNK))
        red.partial = low.scratch(chunks * red.size, red.acc.dtype)
    return k
