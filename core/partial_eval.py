"""Partial evaluation: values are either known (computed now, at the level below) or unknown
(recorded as IR equations). With every input unknown this is the staging interpreter behind
jit and make_ir; with known primals and unknown tangents it is the linearize step of
reverse-mode differentiation."""
from __future__ import annotations

import numpy as np

from .aval import ShapedArray
from .ir import Eqn, Literal, Program, Var
from .primitive import shape_rules
from .prims.shape import broadcast_in_dim_p
from .trace import (
    ConcretizationError,
    Trace,
    Tracer,
    bind,
    full_raise,
    get_aval,
    is_uniform,
    new_main,
)


class Builder:
    """Accumulates equations (already in execution order) and captured constants."""

    def __init__(self):
        self.invars: list[Var] = []
        self.eqns: list[Eqn] = []
        self.constvars: list[Var] = []
        self.consts: list = []
        self._const_ids: dict[int, Var] = {}
        self.consts_keepalive: list = []

    def const_input(self, val):
        """The IR input standing for a known value: a literal for scalars, a broadcast of a
        literal for uniform arrays, else a captured constant."""
        aval = get_aval(val)
        if aval.shape == () and not isinstance(val, Tracer):
            return Literal(np.asarray(val, aval.dtype), aval)
        var = self._const_ids.get(id(val))
        if var is None and is_uniform(val):
            lit = Literal(np.asarray(val.reshape(-1)[0]), ShapedArray((), aval.dtype))
            var = Var(aval)
            params = {"shape": aval.shape, "broadcast_dimensions": ()}
            self.eqns.append(Eqn(broadcast_in_dim_p, [lit], params, [var]))
            self._const_ids[id(val)] = var
            self.consts_keepalive.append(val)
            return var
        if var is None:
            var = Var(aval)
            self._const_ids[id(val)] = var
            self.constvars.append(var)
            self.consts.append(val)
        return var

    def build(self, outs: list) -> Program:
        outvars = [o.var if o.var is not None else self.const_input(o.known) for o in outs]
        return Program(self.invars, self.constvars, self.consts, self.eqns, outvars)


class PartialEvalTracer(Tracer):
    __slots__ = ("known", "var", "_aval")

    def __init__(self, trace, known=None, var=None, aval=None):
        self._trace = trace
        self.known = known
        self.var = var
        self._aval = aval if aval is not None else get_aval(known)

    @property
    def aval(self):
        return self._aval

    def full_lower(self):
        if self.var is None:
            from .trace import full_lower

            return full_lower(self.known)
        return self

    def concrete_value(self):
        if self.var is None:
            known = self.known
            return known.concrete_value() if isinstance(known, Tracer) else known
        raise ConcretizationError(
            f"A traced array {self.aval.str_short()} (an argument of a jit-compiled function, "
            f"or a value computed from one) was used as a Python bool/int/float or in Python "
            f"control flow. Inside jit, use reaxgrad.core.numpy.where (or lax.select) for "
            f"value-dependent choices, or pass the value in static_argnums so it is a Python "
            f"constant."
        )


class PartialEvalTrace(Trace):
    __slots__ = ()

    @property
    def builder(self) -> Builder:
        return self.main.global_data

    def pure(self, val):
        return PartialEvalTracer(self, known=val)

    lift = pure

    def new_arg(self, aval: ShapedArray) -> PartialEvalTracer:
        var = Var(aval)
        self.builder.invars.append(var)
        return PartialEvalTracer(self, var=var, aval=aval)

    def process_primitive(self, primitive, tracers, params):
        if all(t.var is None for t in tracers):
            out = bind(primitive, *[t.known for t in tracers], **params)
            outs = out if primitive.multiple_results else [out]
            return [PartialEvalTracer(self, known=o) for o in outs]
        builder = self.builder
        inputs = [t.var if t.var is not None else builder.const_input(t.known) for t in tracers]
        avals = shape_rules[primitive](*[t.aval for t in tracers], **params)
        avals = avals if primitive.multiple_results else [avals]
        outvars = [Var(a) for a in avals]
        builder.eqns.append(Eqn(primitive, inputs, params, outvars))
        return [PartialEvalTracer(self, var=v, aval=a) for v, a in zip(outvars, avals)]


def trace_to_program(f_flat, in_avals) -> Program:
    """Stage f_flat(*args) -> list of outputs into a Program with one input per aval."""
    with new_main(PartialEvalTrace, Builder()) as main:
        trace = PartialEvalTrace(main)
        tracers = [trace.new_arg(a) for a in in_avals]
        outs = f_flat(*tracers)
        outs = [full_raise(trace, o) for o in outs]
        return main.global_data.build(outs)


def partial_eval(f_flat, known_args, unknown_avals):
    """Evaluate f_flat(*known_args, *unknowns) as far as the known inputs allow.
    Returns (known outputs or None, Program of the unknown part over the unknown inputs)."""
    with new_main(PartialEvalTrace, Builder()) as main:
        trace = PartialEvalTrace(main)
        known = [PartialEvalTracer(trace, known=x) for x in known_args]
        unknown = [trace.new_arg(a) for a in unknown_avals]
        outs = f_flat(*known, *unknown)
        outs = [full_raise(trace, o) for o in outs]
        program = main.global_data.build(outs)
        knowns = [o.known if o.var is None else None for o in outs]
    return knowns, program
