"""Regression tests for engine bugs found while writing the suite: custom_vjp bwd returning
None, custom rules with nondiff_argnums under vmap, unmapped vmap arguments left as they are,
cotangent dtype checks, in_axes structure messages, writable transform results."""
import functools

import numpy as np
import pytest

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp


def test_custom_vjp_bwd_may_return_none_for_zero_cotangents():
    """core/custom.py `_custom_lin_transpose`: JAX's documented clip_gradient example returns
    None for the cotangents of the bounds; the engine rejects it ("bwd returned structure
    NoneType(), expected *"). None should mean a zero cotangent for that argument."""

    @rc.custom_vjp
    def clip_gradient(lo, hi, x):
        return x

    clip_gradient.defvjp(
        lambda lo, hi, x: (x, (lo, hi)),
        lambda res, g: (None, None, jnp.clip(g, res[0], res[1])),
    )
    assert rc.grad(lambda x: 2.0 * clip_gradient(-0.75, 0.75, x))(0.1) == 0.75


@functools.partial(rc.custom_vjp, nondiff_argnums=(0,))
def _scaled_square_vjp(n, x):
    return n * x**2


_scaled_square_vjp.defvjp(lambda n, x: (n * x**2, x), lambda n, x, g: (2 * n * x * g,))


@functools.partial(rc.custom_jvp, nondiff_argnums=(0,))
def _scaled_square_jvp(n, x):
    return n * x**2


@_scaled_square_jvp.defjvp
def _(n, primals, tangents):
    return _scaled_square_jvp(n, primals[0]), 2 * n * primals[0] * tangents[0]


@pytest.mark.parametrize("fn", [_scaled_square_vjp, _scaled_square_jvp], ids=["vjp", "jvp"])
def test_derivative_of_vmapped_custom_rule_with_nondiff_argnums(fn):
    """core/custom.py `custom_batch_process`: the vmapped custom function it builds drops
    `nondiff_argnums`, so its jvp rule / bwd are called without the non-differentiable
    arguments (custom_vjp: "<lambda>() missing 1 required positional argument: 'g'";
    custom_jvp: "vmap in_axes specification ((0,), (0,)) does not match ..."). vmap(grad(f))
    works; grad(vmap(f)) does not. Fix: pass nondiff_argnums to the new custom_jvp/custom_vjp
    and prepend the (unbatched) nondiff arguments when calling cf.jvp / cf.bwd."""
    xs = np.arange(3.0)
    g = rc.grad(lambda v: jnp.sum(rc.vmap(lambda x: fn(3.0, x))(v)))(xs)
    np.testing.assert_allclose(g, 6.0 * xs)


def test_vmap_passes_unmapped_arguments_through_unchanged():
    """core/api.py `vmap.batched`: every leaf goes through `_asarray_leaf`, including those with
    in_axes=None, so a Python int meant as a static argument of an inner jit arrives as an
    Array ("jit: static argument 1 of type Array is not hashable"). JAX passes unmapped
    arguments through untouched. Fix: convert only the mapped leaves."""
    power = rc.jit(lambda x, n: x**n, static_argnums=1)
    out = rc.vmap(power, in_axes=(0, None))(np.arange(3.0), 2)
    np.testing.assert_array_equal(out, [0.0, 1.0, 4.0])
    seen = []
    rc.vmap(lambda x, n: seen.append(type(n)) or x, in_axes=(0, None))(np.ones(2), 2)
    assert seen == [int]


def test_vjp_cotangent_dtype_must_match_the_output():
    """core/api.py `vjp.vjp_fun` checks cotangent shapes but not dtypes: a float64 cotangent
    for a float32 output silently yields a float64 "gradient" of a float32 input. JAX raises
    a TypeError naming both dtypes; casting to the output dtype would also be acceptable."""
    _, pullback = rc.vjp(lambda x: x * 2.0, np.ones(2, np.float32))
    try:
        (ct,) = pullback(np.ones(2))
    except TypeError as exc:
        assert "float32" in str(exc) and "float64" in str(exc)
    else:
        assert ct.dtype == np.float32


def test_in_axes_key_mismatch_message_names_the_keys():
    """core/tree.py `broadcast_prefix`: a dict in_axes with the wrong keys reports
    "1 entries vs 1" (the counts agree; the keys differ). The message should name the keys."""
    with pytest.raises(ValueError, match=r"'b'.*'a'|'a'.*'b'"):
        rc.vmap(lambda d: d["a"], in_axes=({"b": 0},))({"a": np.ones(3)})


def test_eager_results_are_consistently_writable():
    """Design question for core/trace.py `_eval` / core/array.py `as_array`: eager results are
    sometimes read-only zero-stride views (the broadcast_in_dim impl returns np.broadcast_to,
    and `_eval`'s uniform fast path keeps results as broadcast views on purpose) and
    sometimes ordinary arrays, depending on the values: grad(sum) is read-only, grad(sum of
    squares) is writable. `Array` is documented as a NumPy array that NumPy and SciPy accept
    unchanged, so code like `forces[frozen] = 0.0` works or fails with the data. Either hand
    out writable arrays at the eager boundary (copy zero-stride results in as_array for
    results leaving a transform) or make every eager result read-only, like JAX."""
    g = rc.grad(jnp.sum)(np.ones(3))
    h = rc.grad(lambda x: jnp.sum(x**2))(np.array([1.0, 2.0, 3.0]))
    assert g.flags.writeable == h.flags.writeable
