"""The array-module interpreter: renders a Program as straight-line Python calling each
primitive's implementation (NumPy or CuPy), deleting every intermediate after its last use.
This is the executable specification other backends are tested against."""
from __future__ import annotations

import functools

from ..ir import Literal, Program, Var
from ..primitive import impl_rules
from . import register_executor


def compile_program(p: Program):
    names: dict = {}
    glob: dict = {}

    def name(v):
        if isinstance(v, Literal):
            key = f"k{len(glob)}"
            glob[key] = v.val
            return key
        n = names.get(v)
        if n is None:
            n = names[v] = f"v{len(names)}"
        return n

    last_use: dict = {}
    for i, e in enumerate(p.eqns):
        for x in e.inputs:
            if isinstance(x, Var):
                last_use[x] = i
    outset = {v for v in p.outvars if isinstance(v, Var)}

    params = [name(v) for v in p.constvars] + [name(v) for v in p.invars]
    lines = [f"def run({', '.join(params)}):"]
    for i, e in enumerate(p.eqns):
        fn = f"f{i}"
        impl = impl_rules[e.prim]
        plain = getattr(impl, "plain", None)
        if plain is not None and all(len(x.aval.shape) < 3 for x in e.inputs):
            impl = plain  # the layout special case cannot apply: call the ufunc directly
        glob[fn] = functools.partial(impl, **e.params) if e.params else impl
        args = ", ".join(name(x) for x in e.inputs)
        outs = [name(v) for v in e.outvars]
        target = ", ".join(outs) + ("," if e.prim.multiple_results and len(outs) == 1 else "")
        lines.append(f"    {target} = {fn}({args})")
        dead = sorted(
            {names[x] for x in e.inputs if isinstance(x, Var) and last_use.get(x) == i
             and x not in outset}
        )
        if dead:
            lines.append(f"    del {', '.join(dead)}")
    outs = ", ".join(name(v) for v in p.outvars)
    lines.append(f"    return [{outs}]")
    source = "\n".join(lines)
    exec(compile(source, "<reaxgrad.jit>", "exec"), glob)  # noqa: S102
    run = glob["run"]
    run.source = source
    return run


register_executor("interpreter", compile_program)
