"""IR optimization passes: dead-code elimination, common-subexpression elimination, constant
folding, and removal of no-op equations."""
from __future__ import annotations

import numpy as np

from .ir import Eqn, Literal, Program, Var
from .primitive import effectful, impl_rules


def dce(p: Program) -> Program:
    """Drop equations whose outputs are never used."""
    live = {v for v in p.outvars if isinstance(v, Var)}
    kept = []
    for e in reversed(p.eqns):
        if e.prim in effectful or any(v in live for v in e.outvars):
            kept.append(e)
            live.update(x for x in e.inputs if isinstance(x, Var))
    kept.reverse()
    used = [(v, c) for v, c in zip(p.constvars, p.consts) if v in live]
    return p.replace(
        eqns=kept, constvars=[v for v, _ in used], consts=[c for _, c in used]
    )


def _hashable(v):
    if isinstance(v, (tuple, list)):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    try:
        hash(v)
        return v
    except TypeError:
        return ("id", id(v))


def _input_key(x):
    if isinstance(x, Literal):
        return ("lit", x.aval.dtype.str, x.val.tobytes())
    return x


def cse(p: Program) -> Program:
    """Merge equations applying the same primitive, with the same parameters, to the same inputs."""
    subst: dict = {}
    seen: dict = {}
    eqns = []

    def sub(x):
        return subst.get(x, x) if isinstance(x, Var) else x

    for e in p.eqns:
        inputs = [sub(x) for x in e.inputs]
        if e.prim in effectful:
            eqns.append(Eqn(e.prim, inputs, e.params, e.outvars))
            continue
        key = (e.prim, tuple(_input_key(x) for x in inputs), _hashable(e.params))
        prev = seen.get(key)
        if prev is not None:
            for a, b in zip(e.outvars, prev.outvars):
                subst[a] = b
            continue
        new = Eqn(e.prim, inputs, e.params, e.outvars)
        seen[key] = new
        eqns.append(new)
    return p.replace(eqns=eqns, outvars=[sub(v) for v in p.outvars])


def fold_constants(p: Program, max_size: int = 1 << 22) -> Program:
    """Evaluate equations whose inputs are all constants or literals, at compile time."""
    consts = dict(zip(p.constvars, p.consts))
    eqns = []
    for e in p.eqns:
        if e.prim in effectful or not all(isinstance(x, Literal) or x in consts for x in e.inputs):
            eqns.append(e)
            continue
        if any(v.aval.size > max_size for v in e.outvars):
            eqns.append(e)
            continue
        args = [x.val if isinstance(x, Literal) else consts[x] for x in e.inputs]
        out = impl_rules[e.prim](*args, **e.params)
        outs = out if e.prim.multiple_results else [out]
        for v, o in zip(e.outvars, outs):
            consts[v] = np.asarray(o)
    used = {x for e in eqns for x in e.inputs if isinstance(x, Var)}
    used.update(v for v in p.outvars if isinstance(v, Var))
    keep = [v for v in consts if v in used]
    return p.replace(eqns=eqns, constvars=keep, consts=[consts[v] for v in keep])


def _is_noop(e: Eqn) -> bool:
    """An equation whose output equals its first input (same shape, dtype and values)."""
    name = e.prim.name
    if name in ("reshape", "broadcast_in_dim", "convert_element_type", "stop_gradient"):
        x, out = e.inputs[0], e.outvars[0]
        return x.aval == out.aval and (
            name != "broadcast_in_dim"
            or e.params["broadcast_dimensions"] == tuple(range(len(out.aval.shape)))
        )
    if name == "transpose":
        return e.params["permutation"] == tuple(range(len(e.params["permutation"])))
    return False


def forward_noops(p: Program) -> Program:
    """Replace uses of no-op equations' outputs with their inputs."""
    subst: dict = {}
    eqns = []
    for e in p.eqns:
        inputs = [subst.get(x, x) if isinstance(x, Var) else x for x in e.inputs]
        e = Eqn(e.prim, inputs, e.params, e.outvars)
        if _is_noop(e) and not isinstance(inputs[0], Literal):
            subst[e.outvars[0]] = inputs[0]
            continue
        eqns.append(e)
    outvars = [subst.get(v, v) if isinstance(v, Var) else v for v in p.outvars]
    return p.replace(eqns=eqns, outvars=outvars)


def optimize(p: Program) -> Program:
    """The standard pipeline run by jit before execution."""
    return dce(cse(fold_constants(forward_noops(p))))
