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


_COMMUTATIVE = {"add", "mul", "max", "min", "eq", "ne", "and", "or", "xor"}


def _sort_key(x):
    return (0, x.id) if isinstance(x, Var) else (1, repr(x.val.tolist()))


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
        keyed = inputs
        if e.prim.name in _COMMUTATIVE:
            keyed = sorted(inputs, key=_sort_key)
        key = (e.prim, tuple(_input_key(x) for x in keyed), _hashable(e.params))
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
    if name in ("mul", "add", "sub", "div") and len(e.inputs) == 2:
        x, c = e.inputs
        neutral = 1 if name in ("mul", "div") else 0
        return (
            isinstance(c, Literal) and c.val == neutral and not isinstance(x, Literal)
            and x.aval == e.outvars[0].aval
        )
    return False


def forward_noops(p: Program) -> Program:
    """Replace uses of no-op equations' outputs with their inputs."""
    subst: dict = {}
    eqns = []
    for e in p.eqns:
        inputs = [subst.get(x, x) if isinstance(x, Var) else x for x in e.inputs]
        e = Eqn(e.prim, inputs, e.params, e.outvars)
        if e.prim.name in ("mul", "add") and isinstance(inputs[0], Literal):
            e = Eqn(e.prim, inputs[::-1], e.params, e.outvars)  # literal second
            inputs = e.inputs
        if _is_noop(e) and not isinstance(inputs[0], Literal):
            subst[e.outvars[0]] = inputs[0]
            continue
        eqns.append(e)
    outvars = [subst.get(v, v) if isinstance(v, Var) else v for v in p.outvars]
    return p.replace(eqns=eqns, outvars=outvars)


def _use_counts(p: Program) -> dict:
    counts: dict = {}
    for e in p.eqns:
        for x in e.inputs:
            if isinstance(x, Var):
                counts[x] = counts.get(x, 0) + 1
    for v in p.outvars:
        if isinstance(v, Var):
            counts[v] = counts.get(v, 0) + 1
    return counts


def sink_negations(p: Program) -> Program:
    """reduce_sum(neg(x)) -> neg(reduce_sum(x)) when the neg has no other use: negates the
    (smaller) reduced array instead of the full one."""
    counts = _use_counts(p)
    producer = {e.outvars[0]: e for e in p.eqns if len(e.outvars) == 1}
    eqns = []
    for e in p.eqns:
        src = producer.get(e.inputs[0]) if e.inputs and isinstance(e.inputs[0], Var) else None
        if (
            e.prim.name == "reduce_sum"
            and src is not None
            and src.prim.name == "neg"
            and counts.get(e.inputs[0]) == 1
        ):
            summed = Var(e.outvars[0].aval)
            eqns.append(Eqn(e.prim, [src.inputs[0]], e.params, [summed]))
            eqns.append(Eqn(src.prim, [summed], {}, e.outvars))
            continue
        eqns.append(e)
    return p.replace(eqns=eqns)


def forward_scalar_broadcasts(p: Program) -> Program:
    """Elementwise operands that are broadcasts of a scalar literal become the literal itself
    (primitives broadcast rank-0 operands), when another operand already has the full shape."""
    from .primitive import c_exprs

    scalar_of = {
        e.outvars[0]: e.inputs[0]
        for e in p.eqns
        if e.prim.name == "broadcast_in_dim" and isinstance(e.inputs[0], Literal)
    }
    if not scalar_of:
        return p
    eqns = []
    for e in p.eqns:
        if e.prim in c_exprs and any(x in scalar_of for x in e.inputs if isinstance(x, Var)):
            shape = e.outvars[0].aval.shape
            full = [x for x in e.inputs if x not in scalar_of and x.aval.shape == shape]
            if full:
                inputs = [scalar_of.get(x, x) if isinstance(x, Var) else x for x in e.inputs]
                e = Eqn(e.prim, inputs, e.params, e.outvars)
        eqns.append(e)
    return p.replace(eqns=eqns)


def sink_broadcasts(p: Program) -> Program:
    """op(broadcast(a), broadcast(b), scalar...) -> broadcast(op(a, b, scalar...)): compute
    elementwise ops on the small arrays before broadcasting them."""
    from .primitive import c_exprs

    producer = {e.outvars[0]: e for e in p.eqns if e.prim.name == "broadcast_in_dim"}
    eqns = []
    for e in p.eqns:
        srcs = [producer.get(x) for x in e.inputs if isinstance(x, Var)]
        if (
            e.prim in c_exprs
            and srcs
            and all(s is not None for s in srcs)
            and len({(s.params["shape"], s.params["broadcast_dimensions"],
                      s.inputs[0].aval.shape) for s in srcs}) == 1
            and all(x.aval.shape == () for x in e.inputs if isinstance(x, Literal))
        ):
            src = srcs[0]
            small_shape = src.inputs[0].aval.shape
            inputs = [producer[x].inputs[0] if isinstance(x, Var) else x for x in e.inputs]
            out = e.outvars[0]
            small = Var(type(out.aval)(small_shape, out.aval.dtype))
            eqns.append(Eqn(e.prim, inputs, e.params, [small]))
            bcast = Eqn(src.prim, [small], src.params, [out])
            eqns.append(bcast)
            producer[out] = bcast
            continue
        eqns.append(e)
    return p.replace(eqns=eqns)


def optimize(p: Program) -> Program:
    """The standard pipeline run by jit before execution."""
    p = cse(fold_constants(forward_scalar_broadcasts(forward_noops(p))))
    p = sink_broadcasts(p)
    return dce(cse(sink_negations(dce(p))))
