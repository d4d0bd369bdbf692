"""reaxgrad.core: the function-transform engine (JAX-like API over NumPy/CuPy arrays).

Transforms: grad, value_and_grad, jvp, vjp, linearize, jacfwd, jacrev, hessian, vmap, jit,
custom_jvp, custom_vjp, stop_gradient, make_ir; pytree utilities; `numpy` (array API) and
`ops.segment_sum`.
"""
from __future__ import annotations

from . import lax, numpy, ops  # noqa: F401
from .api import (
    grad,
    hessian,
    jacfwd,
    jacrev,
    jvp,
    linearize,
    make_ir,
    stop_gradient,
    value_and_grad,
    vjp,
    vmap,
)
from .array import Array
from .callback import pure_callback
from .custom import custom_jvp, custom_vjp
from .ir import Program
from .jit import jit
from .trace import ConcretizationError, UnexpectedTracerError
from .tree import (
    register_pytree_node,
    tree_flatten,
    tree_leaves,
    tree_map,
    tree_structure,
    tree_unflatten,
)

__all__ = [
    "Array", "ConcretizationError", "Program", "UnexpectedTracerError", "custom_jvp",
    "custom_vjp", "grad", "hessian", "jacfwd", "jacrev", "jit", "jvp", "lax", "linearize",
    "make_ir", "numpy", "ops", "pure_callback", "register_pytree_node", "stop_gradient",
    "tree_flatten", "tree_leaves", "tree_map", "tree_structure", "tree_unflatten",
    "value_and_grad", "vjp", "vmap",
]
