"""The user-facing transforms, with JAX names and semantics: jvp, vjp, linearize, grad,
value_and_grad, jacfwd, jacrev, hessian, vmap, make_ir."""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import lax
from .ad_util import Zero
from .array import as_array
from .aval import is_float
from .batching import BatchTrace, BatchTracer, move_batch_axis
from .ir import Program
from .jvp import jvp_flat
from .partial_eval import trace_to_program
from .reverse import apply_linear, linearize_flat, vjp_flat
from .trace import full_lower, full_raise, get_aval, new_main
from .tree import broadcast_prefix, tree_flatten, tree_leaves, tree_map, tree_unflatten


def _flatten_fun(f, in_tree, store):
    """f over pytrees -> f over flat leaves; the output tree is recorded in `store`."""

    def flat(*leaves):
        out = f(*tree_unflatten(in_tree, leaves))
        out_leaves, out_tree = tree_flatten(out)
        store["out_tree"] = out_tree
        return out_leaves

    return flat


def _wrap(x):
    """A transform's result as a writable `Array` (broadcast views are copied)."""
    if isinstance(x, np.ndarray) or np.isscalar(x):
        out = as_array(x)
        return out if out.flags.writeable else out.copy()
    return x


def _asarray_leaf(x):
    if isinstance(x, (int, float, bool, complex)) and not isinstance(x, np.ndarray):
        return as_array(np.asarray(x))
    return x


# ---- forward mode -----------------------------------------------------------------------------

def jvp(fun: Callable, primals: Sequence, tangents: Sequence):
    """(fun(*primals), directional derivative along tangents)."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples or lists of arguments")
    p_leaves, p_tree = tree_flatten(tuple(primals))
    t_leaves, t_tree = tree_flatten(tuple(tangents))
    if p_tree != t_tree:
        raise TypeError(f"jvp: primal structure {p_tree} differs from tangent structure {t_tree}")
    for p, t in zip(p_leaves, t_leaves):
        if get_aval(p).shape != get_aval(t).shape:
            raise ValueError(
                f"jvp: primal and tangent shapes differ: {get_aval(p).shape} vs {get_aval(t).shape}"
            )
    p_leaves = [_asarray_leaf(x) for x in p_leaves]
    t_leaves = [_asarray_leaf(x) for x in t_leaves]
    store: dict = {}
    outs, t_outs = jvp_flat(_flatten_fun(fun, p_tree, store), p_leaves, t_leaves)
    tree = store["out_tree"]
    return (
        tree_unflatten(tree, [_wrap(o) for o in outs]),
        tree_unflatten(tree, [_wrap(t) for t in t_outs]),
    )


def linearize(fun: Callable, *primals):
    """(fun(*primals), f_jvp) where f_jvp(*tangents) evaluates the linearized function."""
    leaves, in_tree = tree_flatten(primals)
    leaves = [_asarray_leaf(x) for x in leaves]
    store: dict = {}
    outs, program, diff = linearize_flat(_flatten_fun(fun, in_tree, store), leaves)
    out_tree = store["out_tree"]

    def f_jvp(*tangents):
        t_leaves, t_tree = tree_flatten(tangents)
        if t_tree != in_tree:
            raise TypeError(f"linearize: tangent structure {t_tree} differs from {in_tree}")
        ts = [t for t, d in zip(t_leaves, diff) if d]
        return tree_unflatten(out_tree, [_wrap(o) for o in apply_linear(program, ts)])

    return tree_unflatten(out_tree, [_wrap(o) for o in outs]), f_jvp


# ---- reverse mode -----------------------------------------------------------------------------

def vjp(fun: Callable, *primals, has_aux: bool = False):
    """(fun(*primals), vjp_fun[, aux]) with vjp_fun(cotangent) -> tuple of cotangents."""
    leaves, in_tree = tree_flatten(primals)
    leaves = [_asarray_leaf(x) for x in leaves]
    store: dict = {}

    def flat(*xs):
        out = fun(*tree_unflatten(in_tree, xs))
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError("has_aux=True requires the function to return a pair (out, aux)")
            out, aux = out
            aux_leaves, store["aux_tree"] = tree_flatten(aux)
            store["n_aux"] = len(aux_leaves)
        else:
            aux_leaves = []
        out_leaves, store["out_tree"] = tree_flatten(out)
        store["n_out"] = len(out_leaves)
        return out_leaves + aux_leaves

    outs, vjp_flat_fun = vjp_flat(flat, leaves)
    n_out, out_tree = store["n_out"], store["out_tree"]
    primals_out = tree_unflatten(out_tree, [_wrap(o) for o in outs[:n_out]])

    def vjp_fun(ct):
        ct_leaves, ct_tree = tree_flatten(ct)
        if ct_tree != out_tree:
            raise TypeError(f"vjp: cotangent structure {ct_tree} differs from output {out_tree}")
        for c, o in zip(ct_leaves, outs[:n_out]):
            ca, oa = get_aval(c), get_aval(o)
            if ca.shape != oa.shape:
                raise ValueError(
                    f"vjp: cotangent shape {ca.shape} differs from output shape {oa.shape}"
                )
            if is_float(oa.dtype) and ca.dtype != oa.dtype:
                raise TypeError(
                    f"vjp: cotangent dtype {ca.dtype.name} differs from the output dtype "
                    f"{oa.dtype.name}; cast the cotangent (e.g. .astype({oa.dtype.name}))"
                )
        cts_aux = [Zero(get_aval(a)) for a in outs[n_out:]]
        cts = vjp_flat_fun(list(ct_leaves) + cts_aux)
        return tree_unflatten(in_tree, [_wrap(c) for c in cts])

    if has_aux:
        aux = tree_unflatten(store["aux_tree"], [_wrap(a) for a in outs[n_out:]])
        return primals_out, vjp_fun, aux
    return primals_out, vjp_fun


def _check_argnums(argnums, nargs, name):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not isinstance(a, int) or not -nargs <= a < nargs:
            raise ValueError(
                f"{name}: argnums {argnums!r} out of range for a function called with "
                f"{nargs} positional arguments"
            )
    return tuple(a % nargs for a in nums)


def _check_float_inputs(name, args, argnums):
    for i in argnums:
        for leaf in tree_leaves(args[i]):
            dt = get_aval(leaf).dtype
            if not is_float(dt):
                raise TypeError(
                    f"{name} requires real-valued (floating-point) inputs, but argument {i} "
                    f"has dtype {dt.name}. Integer and boolean inputs have no gradient: convert "
                    f"them with .astype(float), or leave them out of argnums."
                )


def value_and_grad(fun: Callable, argnums=0, has_aux: bool = False):
    """Function returning (fun(*args), gradient w.r.t. args[argnums])."""

    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kwargs):
        nums = _check_argnums(argnums, len(args), "grad")
        _check_float_inputs("grad", args, nums)

        def partial_fun(*diff_args):
            full = list(args)
            for i, a in zip(nums, diff_args):
                full[i] = a
            return fun(*full, **kwargs)

        res = vjp(partial_fun, *[args[i] for i in nums], has_aux=has_aux)
        out, pullback = res[0], res[1]
        out_leaves = tree_leaves(out)
        if len(out_leaves) != 1 or get_aval(out_leaves[0]).shape != ():
            shape = get_aval(out_leaves[0]).shape if len(out_leaves) == 1 else "a pytree"
            raise TypeError(
                f"grad requires a scalar output (shape ()), but the function returned "
                f"shape {shape}. Use jacrev/jacfwd/vjp for non-scalar outputs, or reduce "
                f"the output (e.g. .sum())."
            )
        dt = get_aval(out_leaves[0]).dtype
        if not is_float(dt):
            raise TypeError(f"grad requires a floating-point output, got dtype {dt.name}")
        grads = pullback(np.ones((), dt))
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        if has_aux:
            return (out, res[2]), g
        return out, g

    return value_and_grad_fun


def grad(fun: Callable, argnums=0, has_aux: bool = False):
    """Gradient of a scalar function w.r.t. args[argnums] (a pytree like the argument)."""
    vg = value_and_grad(fun, argnums, has_aux)

    @functools.wraps(fun)
    def grad_fun(*args, **kwargs):
        (out, g) = vg(*args, **kwargs)
        if has_aux:
            return g, out[1]
        return g

    return grad_fun


# ---- vmap -------------------------------------------------------------------------------------

def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0):
    """Vectorize fun over the mapped axes of its arguments."""
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)

    @functools.wraps(fun)
    def batched(*args):
        if not args:
            raise TypeError("vmap: the function must be called with at least one argument")
        leaves, in_tree = tree_flatten(args)
        axes_spec = in_axes if not isinstance(in_axes, tuple) else tuple(in_axes)
        if isinstance(axes_spec, tuple) and len(axes_spec) != len(args):
            raise ValueError(
                f"vmap in_axes {in_axes!r} has {len(axes_spec)} entries but the function was "
                f"called with {len(args)} positional arguments"
            )
        axes = broadcast_prefix(axes_spec, args, "vmap in_axes")
        leaves = [x if ax is None else _asarray_leaf(x) for x, ax in zip(leaves, axes)]
        sizes, norm_axes = {}, []
        for i, (x, ax) in enumerate(zip(leaves, axes)):
            if ax is None:
                norm_axes.append(None)
                continue
            nd = len(get_aval(x).shape)
            if not -nd <= ax < nd:
                raise ValueError(
                    f"vmap was asked to map argument leaf {i} along axis {ax}, but it has "
                    f"rank {nd} (shape {get_aval(x).shape})"
                )
            ax %= nd
            norm_axes.append(ax)
            sizes[i] = get_aval(x).shape[ax]
        if not sizes:
            raise ValueError("vmap needs at least one mapped axis (in_axes are all None)")
        if len(set(sizes.values())) > 1:
            detail = ", ".join(
                f"argument leaf {i} has size {s} along axis {norm_axes[i]}"
                for i, s in sizes.items()
            )
            raise ValueError(f"vmap got inconsistent sizes for the mapped axes: {detail}")
        axis_size = next(iter(sizes.values()))
        with new_main(BatchTrace, axis_size) as main:
            trace = BatchTrace(main)
            tracers = [
                BatchTracer(trace, x, ax) if ax is not None else x
                for x, ax in zip(leaves, norm_axes)
            ]
            out = fun(*tree_unflatten(in_tree, tracers))
            out_leaves, out_tree = tree_flatten(out)
            out_axes_flat = broadcast_prefix(out_axes, out, "vmap out_axes")
            results = []
            for o, oax in zip(out_leaves, out_axes_flat):
                t = full_raise(trace, o)
                val, bdim = t.val, t.batch_dim
                if oax is not None:
                    nd = len(t.aval.shape) + 1
                    if not -nd <= oax < nd:
                        raise ValueError(f"vmap out_axes {oax} out of range for rank {nd} output")
                    oax %= nd
                results.append(move_batch_axis(axis_size, val, bdim, oax))
        return tree_unflatten(out_tree, [_wrap(full_lower(r)) for r in results])

    return batched


# ---- Jacobians ----------------------------------------------------------------------------------

def _std_basis(leaves):
    """Identity basis over the concatenated flattened leaves: one (N, *leaf.shape) per leaf."""
    sizes = [get_aval(x).size for x in leaves]
    n = sum(sizes)
    eye = np.eye(n, dtype=np.result_type(*[get_aval(x).dtype for x in leaves]))
    out, start = [], 0
    for x, s in zip(leaves, sizes):
        out.append(eye[:, start:start + s].reshape((n,) + get_aval(x).shape))
        start += s
    return out, n


def jacfwd(fun: Callable, argnums=0, has_aux: bool = False):
    """Jacobian by forward mode (vmap of jvp over the input basis); output axes first."""

    def jac_fun(*args):
        nums = _check_argnums(argnums, len(args), "jacfwd")
        _check_float_inputs("jacfwd", args, nums)
        dyn = tuple(args[i] for i in nums)
        dyn_leaves, dyn_tree = tree_flatten(dyn)

        def f_dyn(*dargs):
            full = list(args)
            for i, a in zip(nums, dargs):
                full[i] = a
            out = fun(*full)
            return out if has_aux else (out, None)

        basis, n = _std_basis(dyn_leaves)

        def push(*b_leaves):
            tangents = tree_unflatten(dyn_tree, b_leaves)
            (out, aux), (t_out, _) = jvp(f_dyn, dyn, tangents)
            return t_out, out, aux

        t_out, out, aux = vmap(push, out_axes=(-1, None, None))(*basis)
        jac = _split_jacobian(t_out, dyn_leaves, dyn_tree, argnums)
        return (jac, aux) if has_aux else jac

    return jac_fun


def jacrev(fun: Callable, argnums=0, has_aux: bool = False):
    """Jacobian by reverse mode (vmap of vjp over the output basis); output axes first."""

    def jac_fun(*args):
        nums = _check_argnums(argnums, len(args), "jacrev")
        _check_float_inputs("jacrev", args, nums)
        dyn = tuple(args[i] for i in nums)

        def f_dyn(*dargs):
            full = list(args)
            for i, a in zip(nums, dargs):
                full[i] = a
            return fun(*full)

        res = vjp(f_dyn, *dyn, has_aux=has_aux)
        out, pullback = res[0], res[1]
        out_leaves, out_tree = tree_flatten(out)
        basis, _ = _std_basis(out_leaves)
        cts = vmap(lambda *b: pullback(tree_unflatten(out_tree, b)))(*basis)
        # cts: pytree like dyn, each leaf (n_out, *in_shape); split rows per output leaf
        in_leaves, in_tree = tree_flatten(cts)
        per_out = []
        start = 0
        for o in out_leaves:
            oshape = get_aval(o).shape
            size = get_aval(o).size
            rows = [
                lax.reshape(lax.slice(c, (start,) + (0,) * (len(get_aval(c).shape) - 1),
                                      (start + size,) + get_aval(c).shape[1:]),
                            oshape + get_aval(c).shape[1:])
                for c in in_leaves
            ]
            inner = tree_unflatten(in_tree, [_wrap(r) for r in rows])
            per_out.append(inner[0] if isinstance(argnums, int) else inner)
            start += size
        jac = tree_unflatten(out_tree, per_out)
        return (jac, res[2]) if has_aux else jac

    return jac_fun


def _split_jacobian(t_out, dyn_leaves, dyn_tree, argnums):
    """Forward-mode Jacobian columns (out_shape + (N,)) -> per-input blocks."""
    out_leaves, out_tree = tree_flatten(t_out)
    per_out = []
    for o in out_leaves:
        oshape = get_aval(o).shape[:-1]
        blocks, start = [], 0
        for x in dyn_leaves:
            xa = get_aval(x)
            starts = (0,) * len(oshape) + (start,)
            limits = oshape + (start + xa.size,)
            blk = lax.slice(o, starts, limits)
            blocks.append(_wrap(lax.reshape(blk, oshape + xa.shape)))
            start += xa.size
        inner = tree_unflatten(dyn_tree, blocks)
        per_out.append(inner[0] if isinstance(argnums, int) else inner)
    return tree_unflatten(out_tree, per_out)


def hessian(fun: Callable, argnums=0, has_aux: bool = False):
    """Second derivatives: jacfwd(jacrev(fun))."""
    return jacfwd(jacrev(fun, argnums, has_aux), argnums, has_aux)


# ---- staging ------------------------------------------------------------------------------------

def make_ir(fun: Callable, static_argnums=(), optimize: bool = False):
    """make_ir(f)(*args) -> the traced Program (print it to read it)."""
    from .passes import optimize as run_passes

    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    def traced(*args) -> Program:
        dyn_idx = [i for i in range(len(args)) if i not in static]
        leaves, in_tree = tree_flatten(tuple(args[i] for i in dyn_idx))

        def f_flat(*xs):
            dyn = tree_unflatten(in_tree, xs)
            full = list(args)
            for i, a in zip(dyn_idx, dyn):
                full[i] = a
            return tree_leaves(fun(*full))

        program = trace_to_program(f_flat, [get_aval(_asarray_leaf(x)) for x in leaves])
        return run_passes(program) if optimize else program

    return traced


def stop_gradient(x):
    """Identity whose derivative is zero (applied leafwise to pytrees)."""
    return tree_map(lambda v: lax.stop_gradient(v) if is_float(get_aval(v).dtype) else v, x)
