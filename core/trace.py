"""Tracing machinery (after JAX's Autodidax): a per-thread stack of interpreters ("main traces"),
tracers that box values for one interpreter, and `bind`, the single dispatch point."""
from __future__ import annotations

import threading

import numpy as np

from .array import Array, as_array
from .aval import ShapedArray, dtype_of
from .primitive import Primitive, c_exprs, impl_rules


class MainTrace:
    """One active interpreter: its level in the stack, its Trace class and its global data."""

    __slots__ = ("level", "trace_type", "global_data")

    def __init__(self, level, trace_type, global_data):
        self.level = level
        self.trace_type = trace_type
        self.global_data = global_data

    def __repr__(self):
        return f"MainTrace({self.level}, {self.trace_type.__name__})"


class _Stack(threading.local):
    def __init__(self):
        self.stack = [MainTrace(0, EvalTrace, None)]




class new_main:
    """Context manager pushing a new interpreter on this thread's stack."""

    __slots__ = ("trace_type", "global_data", "main")

    def __init__(self, trace_type, global_data=None):
        self.trace_type = trace_type
        self.global_data = global_data

    def __enter__(self) -> MainTrace:
        stack = _state.stack
        self.main = MainTrace(len(stack), self.trace_type, self.global_data)
        stack.append(self.main)
        return self.main

    def __exit__(self, *exc):
        popped = _state.stack.pop()
        assert popped is self.main, "trace stack corrupted"
        return False


class Trace:
    """Interprets primitives applied to its tracers."""

    __slots__ = ("main",)

    def __init__(self, main: MainTrace):
        self.main = main

    def pure(self, val):
        raise NotImplementedError

    def lift(self, val):
        raise NotImplementedError

    def process_primitive(self, primitive, tracers, params):
        raise NotImplementedError

    def process_custom_jvp_call(self, fun, args):
        return fun.fun(*args)

    def process_custom_vjp_call(self, fun, args):
        return fun.fun(*args)


class ConcretizationError(TypeError):
    """A traced value was used where a concrete Python value is needed."""


class UnexpectedTracerError(RuntimeError):
    """A tracer escaped the transform that created it."""


class Tracer:
    """A value being traced by some interpreter. Operators and JAX-style array methods are
    attached by reaxgrad.core.numpy; NumPy defers to them (`__array_ufunc__ = None`)."""

    __slots__ = ("_trace",)
    __array_ufunc__ = None
    __array_priority__ = 1000

    @property
    def aval(self) -> ShapedArray:
        raise NotImplementedError

    def full_lower(self):
        return self

    def concrete_value(self):
        """The concrete value behind this tracer, or ConcretizationError."""
        raise ConcretizationError(self._concretization_message())

    def _concretization_message(self) -> str:
        return (
            f"A traced array {self.aval.str_short()} was used where a concrete value is needed "
            f"(Python bool/int/float or control flow). Use reaxgrad.core.numpy.where for "
            f"value-dependent choices, or mark the argument static (jit static_argnums)."
        )

    @property
    def shape(self):
        return self.aval.shape

    @property
    def dtype(self):
        return self.aval.dtype

    @property
    def ndim(self):
        return self.aval.ndim

    @property
    def size(self):
        return self.aval.size

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized (0-d) traced array")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d traced array")
        return (self[i] for i in range(self.shape[0]))

    def __bool__(self):
        return bool(self.concrete_value())

    def __int__(self):
        return int(self.concrete_value())

    def __float__(self):
        return float(self.concrete_value())

    def __index__(self):
        import operator

        return operator.index(self.concrete_value())

    def __array__(self, dtype=None, copy=None):
        import numpy as np

        return np.asarray(self.concrete_value(), dtype=dtype)

    def __hash__(self):
        raise TypeError(f"unhashable type: traced array {self.aval.str_short()}")

    def __repr__(self):
        return f"{type(self).__name__}<{self.aval.str_short()}>"


def get_aval(x) -> ShapedArray:
    if isinstance(x, Tracer):
        return x.aval
    shape = getattr(x, "shape", None)
    if shape is None:
        return ShapedArray((), dtype_of(x))
    return ShapedArray(shape, x.dtype)


def find_top_trace(xs) -> Trace:
    stack = _state.stack
    top = stack[0]
    for x in xs:
        if isinstance(x, Tracer):
            main = x._trace.main
            if main.level > top.level:
                top = main
    if top.level and (top.level >= len(stack) or stack[top.level] is not top):
        raise UnexpectedTracerError(
            "A tracer escaped the transformation that created it (e.g. stored in a global or "
            "returned through a side channel from inside jit/grad/vmap); pass values in and "
            "out of transformed functions as arguments and return values."
        )
    return top.trace_type(top)


def full_raise(trace: Trace, val):
    if not isinstance(val, Tracer):
        return trace.pure(val)
    main = val._trace.main
    if main is trace.main:
        return val
    if main.level < trace.main.level:
        return trace.lift(val)
    raise UnexpectedTracerError(
        f"Cannot lift a tracer of level {main.level} into a trace of level "
        f"{trace.main.level}: a tracer escaped its transformation."
    )


def full_lower(val):
    if isinstance(val, Tracer):
        return val.full_lower()
    return val


def bind(prim: Primitive, *args, **params):
    """Apply a primitive: dispatch to the innermost interpreter among the arguments."""
    for a in args:
        if isinstance(a, Tracer):
            break
    else:  # no tracer among the arguments: evaluate now, whatever transforms are active
        return _eval(prim, args, params)
    trace = find_top_trace(args)
    tracers = [full_raise(trace, a) for a in args]
    outs = trace.process_primitive(prim, tracers, params)
    if prim.multiple_results:
        return [full_lower(o) for o in outs]
    return full_lower(outs[0])


def is_uniform(x) -> bool:
    """A concrete array whose elements are one value by construction (a zero-stride view)."""
    if isinstance(x, np.ndarray):
        return x.ndim == 0 or (x.size > 0 and not any(x.strides))
    return not isinstance(x, Tracer) and np.ndim(x) == 0


def _eval(prim, args, params):
    if prim in c_exprs and len(args) > 0 and all(map(is_uniform, args)):
        shape = max((np.shape(a) for a in args), key=len)
        if shape:  # compute once on scalars, keep the result a broadcast view
            scalars = [np.asarray(a).reshape(-1)[0] for a in args]
            out = impl_rules[prim](*[np.asarray(s) for s in scalars], **params)
            return np.broadcast_to(np.asarray(out), shape).view(Array)
    out = impl_rules[prim](*args, **params)
    if prim.multiple_results:
        return [as_array(o) for o in out]
    return as_array(out)


class EvalTrace(Trace):
    """Level 0: evaluate primitives on concrete arrays."""

    __slots__ = ()

    def pure(self, val):
        return val

    lift = pure

    def process_primitive(self, primitive, tracers, params):
        out = _eval(primitive, tracers, params)
        return out if primitive.multiple_results else [out]


_state = _Stack()
