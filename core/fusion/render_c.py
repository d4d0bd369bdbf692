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

from .kernel import CHUNK, Accum, Assign, Kernel, Node, Reduce, Store

CTYPES = {
    np.dtype(np.float64): "double",
    np.dtype(np.float32): "float",
    np.dtype(np.int64): "int64_t",
    np.dtype(np.int32): "int32_t",
    np.dtype(np.bool_): "bool",
}
_MATH = ("expm1", "exp", "log1p", "log", "sinh", "cosh", "tanh", "asin", "acos", "atan2", "atan",
         "sin", "cos", "tan", "sqrt", "fabs", "floor", "ceil", "rint", "pow")
PAR_WORK = 1 << 15  # rows x cost above which a kernel runs on all threads

PRELUDE = r"""#include <math.h>
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* leading fields of CPython's list object and NumPy's array object (checked by rg_probe) */
typedef struct { intptr_t refcnt; void *type; intptr_t size; void **item; } rg_list;
typedef struct { intptr_t refcnt; void *type; char *data; } rg_array;
#define RG_DATA(S, i) ((void *) ((rg_array *) ((rg_list *) (S))->item[i])->data)

static int rg_par = 1;      /* 0 after fork in a child process: run serially */
static int rg_threads = 0;  /* 0: the OpenMP default */
void rg_set_parallel(int on) { rg_par = on; }
void rg_set_threads(int n) { rg_threads = n; }
static inline int rg_nthreads(void) {
#ifdef _OPENMP
    return rg_threads > 0 ? rg_threads : omp_get_max_threads();
#else
    return 1;
#endif
}
void *rg_probe(void *list, int64_t i) { return RG_DATA(list, i); }

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

    def helper(self, name: str, code: str) -> str:
        self.helpers.setdefault(name, code)
        return name

    def __call__(self, n: Node) -> str:
        op = n.op
        if op == "const":
            return literal(n.arg, n.dtype)
        if op in ("k", "j", "r"):
            return op
        if op == "size":
            return f"Z[{n.arg}]"
        if op == "read":
            return n.arg.name if not n.args else f"{n.arg.name}[{self(n.args[0])}]"
        if op == "load":
            return f"b{n.arg.slot}[{self(n.args[0])}]"
        if op == "prim":
            return self.prim(n)
        if op == "where":
            c, a, b = (self(x) for x in n.args)
            return f"({c} ? {a} : {b})"
        if op == "cast":
            x = self(n.args[0])
            if n.dtype.kind == "b":
                return f"({x} != 0)"
            return f"(({ctype(n.dtype)}) {x})"
        if op == "wrap":
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
    """Append the C lines of one statement."""
    if isinstance(s, Assign):
        loc, t = s.local, ctype(s.local.dtype)
        if loc.size is None:
            out.append(f"{ind}const {t} {loc.name} = {er(s.expr)};")
        else:
            out.append(f"{ind}{t} {loc.name}[{loc.size}];")
            out.append(f"{ind}for (int64_t j = 0; j < {loc.size}; j++) "
                       f"{loc.name}[j] = {er(s.expr)};")
    elif isinstance(s, Reduce):
        loc, t = s.local, ctype(s.local.dtype)
        init = reduce_init(s.op, loc.dtype)
        target = loc.name if loc.size is None else f"{loc.name}[{er(s.out)}]"
        step = combine(er, s.op, loc.dtype, target, er(s.expr))
        if loc.size is None:
            out.append(f"{ind}{t} {loc.name} = {init};")
        else:
            out.append(f"{ind}{t} {loc.name}[{loc.size}];")
            out.append(f"{ind}for (int64_t j = 0; j < {loc.size}; j++) {loc.name}[j] = {init};")
        if s.n is None:
            out.append(f"{ind}{{ const int64_t j = 0; (void) j; {target} = {step}; }}")
        else:
            out.append(f"{ind}for (int64_t j = 0; j < {s.n}; j++) {target} = {step};")
    elif isinstance(s, Store):
        line = f"b{s.buf.slot}[{er(s.offset)}] = {er(s.expr)};"
        if s.n is None:
            out.append(f"{ind}{line}")
        else:
            out.append(f"{ind}for (int64_t j = 0; j < {s.n}; j++) {line}")
    elif isinstance(s, Accum):
        red = s.red
        target = f"{red.acc.name}[{er(s.out)}]"
        step = combine(er, red.op, red.acc.dtype, target, er(s.expr))
        if s.n is None:
            out.append(f"{ind}{{ const int64_t j = 0; (void) j; {target} = {step}; }}")
        else:
            out.append(f"{ind}for (int64_t j = 0; j < {s.n}; j++) {target} = {step};")
    else:  # pragma: no cover - the description has no other statement
        raise TypeError(type(s).__name__)


def render_kernel(k: Kernel, er: ExprRenderer) -> str:
    lines = [f"static void {k.name}(void **restrict B, const int64_t *restrict Z, "
             f"int64_t *restrict err) {{", "    (void) Z; (void) err;"]
    for slot in sorted(k.buffers):
        b = k.buffers[slot]
        const = "const " if b.role == "in" else ""
        lines.append(f"    {const}{ctype(b.dtype)} *restrict b{slot} = "
                     f"({const}{ctype(b.dtype)} *) B[{slot}];")
    for s in k.prologue:
        render_stmt(er, s, lines, "    ")
    if k.rows is not None and (k.body or k.reductions):
        n = er(k.rows)
        lines.append(f"    const int64_t n = {n};")
        lines.append(f"    const int64_t nchunks = (n + {CHUNK - 1}) / {CHUNK};")
        cost = max(1, k.cost)
        lines.append(f"    #pragma omp parallel for schedule(static) num_threads(rg_nthreads()) "
                     f"if (rg_par && nchunks > 1 && n * {cost} >= {PAR_WORK})")
        lines.append("    for (int64_t c = 0; c < nchunks; c++) {")
        for red in k.reductions:
            t = ctype(red.acc.dtype)
            init = reduce_init(red.op, red.acc.dtype)
            lines.append(f"        {t} {red.acc.name}[{red.size}];")
            lines.append(f"        for (int64_t o = 0; o < {red.size}; o++) "
                         f"{red.acc.name}[o] = {init};")
        lines.append(f"        const int64_t kend = (c + 1) * {CHUNK} < n ? "
                     f"(c + 1) * {CHUNK} : n;")
        lines.append(f"        for (int64_t k = c * {CHUNK}; k < kend; k++) {{")
        for s in k.body:
            render_stmt(er, s, lines, "            ")
        lines.append("        }")
        for red in k.reductions:
            lines.append(f"        for (int64_t o = 0; o < {red.size}; o++) "
                         f"b{red.partial.slot}[c * {red.size} + o] = {red.acc.name}[o];")
        lines.append("    }")
        for red in k.reductions:
            t = ctype(red.acc.dtype)
            init = reduce_init(red.op, red.acc.dtype)
            step = combine(er, red.op, red.acc.dtype, "s",
                           f"b{red.partial.slot}[c * {red.size} + o]")
            lines.append(f"    for (int64_t o = 0; o < {red.size}; o++) {{")
            lines.append(f"        {t} s = {init};")
            lines.append(f"        for (int64_t c = 0; c < nchunks; c++) s = {step};")
            lines.append(f"        b{red.out.slot}[o] = s;")
            lines.append("    }")
        for sc in k.scatters:
            lines += render_scatter(er, sc)
    lines.append("}")
    return "\n".join(lines)


def render_scatter(er: ExprRenderer, sc) -> list:
    """Owner-computes segment sum: thread t owns output rows [lo, hi) and adds the updates
    aimed at them in their recorded order (the bits of a sequential loop, any thread count)."""
    t = ctype(sc.dtype)
    w = sc.width
    zero = literal(0, sc.dtype)
    operand = er(sc.operand) if sc.operand is not None else None
    lines = ["    {",
             f"        const int64_t m = {er(sc.m)}, q_end = n * {sc.per_row};",
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
    if w == 1:
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
    parts = [PRELUDE, "\n".join(er.helpers.values()), *bodies]
    for i, seg in enumerate(segments):
        parts.append(_entries(f"seg{i}", seg, n_slots, sizes_slot, err_slot))
    for k in kernels:  # one entry per kernel, for profiling
        parts.append(_entries(f"kern_{k.name}", [k], n_slots, sizes_slot, err_slot))
    return "\n\n".join(parts) + "\n"


def _entries(name: str, kernels: list[Kernel], n_slots: int, sizes_slot: int,
             err_slot: int) -> str:
    used = sorted({s for k in kernels for s in k.buffers} | {sizes_slot, err_slot})
    calls = "\n".join(f"    {k.name}(B, Z, err);" for k in kernels)
    fill = "\n".join(f"    B[{s}] = RG_DATA(S, {s});" for s in used)
    head = (f"    const int64_t *Z = (const int64_t *) B[{sizes_slot}];\n"
            f"    int64_t *err = (int64_t *) B[{err_slot}];\n")
    return (f"void {name}(void *S) {{\n    void *B[{max(1, n_slots)}];\n{fill}\n{head}{calls}\n}}\n"
            f"void {name}_p(void **B) {{\n{head}{calls}\n}}")
