"""The IR: a typed SSA program of primitive applications, printable, with a reference
interpreter that evaluates it through `bind` (so it can itself be transformed)."""
from __future__ import annotations

from itertools import count

import numpy as np

from .aval import ShapedArray
from .primitive import Primitive
from .trace import bind

_ids = count()


class Var:
    """A typed SSA variable."""

    __slots__ = ("aval", "id")

    def __init__(self, aval: ShapedArray):
        self.aval = aval
        self.id = next(_ids)

    def __repr__(self):
        return f"Var({self.id}:{self.aval.str_short()})"


class Literal:
    """A scalar constant written inline in the program."""

    __slots__ = ("val", "aval")

    def __init__(self, val, aval: ShapedArray):
        self.val = val
        self.aval = aval

    def __repr__(self):
        return f"Literal({self.val!r})"


class Eqn:
    """outvars = prim(*inputs, **params)."""

    __slots__ = ("prim", "inputs", "params", "outvars")

    def __init__(self, prim: Primitive, inputs: list, params: dict, outvars: list):
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.outvars = outvars


class Program:
    """A traced function: inputs, captured constants, equations in execution order, outputs."""

    __slots__ = ("invars", "constvars", "consts", "eqns", "outvars")

    def __init__(self, invars, constvars, consts, eqns, outvars):
        self.invars = list(invars)
        self.constvars = list(constvars)
        self.consts = list(consts)
        self.eqns = list(eqns)
        self.outvars = list(outvars)

    def __str__(self):
        return pretty_print(self)

    __repr__ = __str__

    def replace(self, **kw) -> Program:
        fields = {s: getattr(self, s) for s in self.__slots__}
        fields.update(kw)
        return Program(**fields)


def _name(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(ord("a") + r) + s
    return s


def _fmt_param(v) -> str:
    if isinstance(v, np.dtype):
        return v.name
    if callable(v):
        return getattr(v, "__name__", "fn")
    return repr(v)


def pretty_print(p: Program) -> str:
    names: dict = {}

    def name(v):
        if isinstance(v, Literal):
            val = v.val.item() if hasattr(v.val, "item") else v.val
            return repr(val)
        if v not in names:
            names[v] = _name(len(names))
        return names[v]

    def decl(v):
        return f"{name(v)}:{v.aval.str_short()}"

    consts = " ".join(decl(v) for v in p.constvars)
    ins = " ".join(decl(v) for v in p.invars)
    lines = [f"{{ lambda {consts} ; {ins} . let"]
    for e in p.eqns:
        outs = " ".join(decl(v) for v in e.outvars)
        params = ", ".join(f"{k}={_fmt_param(v)}" for k, v in e.params.items())
        params = f"[{params}]" if params else ""
        args = " ".join(name(x) for x in e.inputs)
        lines.append(f"    {outs} = {e.prim.name}{params} {args}")
    outs = ", ".join(name(v) for v in p.outvars)
    lines.append(f"  in ({outs}{',' if len(p.outvars) == 1 else ''}) }}")
    return "\n".join(lines)


def eval_program(p: Program, consts, args) -> list:
    """Evaluate a program by binding each primitive (works under any active transform)."""
    env: dict = {}
    for v, x in zip(p.constvars, consts):
        env[v] = x
    for v, x in zip(p.invars, args):
        env[v] = x

    def read(x):
        return x.val if type(x) is Literal else env[x]

    for e in p.eqns:
        out = bind(e.prim, *[read(x) for x in e.inputs], **e.params)
        if e.prim.multiple_results:
            for v, o in zip(e.outvars, out):
                env[v] = o
        else:
            env[e.outvars[0]] = out
    return [read(v) for v in p.outvars]
