"""User-defined derivative rules: custom_jvp (.defjvp) and custom_vjp (.defvjp)."""
from __future__ import annotations

import functools

from . import lax
from .ad_util import Zero, instantiate, is_undefined
from .aval import ShapedArray
from .primitive import Primitive, impl_rules, shape_rules, transpose_rules
from .trace import Tracer, find_top_trace, full_raise, get_aval
from .tree import tree_flatten, tree_leaves, tree_map, tree_unflatten


class custom_jvp:
    """Wrap fun so that forward-mode (and hence reverse-mode) derivatives use a given rule."""

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp = None

    def defjvp(self, jvp):
        """jvp(*nondiff_args, primals, tangents) -> (primal_out, tangent_out)."""
        self.jvp = jvp
        return jvp

    def __call__(self, *args):
        if self.jvp is None:
            raise AttributeError(
                f"custom_jvp function {self.fun.__name__} has no JVP rule: call .defjvp first"
            )
        return find_top_trace(tree_leaves(args)).process_custom_jvp_call(self, args)


class custom_vjp:
    """Wrap fun so that reverse-mode derivatives use fwd/bwd functions."""

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd = None
        self.bwd = None

    def defvjp(self, fwd, bwd):
        """fwd(*args) -> (out, residuals); bwd(*nondiff_args, residuals, ct) -> tuple of cts."""
        self.fwd = fwd
        self.bwd = bwd

    def __call__(self, *args):
        if self.fwd is None:
            raise AttributeError(
                f"custom_vjp function {self.fun.__name__} has no rule: call .defvjp first"
            )
        return find_top_trace(tree_leaves(args)).process_custom_vjp_call(self, args)


def _split_jvp_args(trace, cf, args):
    """Primal and tangent pytrees of the differentiable arguments, the other arguments, and
    whether every tangent is a symbolic zero."""
    primals, tangents, all_zero = [], [], True
    for i, a in enumerate(args):
        if i in cf.nondiff_argnums:
            continue
        leaves, tree = tree_flatten(a)
        raised = [full_raise(trace, x) for x in leaves]
        all_zero = all_zero and all(type(r.tangent) is Zero for r in raised)
        primals.append(tree_unflatten(tree, [r.primal for r in raised]))
        tangents.append(tree_unflatten(tree, [instantiate(r.tangent) for r in raised]))
    nondiff = [args[i] for i in cf.nondiff_argnums]
    return nondiff, tuple(primals), tuple(tangents), all_zero


def _call_primal(trace, cf, args, primals):
    """Nothing to differentiate: evaluate the function below this trace, zero tangents."""
    from .jvp import JVPTracer

    full = list(args)
    it = iter(primals)
    for i in range(len(full)):
        if i not in cf.nondiff_argnums:
            full[i] = next(it)
    out = cf(*full)  # through the custom object: levels below may still differentiate
    return tree_map(lambda o: JVPTracer(trace, o, Zero(get_aval(o))), out)


def custom_jvp_process(trace, cf: custom_jvp, args):
    from .jvp import JVPTracer

    nondiff, primals, tangents, all_zero = _split_jvp_args(trace, cf, args)
    if all_zero:
        return _call_primal(trace, cf, args, primals)
    out, t_out = cf.jvp(*nondiff, primals, tangents)
    return tree_map(lambda p, t: JVPTracer(trace, p, t), out, t_out)


custom_lin_p = Primitive("custom_lin", multiple_results=True)


def _custom_lin_impl(*args, **params):
    raise TypeError(
        "can't apply forward-mode differentiation (jvp/jacfwd) to a custom_vjp function; "
        "use reverse mode (grad, vjp, jacrev)"
    )


def _custom_lin_transpose(cts, *args, num_res, bwd, out_tree, in_trees, nondiff, out_avals):
    res = args[:num_res]
    tangent_avals = [a.aval if is_undefined(a) else get_aval(a) for a in args[num_res:]]
    assert not any(is_undefined(r) for r in res)
    ct_tree = tree_unflatten(out_tree, cts)
    cts_in = bwd(*nondiff, tree_unflatten(in_trees[0], list(res)), ct_tree)
    if not isinstance(cts_in, (tuple, list)) or len(cts_in) != len(in_trees) - 1:
        raise TypeError(
            f"custom_vjp bwd must return a tuple with one cotangent per differentiable "
            f"argument ({len(in_trees) - 1}), got {type(cts_in).__name__}"
        )
    flat = []
    avals = iter(tangent_avals)
    for ct, tree in zip(cts_in, in_trees[1:]):
        if ct is None:  # None: a zero cotangent for the whole argument
            flat.extend(None for _ in range(tree.num_leaves))
            for _ in range(tree.num_leaves):
                next(avals)
            continue
        leaves, t = tree_flatten(ct)
        if t != tree:
            raise TypeError(f"custom_vjp bwd returned structure {t}, expected {tree}")
        for leaf in leaves:
            aval = next(avals)
            flat.append(None if leaf is None else leaf)
            if leaf is not None and tuple(lax.shape(leaf)) != aval.shape:
                raise TypeError(
                    f"custom_vjp bwd returned a cotangent of shape {lax.shape(leaf)} for an "
                    f"argument of shape {aval.shape}"
                )
    return [None] * num_res + flat


impl_rules[custom_lin_p] = _custom_lin_impl
shape_rules[custom_lin_p] = lambda *avals, out_avals, **_: list(out_avals)
transpose_rules[custom_lin_p] = _custom_lin_transpose


def custom_vjp_process(trace, cf: custom_vjp, args):
    from .jvp import JVPTracer

    nondiff, primals, tangents, all_zero = _split_jvp_args(trace, cf, args)
    if all_zero:
        return _call_primal(trace, cf, args, primals)
    full = list(args)
    it = iter(primals)
    for i in range(len(full)):
        if i not in cf.nondiff_argnums:
            full[i] = next(it)
    out, res = cf.fwd(*full)
    out_leaves, out_tree = tree_flatten(out)
    res_leaves, res_tree = tree_flatten(res)
    t_leaves, in_trees = [], [res_tree]
    for t in tangents:
        leaves, tree = tree_flatten(t)
        t_leaves.extend(leaves)
        in_trees.append(tree)
    out_avals = tuple(ShapedArray(lax.shape(o), lax.dtype(o)) for o in out_leaves)
    t_out = custom_lin_p.bind(
        *res_leaves, *t_leaves, num_res=len(res_leaves), bwd=cf.bwd, out_tree=out_tree,
        in_trees=tuple(in_trees), nondiff=tuple(nondiff), out_avals=out_avals,
    )
    return tree_unflatten(out_tree, [JVPTracer(trace, p, t) for p, t in zip(out_leaves, t_out)])


def custom_batch_process(trace, cf, args):
    """vmap of a custom-rule function: a new custom function whose pieces are vmapped."""
    from .api import vmap
    from .batching import BatchTracer

    leaves, tree = tree_flatten(args)
    vals, dims = [], []
    for x in leaves:
        if isinstance(x, Tracer):
            r = full_raise(trace, x)
            vals.append(r.val)
            dims.append(r.batch_dim)
        else:
            vals.append(x)
            dims.append(None)
    lowered = tree_unflatten(tree, vals)
    if all(d is None for d in dims):
        return cf(*lowered)
    in_axes = tree_unflatten(tree, dims)
    nd = cf.nondiff_argnums
    if any(d is not None for i, a in enumerate(in_axes) if i in nd
           for d in tree_leaves(a, is_leaf=lambda v: v is None)):
        raise NotImplementedError("vmap over a nondiff_argnums argument of a custom rule")
    diff_axes = tuple(a for i, a in enumerate(in_axes) if i not in nd)
    nondiff = [lowered[i] for i in nd]
    if isinstance(cf, custom_jvp):
        new = custom_jvp(vmap(cf.fun, in_axes=in_axes, out_axes=0), nondiff_argnums=nd)

        def rule(*args):
            primals, tangents = args[-2], args[-1]
            return vmap(lambda p, t: cf.jvp(*nondiff, p, t), in_axes=(diff_axes, diff_axes),
                        out_axes=0)(primals, tangents)

        new.defjvp(rule)
    else:
        new = custom_vjp(vmap(cf.fun, in_axes=in_axes, out_axes=0), nondiff_argnums=nd)
        fwd = vmap(cf.fwd, in_axes=in_axes, out_axes=0)
        arg_dims = [tree_leaves(a, is_leaf=lambda v: v is None) for a in diff_axes]

        def bwd(*args):
            res, ct = args[-2], args[-1]
            cts = vmap(lambda r, c: cf.bwd(*nondiff, r, c), in_axes=(0, 0), out_axes=0)(res, ct)
            out = []
            for c, d in zip(cts, arg_dims):
                if c is None:
                    out.append(None)
                    continue
                c_leaves, c_tree = tree_flatten(c)
                fixed = [
                    lax.reduce_sum(x, (0,)) if dd is None else lax.moveaxis(x, 0, dd)
                    for x, dd in zip(c_leaves, d)
                ]
                out.append(tree_unflatten(c_tree, fixed))
            return tuple(out)

        new.defvjp(fwd, bwd)
    out = new(*lowered)
    return tree_map(lambda o: BatchTracer(trace, o, 0), out)
