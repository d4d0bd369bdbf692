"""C renderer: one C function per kernel description, OpenMP-parallel over chunks of rows when
a kernel has enough work, plus one entry function per segment (kernels run back to back
between host steps). All kernels of a program form one translation unit (one compiler call).

Entry functions come in two forms: `seg<i>(PyObject *list)` reads the buffers' data pointers
straight from a Python list of NumPy arrays (the fast path; the layout is checked at load time
by `rg_probe`), and `seg<i>_p(void **ptrs)` takes the pointers themselves.
"""
from __future__ import annotations

import math

import numpy as np

from .kernel import CHUNK, Accum, Assign, J, Kernel, Node, Reduce, Store, is_const, size_key

CTYPES = {
    np.dtype(np.float64): "double",
    np.dtype(np.float32): "float",
    np.dtype(np.int64): "int64_t",
    np.dtype(np.int32): "int32_t",
    np.dtype(np.bool_): "uint8_t",  # not _Bool: GCC does not vectorize selects on _Bool loads
}
_MATH = ("expm1", "exp", "log1p", "log", "sinh", "cosh", "tanh", "asin", "acos", "atan2", "atan",
         "sin", "cos", "tan", "sqrt", "fabs", "floor", "ceil", "rint", "pow")
PAR_WORK = 1 << 21  # rows x cost above which a kernel runs on all threads (~1 ms of work)

PRELUDE = r"""#include <math.h>
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* leading fields of CPython's list object and NumPy's array object (checked by rg_probe) */
typedef struct { intptr_t refcnt; void *type; intptr_t size; void **item; } rg_list;
typedef struct { intptr_t refcnt; void *type; char *data; } rg_array;
#define RG_DATA(S, i) ((void *) ((rg_array *) ((rg_list *) (S))->item[i])->data)

#ifdef RG_MVEC  /* glibc's vector math library: SIMD loops call its vector variants */
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
double sin(double);
#pragma omp declare simd notinbranch
double cos(double);
#pragma omp declare simd notinbranch
double pow(double, double);
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float logf(float);
#pragma omp declare simd notinbranch
float sinf(float);
#pragma omp declare simd notinbranch
float cosf(float);
#pragma omp declare simd notinbranch
float powf(float, float);
#if RG_MVEC >= 2
#pragma omp declare simd notinbranch
double expm1(double);
#pragma omp declare simd notinbranch
double log1p(double);
#pragma omp declare simd notinbranch
double tan(double);
#pragma omp declare simd notinbranch
double asin(double);
#pragma omp declare simd notinbranch
double acos(double);
#pragma omp declare simd notinbranch
double atan(double);
#pragma omp declare simd notinbranch
double sinh(double);
#pragma omp declare simd notinbranch
double cosh(double);
#pragma omp declare simd notinbranch
double tanh(double);
#pragma omp declare simd notinbranch
double atan2(double, double);
#pragma omp declare simd notinbranch
float expm1f(float);
#pragma omp declare simd notinbranch
float log1pf(float);
#pragma omp declare simd notinbranch
float tanf(float);
#pragma omp declare simd notinbranch
float asinf(float);
#pragma omp declare simd notinbranch
float acosf(float);
#pragma omp declare simd notinbranch
float atanf(float);
#pragma omp declare simd notinbranch
float sinhf(float);
#pragma omp declare simd notinbranch
float coshf(float);
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
float atan2f(float, float);
#endif
#endif

typedef union { double d; float f; int64_t i; int32_t i32; uint8_t b; } rg_u;
#define RG_HIDDEN __attribute__((visibility("hidden")))

#ifndef RG_UNIT  /* the settings live in one unit when the source is compiled in parts */
RG_HIDDEN int rg_par = 1;      /* 0 after fork in a child process: run serially */
RG_HIDDEN int rg_threads = 0;  /* 0: the OpenMP default */
void rg_set_parallel(int on) { rg_par = on; }
void rg_set_threads(int n) { rg_threads = n; }
void *rg_probe(void *list, int64_t i) { return RG_DATA(list, i); }
#else
extern RG_HIDDEN int rg_par, rg_threads;
#endif
static inline int rg_nthreads(void) {
#ifdef _OPENMP
    return rg_threads > 0 ? rg_threads : omp_get_max_threads();
#else
    return 1;
#endif
}
static inline int64_t rg_wrap(int64_t i, int64_t n, int64_t *err) {
    if (i < 0) i += n;
    if (i < 0 || i >= n) { *err = 1; return 0; }
    return i;
}
"""


def ctype(dtype) -> str:
    return CTYPES[np.dtype(dtype)]


def literal(value, dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return "1" if value else "0"
    if dtype.kind in "iu":
        v = int(value)
        return f"INT64_C({v})" if dtype.itemsize == 8 else f"((int32_t) {v})"
    v = float(value)
    if math.isnan(v):
        s = "NAN"
    elif math.isinf(v):
        s = "INFINITY" if v > 0 else "(-INFINITY)"
    else:
        s = repr(v)
        if "e" not in s and "." not in s:
            s += ".0"
        if v < 0 or s.startswith("-"):
            s = f"({s})"
    return s if dtype == np.float64 else f"((float) {s})"


class ExprRenderer:
    """Renders expression Nodes as C (shared with the CUDA renderer). Helper functions that
    expressions need (integer powers, NaN-propagating max/min, sign) are collected in
    `helpers`."""

    def __init__(self, fn_prefix: str = "static inline"):
        self.helpers: dict[str, str] = {}
        self.fn_prefix = fn_prefix
        self.j = "j"  # how the statement's inner index is written (a constant when unrolled)
        self.local_ref = None  # (Local, index or None) -> C lvalue, for row values
        self.wrap_names: dict = {}  # id(wrap node) -> name of its hoisted value

    def helper(self, name: str, code: str) -> str:
        self.helpers.setdefault(name, code)
        return name

    def __call__(self, n: Node) -> str:
        op = n.op
        if op == "const":
            return literal(n.arg, n.dtype)
        if op == "j":
            return self.j
        if op in ("k", "r"):
            return op
        if op == "size":
            return f"Z[{n.arg}]"
        if op == "read":
            idx = self(n.args[0]) if n.args else None
            if self.local_ref is not None:
                return self.local_ref(n.arg, idx, n.args[0] if n.args else None)
            return n.arg.name if idx is None else f"{n.arg.name}[{idx}]"
        if op == "load":
            return f"b{n.arg.slot}[{self(n.args[0])}]"
        if op == "prim":
            return self.prim(n)
        if op == "where":
            c, a, b = (self(x) for x in n.args)
            return f"{self.select(ctype(n.dtype))}({c}, {a}, {b})"
        if op == "cast":
            x = self(n.args[0])
            if n.dtype.kind == "b":
                return f"({x} != 0)"
            return f"(({ctype(n.dtype)}) {x})"
        if op == "wrap":
            name = self.wrap_names.get(id(n))
            if name is not None:
                return name
            return f"rg_wrap({self(n.args[0])}, {self(n.args[1])}, err)"
        a, b = (self(x) for x in n.args)
        sym = {"iadd": "+", "imul": "*", "idiv": "/", "imod": "%", "ilt": "<", "ige": ">=",
               "ieq": "==", "iand": "&&"}[op]
        return f"({a} {sym} {b})"

    def prim(self, n: Node) -> str:
        from ..primitive import c_exprs

        prim, params = n.arg
        name = prim.name
        args = [self(x) for x in n.args]
        in_dtype = n.args[0].dtype if n.args else n.dtype
        if name == "select":
            in_dtype = n.args[1].dtype
        t = ctype(in_dtype)
        if name == "select":
            return f"{self.select(t)}({args[0]}, {args[1]}, {args[2]})"
        if name == "integer_pow":
            return f"{self.ipow(params['y'], t)}({args[0]})"
        if name in ("max", "min"):
            return f"{self.minmax(name, t, in_dtype.kind == 'f')}({args[0]}, {args[1]})"
        if name == "sign":
            return f"{self.sign(t, in_dtype.kind == 'f')}({args[0]})"
        if name == "abs" and in_dtype.kind != "f":
            return f"({args[0]} < 0 ? -{args[0]} : {args[0]})"
        if name == "convert_element_type":
            if n.dtype.kind == "b":
                return f"({args[0]} != 0)"
            return f"(({ctype(n.dtype)}) {args[0]})"
        template = c_exprs[prim]
        if in_dtype == np.float32:
            for f in _MATH:
                template = template.replace(f"{f}(", f"{f}f(")
        return template.format(*args, **params)

    def ipow(self, y: int, t: str) -> str:
        """x**y by the interpreter's sequence of multiplications (|y| <= 8), else pow."""
        name = f"rg_ipow_{'m' if y < 0 else ''}{abs(y)}_{t}"
        if name in self.helpers:
            return name
        n = abs(y)
        if n == 0 or n > 8:
            powf = "powf" if t == "float" else "pow"
            body = f"return {powf}(x, ({t}) {y});"
        else:
            lines, acc = [f"{t} base = x;"], None
            while n:
                if n & 1:
                    rhs = "base" if acc is None else f"{acc} * base"
                    lines.append(f"{t} acc{len(lines)} = {rhs};")
                    acc = f"acc{len(lines) - 1}"
                n >>= 1
                if n:
                    lines.append("base = base * base;")
            lines.append(f"return {'(' + t + ') 1 / ' + acc if y < 0 else acc};")
            body = " ".join(lines)
        return self.helper(name, f"{self.fn_prefix} {t} {name}({t} x) {{ {body} }}")

    def select(self, t: str) -> str:
        """c ? a : b with both sides evaluated (they always are in NumPy): the loads are then
        unconditional and SIMD loops blend instead of using masked loads, which GCC 12
        miscompiles for AVX-512 on interleaved accesses (wrong rows in strided selects)."""
        name = f"rg_select_{t}"
        return self.helper(name, f"{self.fn_prefix} {t} {name}(int c, {t} a, {t} b) "
                                 f"{{ return c ? a : b; }}")

    def minmax(self, which: str, t: str, is_float: bool) -> str:
        name = f"rg_{which}_{t}"
        cmp = ">=" if which == "max" else "<="
        nan = " || a != a" if is_float else ""
        return self.helper(
            name, f"{self.fn_prefix} {t} {name}({t} a, {t} b) "
                  f"{{ return (a {cmp} b{nan}) ? a : b; }}")

    def sign(self, t: str, is_float: bool) -> str:
        name = f"rg_sign_{t}"
        tail = "a" if is_float else "0"  # zeros keep their sign, NaN stays NaN
        return self.helper(
            name, f"{self.fn_prefix} {t} {name}({t} a) "
                  f"{{ return a > 0 ? ({t}) 1 : (a < 0 ? ({t}) -1 : {tail}); }}")


def reduce_init(op: str, dtype) -> str:
    dtype = np.dtype(dtype)
    if op == "sum":
        return literal(0, dtype)
    if dtype.kind == "f":
        return literal(-np.inf if op == "max" else np.inf, dtype)
    info = np.iinfo(dtype)
    return literal(info.min if op == "max" else info.max, dtype)


def combine(er: ExprRenderer, op: str, dtype, a: str, b: str) -> str:
    if op == "sum":
        return f"{a} + {b}"
    return f"{er.minmax(op, ctype(dtype), np.dtype(dtype).kind == 'f')}({a}, {b})"


def render_stmt(er: ExprRenderer, s, out: list, ind: str):
    """Append the C lines of one prologue statement (scalar code, run once per call)."""
    if isinstance(s, Assign):
        assert s.local.size is None, "prologue values are scalars"
        out.append(f"{ind}const {ctype(s.local.dtype)} {s.local.name} = {er(s.expr)};")
    elif isinstance(s, Store):
        assert s.n is None
        out.append(f"{ind}b{s.buf.slot}[{er(s.offset)}] = {er(s.expr)};")
    else:  # pragma: no cover - the prologue holds only these
        raise TypeError(type(s).__name__)


# ---- rows: blocks of BLOCK rows, one SIMD loop per statement ------------------------------------

BLOCK = 64  # rows per block: every row value lives in a BLOCK-long array (L1-resident)
BLOCK_ELEMENTS = 4096  # fewer rows per block when values have long trailing axes
W_STACK = 1 << 18  # block workspaces above this many bytes go on the heap
UNROLL = 8  # trailing sizes up to this are unrolled (SIMD over rows); larger ones SIMD over j


def zs(n: Node) -> str:
    """A size Node (constant, runtime size, product) as C: large sizes are read from Z, so
    that the source does not depend on them."""
    if n.op == "const":
        return str(int(n.arg))
    if n.op == "size":
        return f"Z[{n.arg}]"
    if n.op == "imul":
        return f"({zs(n.args[0])} * {zs(n.args[1])})"
    raise ValueError(f"not a size: {n!r}")


def cost_expr(k: Kernel) -> str:
    """The kernel's work per row as C: a constant plus multiples of runtime sizes."""
    c0, terms = 0, []
    for n, c in k.cost_terms.values():
        if is_const(n):
            c0 += c * int(n.arg)
        else:
            terms.append(f"{c} * {zs(n)}")
    if not terms:
        return str(max(1, c0))
    return "(" + " + ".join([str(c0)] * bool(c0) + terms) + ")"


def _reads(node, acc):
    if node.op == "read" and node.args is not None:
        acc.append(node.arg)
    for a in node.args:
        _reads(a, acc)
    return acc


def _wraps(node, acc, seen):
    for a in node.args:
        _wraps(a, acc, seen)
    if node.op == "wrap" and id(node) not in seen:
        seen.add(id(node))
        acc.append(node)
    return acc


def _wraps_in(exprs) -> bool:
    def walk(n):
        return n.op == "wrap" or any(walk(a) for a in n.args)

    return any(walk(e) for e in exprs)


def _stmt_exprs(s):
    if isinstance(s, Store):
        return [s.offset, s.expr]
    if isinstance(s, (Reduce, Accum)):
        return [s.expr, s.out]
    return [s.expr]


class _RowLayout:
    """Block arrays for the row values of a kernel body, at offsets in a per-thread workspace
    `W`; an array is reused once the value it holds is dead.

    `dynamic` (some trailing size is a runtime value): the rows per block (`blk`) are computed
    at kernel entry, arrays with long rows ("aos") and large accumulators lie at runtime
    offsets `WO[i]` after the static part, and "soa" arrays have the stride BLOCK (the source
    does not depend on the runtime sizes)."""

    def __init__(self, body, keep=lambda loc: True, block=BLOCK, dynamic=False):
        self.block = BLOCK if dynamic else block  # the stride of soa arrays
        self.dynamic = dynamic
        self.where: dict = {}  # Local -> (array name, kind, size as C)
        self.arrays: dict = {}  # name -> (ctype, offset in bytes as C)
        self.nbytes = 0  # the static part
        self.dyn: list = []  # C expressions: bytes of the arrays at WO[i]
        last: dict = {}
        for i, s in enumerate(body):
            for e in _stmt_exprs(s):
                for loc in _reads(e, []):
                    last[loc] = i
        free: dict = {}
        for i, s in enumerate(body):
            if isinstance(s, (Assign, Reduce)) and keep(s.local):
                loc = s.local
                size = loc.size or 1
                kind = "s" if loc.size is None else ("soa" if size <= UNROLL else "aos")
                zsize = "1" if loc.size is None else zs(loc.zsize)
                key = (ctype(loc.dtype), kind, zsize)
                pool = free.get(key)
                if pool:
                    name = pool.pop()
                else:
                    name = f"r{len(self.arrays)}"
                    isz = np.dtype(loc.dtype).itemsize
                    if kind == "aos" and dynamic:
                        off = self.alloc_dynamic(f"blk * {zsize} * {isz}")
                    else:
                        off = self.alloc(self.block * size * isz)
                    self.arrays[name] = (key[0], off)
                self.where[loc] = (name, kind, zsize)
            for e in _stmt_exprs(s):
                for loc in dict.fromkeys(_reads(e, [])):  # first-read order: deterministic
                    if last.get(loc) == i and loc in self.where:
                        name, kind, zsize = self.where[loc]
                        free.setdefault((ctype(loc.dtype), kind, zsize), []).append(name)
                        last.pop(loc)

    def alloc(self, nbytes: int) -> str:
        off = self.nbytes
        self.nbytes += -(-nbytes // 64) * 64
        return str(off)

    def alloc_dynamic(self, nbytes: str) -> str:
        """Room for `nbytes` (a C expression) at a runtime offset."""
        self.dyn.append(nbytes)
        return f"WO[{len(self.dyn) - 1}]"

    def ref(self, loc, idx: str | None) -> str:
        name, kind, size = self.where[loc]
        if kind == "s":
            return f"{name}[kk]"
        if kind == "soa":
            return f"{name}[({idx}) * {self.block} + kk]"
        return f"{name}[kk * {size} + ({idx})]"

    def entry(self, widths) -> list:
        """C lines (kernel entry) computing `blk`, the offsets WO and the size `wbytes` of a
        dynamic workspace; `widths`: the row sizes (Nodes) that bound the rows per block."""
        c0, exprs = 1, []
        for w in widths:
            if is_const(w):
                c0 = max(c0, int(w.arg))
            elif zs(w) not in exprs:
                exprs.append(zs(w))
        lines = [f"    int64_t blk = {BLOCK}, wmax = {c0};"]
        lines += [f"    if ({e} > wmax) wmax = {e};" for e in exprs]
        lines.append(f"    while (blk > 1 && blk * wmax > {BLOCK_ELEMENTS}) blk /= 2;")
        lines.append(f"    int64_t WO[{len(self.dyn) + 1}];")
        lines.append(f"    WO[0] = {self.nbytes};")
        for i, e in enumerate(self.dyn):
            lines.append(f"    WO[{i + 1}] = WO[{i}] + ({e} + 63) / 64 * 64;")
        lines.append(f"    const int64_t wbytes = WO[{len(self.dyn)}] > 64 ? "
                     f"WO[{len(self.dyn)}] : 64;")
        return lines


def _hoist_wraps(er, exprs, lines, ind, tag):
    """Hoisted index wraps: non-negative, bounds-checked (errors OR-ed into `bad`), clamped."""
    wraps = []
    seen: set = set()
    for e in exprs:
        _wraps(e, wraps, seen)
    for n, w in enumerate(wraps):
        name = f"w{tag}_{n}"
        raw, bound = er(w.args[0]), er(w.args[1])
        lines.append(f"{ind}const int64_t {name}r = {raw};")
        lines.append(f"{ind}const int64_t {name}a = {name}r < 0 ? {name}r + {bound} : {name}r;")
        lines.append(f"{ind}const int {name}ok = (uint64_t) {name}a < (uint64_t) {bound};")
        lines.append(f"{ind}bad |= !{name}ok;")
        lines.append(f"{ind}const int64_t {name} = {name}ok ? {name}a : 0;")
        er.wrap_names[id(w)] = name


def _row_stmt(er: ExprRenderer, lay: _RowLayout, s, lines: list, ind: str, sid: int):
    """One body statement as a loop over the rows of the block."""
    size = {Assign: lambda: s.local.size, Reduce: lambda: s.n, Store: lambda: s.n,
            Accum: lambda: s.n}[type(s)]()
    zsize = {Assign: lambda: s.local.zsize, Reduce: lambda: s.zn, Store: lambda: s.zn,
             Accum: lambda: s.zn}[type(s)]()
    zsize = "1" if zsize is None else zs(zsize)  # loop bounds (large sizes from Z)
    er.wrap_names = {}
    bad = " reduction(|:bad)" if _wraps_in(_stmt_exprs(s)) else ""
    if isinstance(s, Accum):
        red = s.red
        acc, t = red.acc.name, ctype(red.acc.dtype)
        if red.op == "sum" and red.size == 1 and (size is None or size <= UNROLL):
            lines.append(f"{ind}{{ {t} s = 0;")
            lines.append(f"{ind}#pragma omp simd reduction(+:s){bad}")
            lines.append(f"{ind}for (int64_t kk = 0; kk < nb; kk++) {{")
            lines.append(f"{ind}    const int64_t k = kb + kk;")
            for j in range(size or 1):
                er.j = str(j)
                _hoist_wraps(er, [s.expr], lines, ind + "    ", f"{sid}_{j}")
                lines.append(f"{ind}    s += {er(s.expr)};")
            lines.append(f"{ind}}}")
            lines.append(f"{ind}{acc}[0] = {acc}[0] + s; }}")
            er.j = "j"
            return
        lines.append(f"{ind}for (int64_t kk = 0; kk < nb; kk++) {{")
        lines.append(f"{ind}    const int64_t k = kb + kk;")
        lines.append(f"{ind}    for (int64_t j = 0; j < {zsize}; j++) {{")
        _hoist_wraps(er, [s.expr, s.out], lines, ind + "        ", f"{sid}")
        target = f"{acc}[{er(s.out)}]"
        step = combine(er, red.op, red.acc.dtype, target, er(s.expr))
        lines.append(f"{ind}        {target} = {step};")
        lines.append(f"{ind}    }}")
        lines.append(f"{ind}}}")
        return
    if isinstance(s, Reduce):
        loc, t = s.local, ctype(s.local.dtype)
        init = reduce_init(s.op, loc.dtype)
        if loc.size is None:  # a scalar per row
            out = lay.ref(loc, None)
            simple = s.op == "sum"
            if size is not None and size > UNROLL:
                lines.append(f"{ind}for (int64_t kk = 0; kk < nb; kk++) {{")
                lines.append(f"{ind}    const int64_t k = kb + kk; {t} a = {init};")
                red = "reduction(+:a) " if simple else ""
                lines.append(f"{ind}    #pragma omp simd {red}{bad}")
                lines.append(f"{ind}    for (int64_t j = 0; j < {zsize}; j++) {{")
                _hoist_wraps(er, [s.expr], lines, ind + "        ", f"{sid}")
                lines.append(f"{ind}        a = {combine(er, s.op, loc.dtype, 'a', er(s.expr))};")
                lines.append(f"{ind}    }}")
                lines.append(f"{ind}    {out} = a;")
                lines.append(f"{ind}}}")
                return
            lines.append(f"{ind}#pragma omp simd{bad}")
            lines.append(f"{ind}for (int64_t kk = 0; kk < nb; kk++) {{")
            lines.append(f"{ind}    const int64_t k = kb + kk; {t} a = {init};")
            for j in range(size or 1):
                er.j = str(j)
                _hoist_wraps(er, [s.expr], lines, ind + "    ", f"{sid}_{j}")
                lines.append(f"{ind}    a = {combine(er, s.op, loc.dtype, 'a', er(s.expr))};")
            er.j = "j"
            lines.append(f"{ind}    {out} = a;")
            lines.append(f"{ind}}}")
            return
        # an array per row (some trailing axes kept)
        lines.append(f"{ind}for (int64_t kk = 0; kk < nb; kk++) {{")
        lines.append(f"{ind}    const int64_t k = kb + kk;")
        lines.append(f"{ind}    for (int64_t o = 0; o < {zs(loc.zsize)}; o++) "
                     f"{lay.ref(loc, 'o')} = {init};")
        lines.append(f"{ind}    for (int64_t j = 0; j < {zsize}; j++) {{")
        _hoist_wraps(er, [s.expr, s.out], lines, ind + "        ", f"{sid}")
        target = lay.ref(loc, er(s.out))
        lines.append(f"{ind}        {target} = {combine(er, s.op, loc.dtype, target, er(s.expr))};")
        lines.append(f"{ind}    }}")
        lines.append(f"{ind}}}")
        return
    # Assign or Store
    if isinstance(s, Assign):
        def target():
            return lay.ref(s.local, er.j)
        exprs = [s.expr]
    else:
        def target():
            return f"b{s.buf.slot}[{er(s.offset)}]"
        exprs = [s.offset, s.expr]
    if size is None or size <= UNROLL:
        lines.append(f"{ind}#pragma omp simd{bad}")
        lines.append(f"{ind}for (int64_t kk = 0; kk < nb; kk++) {{")
        lines.append(f"{ind}    const int64_t k = kb + kk;")
        for j in range(size or 1):
            er.j = str(j)
            _hoist_wraps(er, exprs, lines, ind + "    ", f"{sid}_{j}")
            lines.append(f"{ind}    {target()} = {er(s.expr)};")
        er.j = "j"
        lines.append(f"{ind}}}")
        return
    lines.append(f"{ind}for (int64_t kk = 0; kk < nb; kk++) {{")
    lines.append(f"{ind}    const int64_t k = kb + kk;")
    lines.append(f"{ind}    #pragma omp simd{bad}")
    lines.append(f"{ind}    for (int64_t j = 0; j < {zsize}; j++) {{")
    _hoist_wraps(er, exprs, lines, ind + "        ", f"{sid}")
    lines.append(f"{ind}        {target()} = {er(s.expr)};")
    lines.append(f"{ind}    }}")
    lines.append(f"{ind}}}")


PART = 8  # statements per loop group

_U_FIELD = {"double": "d", "float": "f", "int64_t": "i", "int32_t": "i32", "uint8_t": "b"}


def _names(exprs):
    """Buffers (slots), locals, and accumulators an expression list refers to."""
    bufs, locs = set(), set()

    def walk(n):
        if n.op == "load":
            bufs.add(n.arg.slot)
        elif n.op == "read":
            locs.add(n.arg)
        for a in n.args:
            walk(a)

    for e in exprs:
        walk(e)
    return bufs, locs


def render_kernel(k: Kernel, er: ExprRenderer) -> str:
    """The kernel function, preceded by its part functions (the row body, PART statements
    each, called per block of rows)."""
    er.local_ref = None
    er.wrap_names = {}
    head = [f"RG_HIDDEN void {k.name}(void **restrict B, const int64_t *restrict Z, "
            f"int64_t *restrict err) {{", "    (void) Z; (void) err;"]
    lines = []
    for slot in sorted(k.buffers):
        b = k.buffers[slot]
        const = "const " if b.role == "in" else ""
        lines.append(f"    {const}{ctype(b.dtype)} *restrict b{slot} = "
                     f"({const}{ctype(b.dtype)} *) B[{slot}];")
        lines.append(f"    (void) b{slot};")
    for s in k.prologue:
        render_stmt(er, s, lines, "    ")
    parts_src = []
    if k.rows is not None and (k.body or k.reductions):
        groups = _loop_groups(k.body)
        group_of = {i: g for g, idxs in enumerate(groups) for i in idxs}
        crossing = set()
        for i, st in enumerate(k.body):
            for loc in _names(_stmt_exprs(st))[1]:
                d = _defined_at(k.body, loc)
                if d is not None and group_of[d] != group_of[i]:
                    crossing.add(loc)
        widths = ([st.local.zsize for st in k.body if isinstance(st, (Assign, Reduce))
                   and st.local.size is not None] + [red.zsize for red in k.reductions])
        dynamic = not all(is_const(w) for w in widths)
        widest = max([int(w.arg) for w in widths if is_const(w)] + [1])
        block = BLOCK
        while block > 1 and block * widest > BLOCK_ELEMENTS:
            block //= 2
        lay = _RowLayout(k.body, keep=crossing.__contains__, block=block, dynamic=dynamic)
        acc_off = {}
        for red in k.reductions:
            isz = np.dtype(red.acc.dtype).itemsize
            acc_off[red.acc.name] = (lay.alloc(red.size * isz) if is_const(red.zsize) else
                                     lay.alloc_dynamic(f"{zs(red.zsize)} * {isz}"))
        uniform = [s.local for s in k.prologue if isinstance(s, Assign)]
        u_index = {loc: i for i, loc in enumerate(uniform)}
        lines.append(f"    rg_u U[{max(1, len(uniform))}];")
        for loc, i in u_index.items():
            lines.append(f"    U[{i}].{_U_FIELD[ctype(loc.dtype)]} = {loc.name};")
        # part functions
        calls = []
        for g, idxs in enumerate(groups):
            pname = f"{k.name}_p{g}"
            calls.append(pname)
            parts_src.append(_render_part(er, k, lay, idxs, pname, u_index, acc_off, crossing))
        er.local_ref = None
        er.wrap_names = {}
        n = er(k.rows)
        cost = cost_expr(k)
        lines.append(f"    const int64_t n = {n};")
        if dynamic:
            lines += lay.entry(widths)
        else:
            lines.append("    const int64_t WO[1] = {0};")
        lines.append(f"    const int64_t nchunks = (n + {CHUNK - 1}) / {CHUNK};")
        # dynamic: a thread that starts late (a busy machine) takes fewer chunks; the
        # chunks themselves, and so every sum, do not depend on which thread runs them
        lines.append(f"    #pragma omp parallel for schedule(dynamic, 1) "
                     f"num_threads(rg_nthreads()) "
                     f"if (rg_par && nchunks > 1 && n * {cost} >= {PAR_WORK})")
        lines.append("    for (int64_t c = 0; c < nchunks; c++) {")
        if dynamic:  # on the stack when small (a VLA), else on the heap
            lines.append(f"        char Wv[wbytes <= {W_STACK} ? wbytes : 64] "
                         f"__attribute__((aligned(64)));")
            lines.append(f"        char *W = wbytes <= {W_STACK} ? Wv : "
                         f"(char *) aligned_alloc(64, wbytes);")
            lines.append("        if (!W) { *err = 2; continue; }")
        elif lay.nbytes <= W_STACK:
            lines.append(f"        char W[{max(64, lay.nbytes)}] __attribute__((aligned(64)));")
        else:  # a large workspace: the heap (thread stacks may be small)
            lines.append(f"        char *W = (char *) aligned_alloc(64, {lay.nbytes});")
            lines.append("        if (!W) { *err = 2; continue; }")
        lines.append("        int64_t bad = 0;")
        for red in k.reductions:
            t = ctype(red.acc.dtype)
            init = reduce_init(red.op, red.acc.dtype)
            lines.append(f"        {t} *{red.acc.name} = ({t} *) (W + {acc_off[red.acc.name]});")
            lines.append(f"        for (int64_t o = 0; o < {zs(red.zsize)}; o++) "
                         f"{red.acc.name}[o] = {init};")
        lines.append(f"        const int64_t kend = (c + 1) * {CHUNK} < n ? "
                     f"(c + 1) * {CHUNK} : n;")
        blk = "blk" if dynamic else block
        lines.append(f"        for (int64_t kb = c * {CHUNK}; kb < kend; kb += {blk}) {{")
        lines.append(f"            const int64_t nb = kend - kb < {blk} ? kend - kb : {blk};")
        for pname in calls:
            lines.append(f"            {pname}(B, Z, U, W, WO, kb, nb, &bad);")
        lines.append("        }")
        lines.append("        if (bad) *err = 1;")
        for red in k.reductions:
            rs = zs(red.zsize)
            lines.append(f"        for (int64_t o = 0; o < {rs}; o++) "
                         f"b{red.partial.slot}[c * {rs} + o] = {red.acc.name}[o];")
        if dynamic:
            lines.append("        if (W != Wv) free(W);")
        elif lay.nbytes > W_STACK:
            lines.append("        free(W);")
        lines.append("    }")
        for red in k.reductions:
            t = ctype(red.acc.dtype)
            init = reduce_init(red.op, red.acc.dtype)
            rs = zs(red.zsize)
            step = combine(er, red.op, red.acc.dtype, "s", f"b{red.partial.slot}[c * {rs} + o]")
            lines.append(f"    for (int64_t o = 0; o < {rs}; o++) {{")
            lines.append(f"        {t} s = {init};")
            lines.append(f"        for (int64_t c = 0; c < nchunks; c++) s = {step};")
            lines.append(f"        b{red.out.slot}[o] = s;")
            lines.append("    }")
        for sc in k.scatters:
            lines += render_scatter(er, sc)
    lines.append("}")
    return "\n".join(parts_src + ["\n".join(head + lines)])


def _defined_at(body, loc):
    for i, s in enumerate(body):
        if isinstance(s, (Assign, Reduce)) and s.local is loc:
            return i
    return None


def _simple(s) -> bool:
    """Can this statement share a SIMD loop over the block's rows with others?"""
    if isinstance(s, Assign):
        return s.local.size is None or s.local.size <= UNROLL
    if isinstance(s, Store):
        return s.n is None or s.n <= UNROLL
    if isinstance(s, Reduce):  # unrolled: only when the length is a compile-time constant
        return ((s.local.size or 1) <= UNROLL and (s.n or 1) <= 4 * UNROLL
                and (s.zn is None or is_const(s.zn)))
    if isinstance(s, Accum):
        return s.red.op == "sum" and s.red.size == 1 and (s.n is None or s.n <= UNROLL)
    return False


def _wide(s):
    """The trailing size (a size Node) of an elementwise statement looped over j (SIMD over
    j), or None."""
    if isinstance(s, Assign) and s.local.size is not None and s.local.size > UNROLL:
        return s.local.zsize
    if isinstance(s, Store) and s.n is not None and s.n > UNROLL:
        return s.zn
    return None


def _reads_at_j(s, locs) -> bool:
    """Does s read the locals in `locs` only at its own inner index j?"""
    def walk(n):
        if n.op == "read" and n.arg in locs and not (n.args and n.args[0] is J):
            return False
        return all(walk(a) for a in n.args)

    return all(walk(e) for e in _stmt_exprs(s))


def _loop_groups(body) -> list[list[int]]:
    """Loops over the rows of a block: consecutive simple statements (at most PART) share
    one SIMD loop; consecutive wide statements of one size reading each other elementwise share
    one loop over j; the others loop alone."""
    groups, cur, kind, defined = [], [], None, set()
    for i, s in enumerate(body):
        w = _wide(s)
        k = "simple" if _simple(s) else (("wide", size_key(w)) if w is not None else None)
        fits = (k is not None and k == kind and len(cur) < PART
                and (kind == "simple" or _reads_at_j(s, defined)))
        if not fits:
            if cur:
                groups.append(cur)
            cur, kind, defined = [], k, set()
        if k is None:
            groups.append([i])
            kind = None
            continue
        cur.append(i)
        if isinstance(s, Assign):
            defined.add(s.local)
    if cur:
        groups.append(cur)
    return groups


def _render_wide(er, lay, stmts, idxs, lines, crossing, size):
    """Wide elementwise statements in one loop over j (SIMD) per row of the block."""
    here: set = set()

    def ref(loc, idx, node=None):
        if loc in here:
            return loc.name
        if loc in lay.where:
            return lay.ref(loc, idx)
        return loc.name if idx is None else f"{loc.name}[{idx}]"

    er.local_ref = ref
    er.wrap_names = {}
    er.j = "j"
    bad = " reduction(|:bad)" if _wraps_in([e for s in stmts for e in _stmt_exprs(s)]) else ""
    ind = "            "
    lines.append("    for (int64_t kk = 0; kk < nb; kk++) {")
    lines.append("        const int64_t k = kb + kk; (void) k;")
    lines.append(f"        #pragma omp simd{bad}")
    lines.append(f"        for (int64_t j = 0; j < {zs(size)}; j++) {{")
    for sid, s in zip(idxs, stmts):
        _hoist_wraps(er, _stmt_exprs(s), lines, ind, f"{sid}")
        if isinstance(s, Assign):
            loc = s.local
            lines.append(f"{ind}const {ctype(loc.dtype)} {loc.name} = {er(s.expr)};")
            here.add(loc)
            if loc in crossing:
                lines.append(f"{ind}{lay.ref(loc, 'j')} = {loc.name};")
        else:
            lines.append(f"{ind}b{s.buf.slot}[{er(s.offset)}] = {er(s.expr)};")
    lines.append("        }")
    lines.append("    }")


def _render_part(er, k, lay, idxs, pname, u_index, acc_off, crossing) -> str:
    stmts = [k.body[i] for i in idxs]
    exprs = [e for s in stmts for e in _stmt_exprs(s)]
    bufs, locs = _names(exprs)
    bufs |= {s.buf.slot for s in stmts if isinstance(s, Store)}
    defined = [s.local for s in stmts if isinstance(s, (Assign, Reduce))]
    arrays = {lay.where[loc][0] for loc in set(defined) | locs if loc in lay.where}
    accs = {s.red.acc.name: s.red for s in stmts if isinstance(s, Accum)}
    lines = [f"static __attribute__((noinline)) void {pname}(void **restrict B, "
             f"const int64_t *restrict Z, const rg_u *restrict U, char *restrict W, "
             f"const int64_t *restrict WO, const int64_t kb, const int64_t nb, "
             f"int64_t *restrict badp) {{",
             "    (void) Z; (void) U; (void) W; (void) WO;"]
    for slot in sorted(bufs):
        b = k.buffers[slot]
        const = "const " if b.role == "in" else ""
        lines.append(f"    {const}{ctype(b.dtype)} *restrict b{slot} = "
                     f"({const}{ctype(b.dtype)} *) B[{slot}];")
    for loc in sorted((x for x in locs if x in u_index), key=lambda x: u_index[x]):
        t = ctype(loc.dtype)
        lines.append(f"    const {t} {loc.name} = U[{u_index[loc]}].{_U_FIELD[t]};")
    for name in sorted(arrays, key=lambda x: int(x[1:])):
        t, off = lay.arrays[name]
        lines.append(f"    {t} *restrict {name} = ({t} *) __builtin_assume_aligned(W + {off}, 64);")
    for name, red in accs.items():
        t = ctype(red.acc.dtype)
        lines.append(f"    {t} *restrict {name} = ({t} *) (W + {acc_off[name]});")
    lines.append("    int64_t bad = 0;")
    if _wide(stmts[0]) is not None:
        _render_wide(er, lay, stmts, idxs, lines, crossing, _wide(stmts[0]))
    elif len(stmts) == 1 and not _simple(stmts[0]):
        er.local_ref = lambda loc, idx, node=None: lay.ref(loc, idx) if loc in lay.where else (
            loc.name if idx is None else f"{loc.name}[{idx}]")
        _row_stmt(er, lay, stmts[0], lines, "    ", idxs[0])
    else:
        _render_group(er, lay, stmts, idxs, lines, crossing)
    er.local_ref = None
    er.wrap_names = {}
    lines.append("    *badp |= bad;")
    lines.append("}")
    return "\n".join(lines)


def const_index(n: Node, j: int):
    """The value of an index expression when the inner index j is known, or None."""
    op = n.op
    if op == "const":
        return int(n.arg) if n.dtype.kind in "iub" else None
    if op == "j":
        return j
    if op == "cast":
        return const_index(n.args[0], j)
    if op == "where":
        c = const_index(n.args[0], j)
        return None if c is None else const_index(n.args[1 if c else 2], j)
    f = {"iadd": lambda a, b: a + b, "imul": lambda a, b: a * b, "idiv": lambda a, b: a // b,
         "imod": lambda a, b: a % b, "ilt": lambda a, b: int(a < b),
         "ige": lambda a, b: int(a >= b), "ieq": lambda a, b: int(a == b),
         "iand": lambda a, b: int(bool(a) and bool(b))}.get(op)
    if f is None:
        return None
    a, b = (const_index(x, j) for x in n.args)
    return None if a is None or b is None else f(a, b)


def _render_group(er, lay, stmts, idxs, lines, crossing):
    """Simple statements in one SIMD loop over the block: values used only here are C
    variables (vector registers; a value with trailing axes is one variable per element, not
    an array: GCC 12 miscompiles small arrays declared inside SIMD loops), values used by
    later loops are also written to W."""
    here: set = set()
    cur_j = {"j": 0}

    def element(loc, node):
        c = const_index(node, cur_j["j"]) if node is not None else None
        if c is not None:
            return f"{loc.name}_{c}"
        idx = er(node)  # an index known only at run time: select among the elements
        out = f"{loc.name}_{loc.size - 1}"
        for e in range(loc.size - 2, -1, -1):
            out = f"(({idx}) == {e} ? {loc.name}_{e} : {out})"
        return out

    def ref(loc, idx, node=None):
        if loc in here:
            return loc.name if loc.size is None else element(loc, node)
        if loc in lay.where:
            return lay.ref(loc, idx)
        return loc.name if idx is None else f"{loc.name}[{idx}]"

    def unroll(j):
        er.j = str(j)
        cur_j["j"] = j

    er.local_ref = ref
    sums = [s for s in stmts if isinstance(s, Accum)]
    clauses = "".join(f" reduction(+:s{n})" for n in range(len(sums)))
    if _wraps_in([e for s in stmts for e in _stmt_exprs(s)]):
        clauses += " reduction(|:bad)"
    ind = "        "
    for n, s in enumerate(sums):
        lines.append(f"    {ctype(s.red.acc.dtype)} s{n} = 0;")
    lines.append(f"    #pragma omp simd{clauses}")
    lines.append("    for (int64_t kk = 0; kk < nb; kk++) {")
    lines.append(f"{ind}const int64_t k = kb + kk; (void) k;")
    er.wrap_names = {}
    for sid, s in zip(idxs, stmts):
        if isinstance(s, Assign):
            loc, t = s.local, ctype(s.local.dtype)
            for j in range(loc.size or 1):
                unroll(j)
                _hoist_wraps(er, [s.expr], lines, ind, f"{sid}_{j}")
                name = loc.name if loc.size is None else f"{loc.name}_{j}"
                lines.append(f"{ind}const {t} {name} = {er(s.expr)};")
            here.add(loc)
        elif isinstance(s, Reduce):
            loc, t = s.local, ctype(s.local.dtype)
            init = reduce_init(s.op, loc.dtype)
            names = [loc.name] if loc.size is None else [f"{loc.name}_{o}"
                                                         for o in range(loc.size)]
            for name in names:
                lines.append(f"{ind}{t} {name} = {init};")
            for j in range(s.n or 1):
                unroll(j)
                _hoist_wraps(er, [s.expr], lines, ind, f"{sid}_{j}")
                if loc.size is None:
                    tgt = loc.name
                else:
                    o = const_index(s.out, j)
                    assert o is not None, "in-row reduction with a run-time output index"
                    tgt = f"{loc.name}_{o}"
                lines.append(f"{ind}{tgt} = {combine(er, s.op, loc.dtype, tgt, er(s.expr))};")
            here.add(loc)
        elif isinstance(s, Store):
            for j in range(s.n or 1):
                unroll(j)
                _hoist_wraps(er, [s.offset, s.expr], lines, ind, f"{sid}_{j}")
                lines.append(f"{ind}b{s.buf.slot}[{er(s.offset)}] = {er(s.expr)};")
        else:  # Accum: a sum over rows into one value
            n = sums.index(s)
            for j in range(s.n or 1):
                unroll(j)
                _hoist_wraps(er, [s.expr], lines, ind, f"{sid}_{j}")
                lines.append(f"{ind}s{n} += {er(s.expr)};")
        er.j = "j"
        if isinstance(s, (Assign, Reduce)) and s.local in crossing:
            loc = s.local
            for j in range(loc.size or 1):
                src = loc.name if loc.size is None else f"{loc.name}_{j}"
                lines.append(f"{ind}{lay.ref(loc, str(j))} = {src};")
    lines.append("    }")
    for n, s in enumerate(sums):
        acc = s.red.acc.name
        lines.append(f"    {acc}[0] = {acc}[0] + s{n};")


def render_scatter(er: ExprRenderer, sc) -> list:
    """Owner-computes segment sum: thread t owns output rows [lo, hi) and adds the updates
    aimed at them in their recorded order (the bits of a sequential loop, any thread count)."""
    t = ctype(sc.dtype)
    w = zs(sc.zwidth)
    zero = literal(0, sc.dtype)
    operand = er(sc.operand) if sc.operand is not None else None
    lines = ["    {",
             f"        const int64_t m = {er(sc.m)}, q_end = n * {zs(sc.zper_row)};",
             f"        {t} *restrict out = b{sc.out.slot};",
             f"        const int64_t *restrict I = b{sc.idx.slot};",
             f"        const {t} *restrict U = b{sc.upd.slot};",
             f"        #pragma omp parallel num_threads(rg_nthreads()) "
             f"if (rg_par && q_end * {w} >= {PAR_WORK})",
             "        {",
             "            int64_t nt = 1, tid = 0;",
             "#ifdef _OPENMP",
             "            nt = omp_get_num_threads(); tid = omp_get_thread_num();",
             "#endif",
             "            const int64_t lo = m * tid / nt, hi = m * (tid + 1) / nt;"]
    init = operand if (operand is not None and sc.mode == "add_into") else zero
    lines.append(f"            for (int64_t r = lo * {w}; r < hi * {w}; r++) out[r] = {init};")
    lines.append("            for (int64_t q = 0; q < q_end; q++) {")
    lines.append("                const int64_t i = I[q];")
    lines.append("                if (i < lo || i >= hi) continue;")
    if sc.width == 1:
        lines.append("                out[i] += U[q];")
    else:
        lines.append(f"                for (int64_t w = 0; w < {w}; w++) "
                     f"out[i * {w} + w] += U[q * {w} + w];")
    lines.append("            }")
    if operand is not None and sc.mode == "sum_then_add":
        lines.append(f"            for (int64_t r = lo * {w}; r < hi * {w}; r++) "
                     f"out[r] = {operand} + out[r];")
    lines += ["        }", "    }"]
    return lines


def render_program(kernels: list[Kernel], segments: list[list[Kernel]], n_slots: int,
                   sizes_slot: int, err_slot: int) -> str:
    """The translation unit: prelude, helpers, kernels, and the segment entry points."""
    er = ExprRenderer()
    bodies = [render_kernel(k, er) for k in kernels]
    protos = "\n".join(f"RG_HIDDEN void {k.name}(void **restrict B, const int64_t *restrict Z, "
                       f"int64_t *restrict err);" for k in kernels)
    parts = [PRELUDE, protos, "\n".join(er.helpers.values()), SPLIT_PRELUDE]
    for b in bodies:  # kernels are independent: the runtime may compile them in parallel
        parts += [b, SPLIT]
    for i, seg in enumerate(segments):
        parts.append(_entries(f"seg{i}", seg, n_slots, sizes_slot, err_slot))
    for k in kernels:  # one entry per kernel, for profiling
        parts.append(_entries(f"kern_{k.name}", [k], n_slots, sizes_slot, err_slot))
    return "\n\n".join(parts) + "\n"


SPLIT_PRELUDE = "/* @@rg end of prelude@@ */"
SPLIT = "/* @@rg split@@ */"


def split_units(source: str, n: int) -> list[str]:
    """The translation unit as up to n units of about equal size (each with the prelude), for
    compiling in parallel; linked together they equal the whole."""
    if SPLIT_PRELUDE not in source or n <= 1:
        return [source]
    prelude, rest = source.split(SPLIT_PRELUDE, 1)
    pieces = [p for p in rest.split(SPLIT) if p.strip()]
    total = sum(len(p) for p in pieces)
    units, cur, size = [], [], 0
    for p in pieces:
        cur.append(p)
        size += len(p)
        if size >= total / n and len(units) < n - 1:
            units.append(cur)
            cur, size = [], 0
    if cur:
        units.append(cur)
    return [prelude + "\n".join(u) for u in units]


def _entries(name: str, kernels: list[Kernel], n_slots: int, sizes_slot: int,
             err_slot: int) -> str:
    used = sorted({s for k in kernels for s in k.buffers} | {sizes_slot, err_slot})
    calls = "\n".join(f"    {k.name}(B, Z, err);" for k in kernels)
    fill = "\n".join(f"    B[{s}] = RG_DATA(S, {s});" for s in used)
    head = (f"    const int64_t *Z = (const int64_t *) B[{sizes_slot}];\n"
            f"    int64_t *err = (int64_t *) B[{err_slot}];\n")
    return (f"void {name}(void *S) {{\n    void *B[{max(1, n_slots)}];\n{fill}\n{head}{calls}\n}}\n"
            f"void {name}_p(void **B) {{\n{head}{calls}\n}}")
