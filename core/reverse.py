"""Reverse mode = linearize (JVP + partial evaluation) then transpose the linear program
(Autodidax part 4). Only linear primitives need transpose rules."""
from __future__ import annotations

from .ad_util import UndefPrimal, Zero, add_tangents
from .aval import is_float
from .ir import Literal, Program, eval_program
from .jvp import jvp_flat
from .partial_eval import partial_eval
from .passes import dce
from .primitive import transpose_rules
from .trace import bind, get_aval


def linearize_flat(f_flat, primals):
    """Returns (primals_out, linear Program over tangents of the float inputs, its constants,
    mask of differentiable inputs)."""
    diff = [is_float(get_aval(x).dtype) for x in primals]
    diff_avals = [get_aval(x) for x, d in zip(primals, diff) if d]
    n = len(primals)

    def f_jvp(*args):
        prims, tans = args[:n], list(args[n:])
        tangents = [tans.pop(0) if d else Zero(get_aval(p)) for p, d in zip(prims, diff)]
        primals_out, tangents_out = jvp_flat(f_flat, prims, tangents, instantiate_zeros=False)
        return primals_out + [t if type(t) is not Zero else _zeros(t.aval) for t in tangents_out]

    knowns, program = partial_eval(f_jvp, primals, diff_avals)
    m = len(knowns) // 2
    primals_out = knowns[:m]
    if any(p is None for p in primals_out):
        raise RuntimeError("linearize: a primal output depends on a tangent (internal error)")
    lin = program.replace(outvars=program.outvars[m:])
    return primals_out, dce(lin), diff


def _zeros(aval):
    from . import lax

    return lax.zeros(aval.shape, aval.dtype)


def apply_linear(program: Program, tangents):
    return eval_program(program, program.consts, tangents)


def backward_pass(program: Program, cts_out) -> list:
    """Transpose a linear program: cotangents of its outputs -> cotangents of its inputs."""
    known = dict(zip(program.constvars, program.consts))
    # equations with no linear input (e.g. broadcasts of literal constants) are evaluated
    # forward: their outputs are constants of the linear program
    linear_eqns = []
    for eqn in program.eqns:
        if all(type(x) is Literal or x in known for x in eqn.inputs):
            args = [x.val if type(x) is Literal else known[x] for x in eqn.inputs]
            out = bind(eqn.prim, *args, **eqn.params)
            outs = out if eqn.prim.multiple_results else [out]
            known.update(zip(eqn.outvars, outs))
        else:
            linear_eqns.append(eqn)
    ct_env: dict = {}

    def write(v, ct):
        if ct is None or type(ct) is Zero or type(v) is Literal or v in known:
            return
        prev = ct_env.get(v)
        ct_env[v] = ct if prev is None else add_tangents(prev, ct)

    for v, ct in zip(program.outvars, cts_out):
        write(v, ct)

    for eqn in reversed(linear_eqns):
        cts = [ct_env.pop(v, None) for v in eqn.outvars]
        if all(c is None for c in cts):
            continue
        args = [
            x.val if type(x) is Literal else known[x] if x in known else UndefPrimal(x.aval)
            for x in eqn.inputs
        ]
        rule = transpose_rules.get(eqn.prim)
        if rule is None:
            raise NotImplementedError(f"Transpose rule for '{eqn.prim}' not implemented")
        if eqn.prim.multiple_results:
            cts = [c if c is not None else _zeros(v.aval) for c, v in zip(cts, eqn.outvars)]
            cts_in = rule(cts, *args, **eqn.params)
        else:
            cts_in = rule(cts[0], *args, **eqn.params)
        for x, ct in zip(eqn.inputs, cts_in):
            write(x, ct)
    return [ct_env.get(v) for v in program.invars]


def vjp_flat(f_flat, primals):
    """Returns (primals_out, vjp_fun) with vjp_fun(cts_out) -> cts of every primal
    (zeros for non-float inputs)."""
    primals_out, program, diff = linearize_flat(f_flat, primals)

    def vjp_fun(cts_out):
        cts_in = backward_pass(program, cts_out)
        it = iter(cts_in)
        out = []
        for p, d in zip(primals, diff):
            ct = next(it) if d else None
            if ct is None:
                aval = get_aval(p)
                ct = _zeros(aval)
            out.append(ct)
        return out

    return primals_out, vjp_fun
