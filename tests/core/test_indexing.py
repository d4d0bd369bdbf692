"""Indexing (gather / scatter primitives and numpy-layer getitem, take, .at[] updates):
slices with negative steps, integer-array gathers, duplicate-index scatters, gradients w.r.t.
both the array and the updates, traced integer indices under jit and vmap."""
import numpy as np
import pytest
from cases import INDEXING, bind
from check_grads import check_grads

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp


@pytest.mark.parametrize("name", sorted(INDEXING))
def test_check_grads(name):
    fn, args = INDEXING[name]
    check_grads(bind(fn), args, modes=("fwd", "rev"), order=2)


X = np.arange(60.0).reshape(3, 4, 5)
I = np.array([2, 0, -1, 2])
INDICES = [
    (slice(None, None, -1),),
    (slice(3, 0, -2),),
    (Ellipsis, slice(None, None, -2)),
    (slice(-2, None), slice(None, None, -1), 1),
    (1, slice(1, 3)),
    (-1, -1, -1),
    (None, 1),
    (Ellipsis, None),
    (I,),
    (I, slice(1, 3)),
    (slice(None), I[:3], 0),
    (I, I[::-1] % 4),
    (I, slice(None), I % 5),
    (np.array([[0, 1], [2, 2]]),),
    (np.array([True, False, True]),),
    (slice(None), np.array([False, True, True, False])),
    ([0, 2],),
]


@pytest.mark.parametrize("idx", INDICES, ids=[str(i) for i in range(len(INDICES))])
def test_getitem_matches_numpy_and_transposes(idx):
    want = X[idx]
    np.testing.assert_array_equal(jnp.asarray(X)[idx], want)
    np.testing.assert_array_equal(rc.jit(lambda v: v[idx])(X), want)
    # gradient of sum(w * x[idx]): w scattered back (accumulating repeated positions)
    w = np.random.default_rng(0).standard_normal(want.shape)
    g = rc.grad(lambda v: jnp.sum(v[idx] * w))(X)
    expected = np.zeros_like(X)
    np.add.at(expected, idx, w)
    np.testing.assert_allclose(g, expected, rtol=1e-14)


def test_take_and_negative_indices():
    x = jnp.asarray(X)
    np.testing.assert_array_equal(jnp.take(x, I, axis=1), np.take(X, I, axis=1))
    np.testing.assert_array_equal(jnp.take(x, I), np.take(X, I))
    np.testing.assert_array_equal(x.take(I, axis=2), np.take(X, I, axis=2))
    g = rc.grad(lambda v: jnp.sum(jnp.take(v, I, axis=2)))(X)
    want = np.zeros_like(X)
    for i in I:
        want[:, :, i] += 1.0
    np.testing.assert_array_equal(g, want)


def test_out_of_bounds_concrete_index_raises():
    with pytest.raises(IndexError, match="out of bounds"):
        jnp.asarray(X)[np.array([0, 3])]
    with pytest.raises(IndexError, match="out of bounds"):
        rc.jit(lambda v: v[5])(X)


U = np.array([10.0, 20.0, 30.0, 40.0])
DUPS = np.array([1, 3, 1, 1])


def test_at_add_duplicates_value_and_gradients():
    x = np.arange(5.0)
    out = jnp.asarray(x).at[DUPS].add(U)
    np.testing.assert_array_equal(out, [0.0, 81.0, 2.0, 23.0, 4.0])
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    gx, gu = rc.grad(lambda a, u: jnp.sum(a.at[DUPS].add(u) * w), argnums=(0, 1))(x, U)
    np.testing.assert_array_equal(gx, w)
    np.testing.assert_array_equal(gu, w[DUPS])
    # second derivative through the scatter: d2/du2 of sum(out**2) = 2 * [idx_k == idx_l]
    h = rc.hessian(lambda u: jnp.sum(jnp.asarray(x).at[DUPS].add(u) ** 2))(U)
    np.testing.assert_array_equal(h, 2.0 * (DUPS[:, None] == DUPS[None, :]))


def test_at_set_value_and_gradients():
    x = np.arange(5.0)
    idx = np.array([3, 0])
    out = jnp.asarray(x).at[idx].set(U[:2])
    np.testing.assert_array_equal(out, [20.0, 1.0, 2.0, 10.0, 4.0])
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    gx, gu = rc.grad(lambda a, u: jnp.sum(a.at[idx].set(u) * w), argnums=(0, 1))(x, U[:2])
    np.testing.assert_array_equal(gx, [0.0, 2.0, 3.0, 0.0, 5.0])
    np.testing.assert_array_equal(gu, [4.0, 1.0])
    # duplicates: the written position gets no gradient w.r.t. the operand
    gx = rc.grad(lambda a: jnp.sum(a.at[DUPS].set(U) * w))(x)
    np.testing.assert_array_equal(gx, [1.0, 0.0, 3.0, 0.0, 5.0])


def test_at_multiply_duplicates_value_and_gradients():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    u = np.array([2.0, 3.0, 5.0, 7.0])
    out = jnp.asarray(x).at[DUPS].multiply(u)
    np.testing.assert_array_equal(out, [1.0, 2.0 * 2 * 5 * 7, 3.0, 4.0 * 3, 5.0])
    gx, gu = rc.grad(lambda a, v: jnp.sum(a.at[DUPS].multiply(v)), argnums=(0, 1))(x, u)
    np.testing.assert_array_equal(gx, [1.0, 70.0, 1.0, 3.0, 1.0])
    np.testing.assert_array_equal(gu, [2.0 * 5 * 7, 4.0, 2.0 * 2 * 7, 2.0 * 2 * 5])


@pytest.mark.parametrize("zeros", [[0], [0, 2], [1]])
def test_at_multiply_with_zero_factors_is_exact(zeros):
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    u = np.array([2.0, 3.0, 5.0, 7.0])
    u[zeros] = 0.0
    gu = rc.grad(lambda v: jnp.sum(jnp.asarray(x).at[DUPS].multiply(v)))(u)
    want = np.array(
        [x[DUPS[k]] * np.prod([u[j] for j in range(4) if DUPS[j] == DUPS[k] and j != k])
         for k in range(4)]
    )
    np.testing.assert_array_equal(gu, want)
    fd = rc.jacfwd(lambda v: jnp.sum(jnp.asarray(x).at[DUPS].multiply(v)))(u)
    np.testing.assert_array_equal(fd, want)


def test_at_updates_on_rows_and_2d_indices():
    x = np.zeros((3, 2))
    out = jnp.asarray(x).at[np.array([2, 2, 0])].add(np.ones((3, 2)))
    np.testing.assert_array_equal(out, [[1, 1], [0, 0], [2, 2]])
    out = jnp.asarray(x).at[1, 0].set(7.0)
    np.testing.assert_array_equal(out, [[0, 0], [7, 0], [0, 0]])
    out = jnp.asarray(x).at[:, 1].add(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(out, [[0, 1], [0, 2], [0, 3]])
    out = jnp.asarray(x).at[np.array([0, 0]), np.array([1, 1])].add(5.0)
    np.testing.assert_array_equal(out, [[0, 10], [0, 0], [0, 0]])


def test_traced_integer_indices_under_jit_vmap_and_grad():
    x = np.arange(12.0).reshape(4, 3)
    idx = np.array([3, 1, 1])
    f = rc.jit(lambda v, i: v[i] * 2.0)
    np.testing.assert_array_equal(f(x, idx), x[idx] * 2.0)
    assert f.trace_count == 1
    f(x, np.array([0, 0, 2]))  # same shape and dtype: no retrace
    assert f.trace_count == 1
    # integer index arrays get no gradient and do not disturb the gradient of x
    g = rc.grad(lambda v, i: jnp.sum(v[i] ** 2))(x, idx)
    want = np.zeros_like(x)
    np.add.at(want, idx, 2 * x[idx])
    np.testing.assert_array_equal(g, want)
    np.testing.assert_array_equal(rc.jit(rc.grad(lambda v, i: jnp.sum(v[i] ** 2)))(x, idx), want)
    # the cotangent of an integer argument is zero (no gradient flows into indices)
    ct_x, ct_i = rc.vjp(lambda v, i: v[i], x, idx)[1](np.ones((3, 3)))
    np.testing.assert_array_equal(ct_i, np.zeros(3))
    # batched indices into an unbatched table, and batched table with batched indices
    table = jnp.asarray(x)  # an eager Array indexed by tracers dispatches to traced indexing
    batched = rc.vmap(lambda i: table[i])(idx)
    np.testing.assert_array_equal(batched, x[idx])
    both = rc.vmap(lambda row, i: row[i])(x[:3], idx % 3)
    np.testing.assert_array_equal(both, x[np.arange(3), idx % 3])
    cols = rc.vmap(lambda col, i: col[i], in_axes=(1, 0))(x, idx)
    np.testing.assert_array_equal(cols, x[idx, np.arange(3)])
    scattered = rc.vmap(lambda row, i: row.at[i].add(1.0))(x[:3], idx % 3)
    want = x[:3].copy()
    want[np.arange(3), idx % 3] += 1.0
    np.testing.assert_array_equal(scattered, want)


def test_boolean_masks_pass_through_transforms():
    x = np.array([1.0, -2.0, 3.0])
    mask = np.array([True, False, True])
    g = rc.grad(lambda v, m: jnp.sum(jnp.where(m, v**2, 0.0)))(x, mask)
    np.testing.assert_array_equal(g, [2.0, 0.0, 6.0])
    g = rc.grad(lambda v: jnp.sum(v[mask] ** 2))(x)
    np.testing.assert_array_equal(g, [2.0, 0.0, 6.0])
    np.testing.assert_array_equal(rc.jit(lambda v, m: jnp.where(m, v, -v))(x, mask), [1, 2, 3])
    masks = np.array([[True, False, True], [False, False, True]])
    out = rc.vmap(lambda m: jnp.where(m, x, 0.0))(masks)
    np.testing.assert_array_equal(out, np.where(masks, x, 0.0))
