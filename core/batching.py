"""Vectorization (vmap): tracers carry a value and the axis along which it is batched
(None when it is the same for every example)."""
from __future__ import annotations

from . import lax
from .primitive import batch_rules
from .trace import ConcretizationError, Trace, Tracer, bind, full_lower, get_aval


class BatchTracer(Tracer):
    __slots__ = ("val", "batch_dim")

    def __init__(self, trace, val, batch_dim):
        self._trace = trace
        self.val = val
        self.batch_dim = batch_dim

    @property
    def aval(self):
        aval = get_aval(self.val)
        if self.batch_dim is None:
            return aval
        shape = aval.shape[: self.batch_dim] + aval.shape[self.batch_dim + 1 :]
        return type(aval)(shape, aval.dtype)

    def full_lower(self):
        if self.batch_dim is None:
            return full_lower(self.val)
        return self

    def concrete_value(self):
        raise ConcretizationError(
            f"A value {self.aval.str_short()} that varies across a vmapped axis was used as a "
            f"Python bool/int/float or in Python control flow; use "
            f"reaxgrad.core.numpy.where to choose per example."
        )


class BatchTrace(Trace):
    __slots__ = ()

    @property
    def axis_size(self) -> int:
        return self.main.global_data

    def pure(self, val):
        return BatchTracer(self, val, None)

    lift = pure

    def process_primitive(self, primitive, tracers, params):
        vals = [t.val for t in tracers]
        dims = [t.batch_dim for t in tracers]
        if all(d is None for d in dims):
            out = bind(primitive, *vals, **params)
            outs = out if primitive.multiple_results else [out]
            return [BatchTracer(self, o, None) for o in outs]
        rule = batch_rules.get(primitive, None) or _loop_batch_rule(primitive)
        out, out_dim = rule(self.axis_size, vals, dims, **params)
        if primitive.multiple_results:
            return [BatchTracer(self, o, d) for o, d in zip(out, out_dim)]
        return [BatchTracer(self, out, out_dim)]

    def process_custom_jvp_call(self, fun, args):
        from .custom import custom_batch_process

        return custom_batch_process(self, fun, args)

    process_custom_vjp_call = process_custom_jvp_call


def _loop_batch_rule(primitive):
    """Fallback: apply the primitive example by example and stack (correct, slow)."""

    def rule(axis_size, vals, dims, **params):
        outs = []
        for i in range(axis_size):
            args = [v if d is None else _index(v, d, i) for v, d in zip(vals, dims)]
            outs.append(bind(primitive, *args, **params))
        if primitive.multiple_results:
            stacked = [_stack([o[k] for o in outs]) for k in range(len(outs[0]))]
            return stacked, [0] * len(stacked)
        return _stack(outs), 0

    return rule


def _index(v, d, i):
    shape = lax.shape(v)
    start = [0] * len(shape)
    limit = list(shape)
    start[d], limit[d] = i, i + 1
    sliced = lax.slice(v, start, limit)
    return lax.reshape(sliced, shape[:d] + shape[d + 1 :])


def _stack(xs):
    xs = [lax.reshape(x, (1,) + tuple(lax.shape(x))) for x in xs]
    return lax.concatenate(xs, 0)


def move_batch_axis(axis_size, val, src, dst):
    """Move (or, when src is None, create by broadcasting) the batch axis to position dst."""
    if dst is None:
        if src is not None:
            raise ValueError("vmap out_axes=None requires an output that is not batched")
        return val
    shape = tuple(lax.shape(val))
    if src is None:
        out_shape = shape[:dst] + (axis_size,) + shape[dst:]
        dims = tuple(i for i in range(len(out_shape)) if i != dst)
        return lax.broadcast_in_dim(val, out_shape, dims)
    return lax.moveaxis(val, src, dst)
