"""Pytrees: nested containers (tuple, list, dict, None, namedtuple, dataclass, registered types)
flattened to a list of leaves plus a hashable structure, as in JAX."""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

_registry: dict[type, tuple[Callable, Callable]] = {}


def register_pytree_node(nodetype: type, flatten_fn: Callable, unflatten_fn: Callable) -> None:
    """Register a container type: flatten_fn(x) -> (children, aux); unflatten_fn(aux, children)."""
    _registry[nodetype] = (flatten_fn, unflatten_fn)


register_pytree_node(tuple, lambda t: (t, None), lambda _, c: tuple(c))
register_pytree_node(list, lambda t: (t, None), lambda _, c: list(c))
register_pytree_node(
    dict,
    lambda d: (tuple(d[k] for k in sorted(d)), tuple(sorted(d))),
    lambda keys, c: dict(zip(keys, c)),
)
register_pytree_node(
    OrderedDict,
    lambda d: (tuple(d.values()), tuple(d)),
    lambda keys, c: OrderedDict(zip(keys, c)),
)
register_pytree_node(type(None), lambda _: ((), None), lambda _, c: None)


_derived: dict[type, tuple[Callable, Callable] | None] = {}  # type -> handler (None: leaf)


def _node_handler(x: Any):
    """(flatten, unflatten) for a container, or None for a leaf. Whether a type is a
    namedtuple, a dataclass or a leaf is decided once per type (flattening a ReaxFF call's
    ~130 leaves per jit dispatch made these checks a visible part of a small molecule's
    evaluation)."""
    cls = type(x)
    handler = _registry.get(cls)
    if handler is not None:
        return handler
    try:
        return _derived[cls]
    except KeyError:
        pass
    handler = None
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):  # namedtuple
        handler = (lambda t: (tuple(t), None), lambda _, c, cls=cls: cls(*c))
    elif dataclasses.is_dataclass(cls) and not issubclass(cls, type):
        names = tuple(f.name for f in dataclasses.fields(cls))
        handler = (
            lambda d, names=names: (tuple(getattr(d, n) for n in names), None),
            lambda _, c, cls=cls, names=names: cls(**dict(zip(names, c))),
        )
    _derived[cls] = handler
    return handler


class PyTreeDef(NamedTuple):
    """Hashable description of a pytree's structure (node type, aux data, children)."""

    node_type: Any
    aux: Any
    children: tuple
    num_leaves: int

    def __repr__(self) -> str:
        if self.node_type is None:
            return "*"
        name = getattr(self.node_type, "__name__", str(self.node_type))
        return f"{name}({', '.join(map(repr, self.children))})"


_LEAF = PyTreeDef(None, None, (), 1)


def tree_flatten(tree: Any, is_leaf: Callable | None = None) -> tuple[list, PyTreeDef]:
    """Return (leaves, treedef)."""
    leaves: list = []
    treedef = _flatten(tree, leaves, is_leaf)
    return leaves, treedef


def _flatten(x, leaves, is_leaf):
    if is_leaf is not None and is_leaf(x):
        leaves.append(x)
        return _LEAF
    handler = _node_handler(x)
    if handler is None:
        leaves.append(x)
        return _LEAF
    children, aux = handler[0](x)
    defs = tuple(_flatten(c, leaves, is_leaf) for c in children)
    return PyTreeDef(type(x), aux, defs, sum(d.num_leaves for d in defs))


def tree_unflatten(treedef: PyTreeDef, leaves) -> Any:
    """Inverse of tree_flatten."""
    it = iter(leaves)
    out = _unflatten(treedef, it)
    return out


def _unflatten(treedef, it):
    if treedef.node_type is None:
        return next(it)
    children = [_unflatten(c, it) for c in treedef.children]
    handler = _registry.get(treedef.node_type)
    if handler is None:  # namedtuple / dataclass: rebuild the handler from the type
        cls = treedef.node_type
        if dataclasses.is_dataclass(cls):
            names = [f.name for f in dataclasses.fields(cls)]
            return cls(**dict(zip(names, children)))
        return cls(*children)
    return handler[1](treedef.aux, children)


def tree_leaves(tree: Any, is_leaf: Callable | None = None) -> list:
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree: Any) -> PyTreeDef:
    return tree_flatten(tree)[1]


def tree_map(f: Callable, tree: Any, *rest: Any, is_leaf: Callable | None = None) -> Any:
    """Apply f leafwise to one or more pytrees of the same structure."""
    leaves, treedef = tree_flatten(tree, is_leaf)
    others = []
    for r in rest:
        r_leaves, r_def = tree_flatten(r, is_leaf)
        if r_def != treedef:
            raise ValueError(f"tree_map: pytree structures differ: {treedef} vs {r_def}")
        others.append(r_leaves)
    return tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *others)])


def broadcast_prefix(prefix: Any, tree: Any, what: str) -> list:
    """Expand a pytree prefix (e.g. vmap in_axes, with ints and None as leaves) to one entry per
    leaf of `tree`."""
    out: list = []

    def walk(p, t, path):
        if p is None or isinstance(p, int):
            out.extend([p] * len(tree_leaves(t)))
            return
        handler = _node_handler(t)
        p_handler = _node_handler(p)
        if handler is None or p_handler is None or type(p) is not type(t):
            raise ValueError(
                f"{what} specification must be a tree prefix of the arguments: "
                f"got {prefix!r} for a value of structure {tree_structure(tree)} "
                f"(mismatch at {path or 'top level'})"
            )
        pc, paux = p_handler[0](p)
        tc, taux = handler[0](t)
        if len(pc) != len(tc) or paux != taux:
            detail = f"{len(pc)} entries vs {len(tc)}"
            if isinstance(p, dict):
                detail = f"keys {sorted(p)} vs {sorted(t)}"
            raise ValueError(
                f"{what} specification {prefix!r} does not match the structure of the "
                f"arguments {tree_structure(tree)} at {path or 'top level'}: {detail}"
            )
        for i, (a, b) in enumerate(zip(pc, tc)):
            walk(a, b, f"{path}[{i}]")

    walk(prefix, tree, "")
    return out
