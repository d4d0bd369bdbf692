"""pure_callback: call host NumPy/SciPy code (e.g. an iterative solver) from inside traced and
jit-compiled functions. The callee must be pure; derivatives come from a custom_jvp/custom_vjp
around the call, as in JAX."""
from __future__ import annotations

import numpy as np

from .aval import ShapedArray
from .primitive import Primitive, batch_rules, impl_rules, shape_rules
from .tree import tree_flatten, tree_unflatten

pure_callback_p = Primitive("pure_callback", multiple_results=True)


def _impl(*args, callback, result_avals, in_tree, out_tree):
    out = callback(*tree_unflatten(in_tree, [np.asarray(a) for a in args]))
    leaves, tree = tree_flatten(out)
    if tree != out_tree:
        raise TypeError(f"pure_callback: the callback returned structure {tree}, "
                        f"declared {out_tree}")
    results = []
    for x, aval in zip(leaves, result_avals):
        x = np.asarray(x)
        if x.shape != aval.shape:
            raise TypeError(f"pure_callback: result of shape {x.shape}, declared {aval.shape}")
        results.append(x.astype(aval.dtype, copy=False))
    return results


def _batch(axis_size, vals, dims, *, callback, result_avals, in_tree, out_tree):
    """Run the callback once per example (it sees unbatched arguments)."""
    from .batching import _index, _stack

    outs = []
    for k in range(axis_size):
        args = [v if d is None else _index(v, d, k) for v, d in zip(vals, dims)]
        outs.append(pure_callback_p.bind(*args, callback=callback, result_avals=result_avals,
                                         in_tree=in_tree, out_tree=out_tree))
    stacked = [_stack([o[i] for o in outs]) for i in range(len(result_avals))]
    return stacked, [0] * len(stacked)


impl_rules[pure_callback_p] = _impl
shape_rules[pure_callback_p] = lambda *avals, result_avals, **_: list(result_avals)
batch_rules[pure_callback_p] = _batch


def pure_callback(callback, result_shape_dtypes, *args):
    """callback(*args) evaluated on concrete NumPy arrays, also under jit and vmap (one call
    per example). `result_shape_dtypes`: pytree of objects with .shape and .dtype."""
    leaves, in_tree = tree_flatten(args)
    res_leaves, out_tree = tree_flatten(result_shape_dtypes)
    avals = tuple(ShapedArray(r.shape, r.dtype) for r in res_leaves)
    outs = pure_callback_p.bind(*leaves, callback=callback, result_avals=avals,
                                in_tree=in_tree, out_tree=out_tree)
    return tree_unflatten(out_tree, outs)
