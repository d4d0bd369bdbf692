"""Forward-mode differentiation: tracers carry (primal, tangent); tangents may be symbolic
zeros so that constants cost nothing."""
from __future__ import annotations

from .ad_util import Zero, instantiate
from .primitive import jvp_rules
from .trace import Trace, Tracer, bind, full_lower, full_raise, get_aval, new_main


class JVPTracer(Tracer):
    __slots__ = ("primal", "tangent")

    def __init__(self, trace, primal, tangent):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent

    @property
    def aval(self):
        return get_aval(self.primal)

    def concrete_value(self):
        p = self.primal
        return p.concrete_value() if isinstance(p, Tracer) else p


class JVPTrace(Trace):
    __slots__ = ()

    def pure(self, val):
        return JVPTracer(self, val, Zero(get_aval(val)))

    lift = pure

    def process_primitive(self, primitive, tracers, params):
        primals = [t.primal for t in tracers]
        tangents = [t.tangent for t in tracers]
        if all(type(t) is Zero for t in tangents):
            out = bind(primitive, *primals, **params)
            outs = out if primitive.multiple_results else [out]
            return [JVPTracer(self, o, Zero(get_aval(o))) for o in outs]
        rule = jvp_rules.get(primitive)
        if rule is None:
            raise NotImplementedError(f"No differentiation rule for primitive '{primitive}'")
        primals_out, tangents_out = rule(primals, tangents, **params)
        return [JVPTracer(self, p, t) for p, t in zip(primals_out, tangents_out)]

    def process_custom_jvp_call(self, fun, args):
        from .custom import custom_jvp_process

        return custom_jvp_process(self, fun, args)

    def process_custom_vjp_call(self, fun, args):
        from .custom import custom_vjp_process

        return custom_vjp_process(self, fun, args)


def jvp_flat(f_flat, primals, tangents, instantiate_zeros=True):
    """Push tangents forward through f_flat(*primals) -> list. Tangents may be Zero."""
    with new_main(JVPTrace) as main:
        trace = JVPTrace(main)
        tracers = [JVPTracer(trace, p, t) for p, t in zip(primals, tangents)]
        outs = [full_raise(trace, o) for o in f_flat(*tracers)]
        primals_out = [full_lower(o.primal) for o in outs]
        tangents_out = [o.tangent for o in outs]
    if instantiate_zeros:
        tangents_out = [instantiate(t) for t in tangents_out]
    return primals_out, [full_lower(t) if type(t) is not Zero else t for t in tangents_out]
