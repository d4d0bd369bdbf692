"""Products and contractions: dot, matmul, inner, outer, tensordot, einsum (two-operand
contractions chained left to right, each a dot_general)."""
from __future__ import annotations

from .. import lax
from ._base import asarray, broadcast_shapes, broadcast_to_shape, promote
from .shape import ravel


def _dg(a, b, contract, batch=((), ())):
    return lax.dot_general(a, b, (contract, batch))


def _check(name, n, m, sa, sb):
    if n != m:
        raise ValueError(f"{name}: shapes {sa} and {sb} not aligned ({n} != {m})")


def dot(a, b):
    a, b = promote("dot", asarray(a), asarray(b))
    sa, sb = lax.shape(a), lax.shape(b)
    if sa == () or sb == ():
        from .math import multiply

        return multiply(a, b)
    if len(sb) == 1:
        _check("dot", sa[-1], sb[0], sa, sb)
        return _dg(a, b, ((len(sa) - 1,), (0,)))
    k = len(sb) - 2
    _check("dot", sa[-1], sb[k], sa, sb)
    return _dg(a, b, ((len(sa) - 1,), (k,)))


def matmul(a, b):
    a, b = promote("matmul", asarray(a), asarray(b))
    sa, sb = tuple(lax.shape(a)), tuple(lax.shape(b))
    if sa == () or sb == ():
        raise ValueError("matmul: input operands must not be scalars (use multiply)")
    va, vb = len(sa) == 1, len(sb) == 1
    if va:
        a, sa = lax.reshape(a, (1,) + sa), (1,) + sa
    if vb:
        b, sb = lax.reshape(b, sb + (1,)), sb + (1,)
    _check("matmul", sa[-1], sb[-2], sa, sb)
    batch = broadcast_shapes("matmul", sa[:-2], sb[:-2])
    a = broadcast_to_shape(a, batch + sa[-2:])
    b = broadcast_to_shape(b, batch + sb[-2:])
    nb = len(batch)
    out = _dg(a, b, ((nb + 1,), (nb,)), (tuple(range(nb)), tuple(range(nb))))
    shape = tuple(lax.shape(out))
    if va and vb:
        return lax.reshape(out, shape[:-2])
    if va:
        return lax.reshape(out, shape[:-2] + shape[-1:])
    if vb:
        return lax.reshape(out, shape[:-1])
    return out


def inner(a, b):
    a, b = promote("inner", asarray(a), asarray(b))
    sa, sb = lax.shape(a), lax.shape(b)
    if sa == () or sb == ():
        from .math import multiply

        return multiply(a, b)
    _check("inner", sa[-1], sb[-1], sa, sb)
    return _dg(a, b, ((len(sa) - 1,), (len(sb) - 1,)))


def vdot(a, b):
    return inner(ravel(a), ravel(b))


def outer(a, b):
    a, b = promote("outer", ravel(a), ravel(b))
    n, m = lax.shape(a)[0], lax.shape(b)[0]
    return lax.mul(lax.broadcast_in_dim(a, (n, m), (0,)), lax.broadcast_in_dim(b, (n, m), (1,)))


def tensordot(a, b, axes=2):
    a, b = promote("tensordot", asarray(a), asarray(b))
    sa, sb = lax.shape(a), lax.shape(b)
    if isinstance(axes, int):
        ca = tuple(range(len(sa) - axes, len(sa)))
        cb = tuple(range(axes))
    else:
        ca, cb = axes
        ca = (ca,) if isinstance(ca, int) else tuple(ca)
        cb = (cb,) if isinstance(cb, int) else tuple(cb)
        ca = tuple(c % len(sa) for c in ca)
        cb = tuple(c % len(sb) for c in cb)
    for i, j in zip(ca, cb):
        _check("tensordot", sa[i], sb[j], sa, sb)
    return _dg(a, b, (ca, cb))


# ---- einsum -------------------------------------------------------------------------------------

def _parse(subscripts: str, shapes):
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        lhs, out = subscripts.split("->")
    else:
        lhs, out = subscripts, None
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum: {len(terms)} operand subscripts for {len(shapes)} operands in {subscripts!r}"
        )
    used = set(c for c in subscripts if c.isalpha())
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in used]
    ell_len = 0
    for t, s in zip(terms, shapes):
        if "..." in t:
            ell_len = max(ell_len, len(s) - (len(t) - 3))
    ell = "".join(free[:ell_len])
    new_terms = []
    for t, s in zip(terms, shapes):
        if "..." in t:
            n = len(s) - (len(t) - 3)
            t = t.replace("...", ell[ell_len - n:])
        if len(t) != len(s):
            raise ValueError(f"einsum: subscripts {t!r} do not match an operand of rank {len(s)}")
        new_terms.append(t)
    if out is None:
        counts = {}
        for t in new_terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    return new_terms, out


def einsum(subscripts: str, *operands, optimize=None):
    """Einstein summation over explicit subscripts (no repeated index within one operand)."""
    operands = promote("einsum", *[asarray(o) for o in operands])
    terms, out = _parse(subscripts, [lax.shape(o) for o in operands])
    sizes: dict = {}
    for t, o in zip(terms, operands):
        if len(set(t)) != len(t):
            raise NotImplementedError(
                f"einsum: repeated index within one operand ({t!r}, a diagonal) is not supported"
            )
        for c, n in zip(t, lax.shape(o)):
            if sizes.setdefault(c, n) != n:
                raise ValueError(f"einsum: index {c!r} has sizes {sizes[c]} and {n}")
    ops = list(zip(terms, operands))
    term, x = ops[0]
    term, x = _sum_unused(term, x, [t for t, _ in ops[1:]], out)
    for k in range(1, len(ops)):
        t2, y = ops[k]
        later = "".join(t for t, _ in ops[k + 1:])
        t2, y = _sum_unused(t2, y, [term, later], out)
        term, x = _contract(term, x, t2, y, set(out) | set(later))
    if set(term) != set(out) or len(term) != len(out):
        term, x = _sum_unused(term, x, [], out)
    return lax.transpose(x, [term.index(c) for c in out])


def _sum_unused(term, x, others, out):
    """Sum away the indices of `term` that appear nowhere else."""
    elsewhere = set(out).union(*[set(o) for o in others]) if others else set(out)
    axes = [i for i, c in enumerate(term) if c not in elsewhere]
    if not axes:
        return term, x
    return "".join(c for c in term if c not in [term[i] for i in axes]), lax.reduce_sum(x, axes)


def _contract(ta, a, tb, b, keep):
    common = [c for c in ta if c in tb]
    batch = [c for c in common if c in keep]
    contract = [c for c in common if c not in keep]
    dn = (
        (tuple(ta.index(c) for c in contract), tuple(tb.index(c) for c in contract)),
        (tuple(ta.index(c) for c in batch), tuple(tb.index(c) for c in batch)),
    )
    out = lax.dot_general(a, b, dn)
    free_a = [c for c in ta if c not in common]
    free_b = [c for c in tb if c not in common]
    return "".join(batch + free_a + free_b), out

