"""jit: trace once per abstract signature (pytree structure, shapes, dtypes, static arguments,
backend) into the IR, optimize it, compile it with an executor, and reuse it."""
from __future__ import annotations

import contextlib
import functools
import gc

import numpy as np

from .array import Array, as_writable_array
from .executors import get_executor, resolve_backend
from .partial_eval import trace_to_program
from .passes import optimize
from .trace import Tracer, get_aval
from .tree import tree_flatten, tree_unflatten

_FAST_TYPES = (np.ndarray, Array)


@contextlib.contextmanager
def _gc_paused():
    """Cyclic garbage collection off while tracing and compiling: a trace allocates hundreds of
    thousands of short-lived objects (freed by reference counting), and the collector's passes
    over them took a third of ReaxFF's trace time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _fast_key(args):
    """Shapes and dtypes when every argument is an array (the common call), else None."""
    if all(type(a) in _FAST_TYPES for a in args):
        return tuple([(a.shape, a.dtype) for a in args])
    return None


class Compiled:
    """One cache entry: the optimized program, its executable and its output structure."""

    __slots__ = ("program", "run", "consts", "out_tree")

    def __init__(self, program, run, out_tree):
        self.program = program
        self.run = run
        self.consts = list(program.consts)
        self.out_tree = out_tree


def _leaf_signature(x):
    try:
        return (x.shape, x.dtype)
    except AttributeError:
        if isinstance(x, (bool, int, float, complex)):
            return (type(x),)
        raise TypeError(
            f"jit: argument leaf of type {type(x).__name__} is not an array; pass it through "
            f"static_argnums or close over it"
        ) from None


class jit:
    """jit(fun, static_argnums=(), backend=None)(*args, **kwargs).

    backend: an executor name ("interpreter", "fused"), or None / "auto": the
    REAXGRAD_JIT_BACKEND environment variable when set, else the automatic default (see
    `reaxgrad.core.executors.default_backend`). Resolved once, when the jit is created."""

    def __init__(self, fun, static_argnums=(), backend: str | None = None):
        functools.update_wrapper(self, fun)
        self.fun = fun
        nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
        self.static_argnums = nums
        self.backend = resolve_backend(backend)
        get_executor(self.backend)  # fail early on an unknown backend
        self._cache: dict = {}
        self._fast_cache: dict = {}
        self.trace_count = 0

    def __get__(self, obj, objtype=None):  # allow use as a method decorator
        if obj is None:
            return self
        return functools.partial(self, obj)

    def _split(self, args):
        if not self.static_argnums:
            return args, ()
        n = len(args)
        static_idx = {i % n for i in self.static_argnums if -n <= i < n}
        statics = []
        for i in sorted(static_idx):
            try:
                hash(args[i])
            except TypeError:
                raise TypeError(
                    f"jit: static argument {i} of type {type(args[i]).__name__} is not "
                    f"hashable ({args[i]!r:.60}); static arguments are cache keys: pass a "
                    f"tuple instead of a list, or make it a traced (array) argument"
                ) from None
            statics.append((i, args[i]))
        dyn = tuple(a for i, a in enumerate(args) if i not in static_idx)
        return dyn, tuple(statics)

    def __call__(self, *args, **kwargs):
        fast = _fast_key(args) if not kwargs and not self.static_argnums else None
        if fast is not None:  # positional arrays only: skip pytree flattening
            entry = self._fast_cache.get(fast)
            if entry is not None:
                return self._run(entry, args)
        dyn, statics = self._split(args)
        leaves, in_tree = tree_flatten((dyn, kwargs))
        for x in leaves:
            if isinstance(x, Tracer):  # under another transform: trace through the function
                return self.fun(*args, **kwargs)
        key = (in_tree, tuple(_leaf_signature(x) for x in leaves), statics)
        entry = self._cache.get(key)
        if entry is None:
            entry = self._compile(args, statics, in_tree, leaves)
            if entry is None:  # the function closes over a tracer: cannot cache
                return self.fun(*args, **kwargs)
            self._cache[key] = entry
            if fast is not None:
                self._fast_cache[fast] = entry
        return self._run(entry, [x if hasattr(x, "shape") else np.asarray(x) for x in leaves])

    @staticmethod
    def _run(entry, leaves):
        outs = entry.run(*entry.consts, *leaves)
        return tree_unflatten(entry.out_tree, [as_writable_array(o) for o in outs])

    def _compile(self, args, statics, in_tree, leaves):
        static_map = dict(statics)
        store: dict = {}

        def f_flat(*xs):
            dyn, kwargs = tree_unflatten(in_tree, xs)
            it = iter(dyn)
            full = [static_map[i] if i in static_map else next(it) for i in range(len(args))]
            out = self.fun(*full, **kwargs)
            out_leaves, store["out_tree"] = tree_flatten(out)
            return out_leaves

        avals = [get_aval(np.asarray(x) if not hasattr(x, "shape") else x) for x in leaves]
        self.trace_count += 1
        with _gc_paused():
            program = trace_to_program(f_flat, avals)
            if any(isinstance(c, Tracer) for c in program.consts):
                return None
            program = optimize(program)
            run = get_executor(self.backend)(program)
        return Compiled(program, run, store["out_tree"])

    def lower(self, *args, **kwargs):
        """The optimized Program jit would run for these arguments."""
        dyn, statics = self._split(args)
        leaves, in_tree = tree_flatten((dyn, kwargs))
        entry = self._compile(args, statics, in_tree, leaves)
        return entry.program if entry is not None else None

    def cache_size(self) -> int:
        return len(self._cache)
