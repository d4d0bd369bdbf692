"""segment_sum (core/ops.py, on the scatter_add primitive): values, derivatives to second order
w.r.t. the data, behaviour under jit and vmap, and argument errors."""
import numpy as np
import pytest
from cases import OPS, bind
from check_grads import check_grads

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp
from reaxgrad.core.ops import segment_sum

IDS = np.array([2, 0, 2, 1, 0, 2])
DATA = np.random.default_rng(3).uniform(0.5, 1.5, (6, 2))


@pytest.mark.parametrize("name", sorted(OPS))
def test_check_grads(name):
    fn, args = OPS[name]
    check_grads(bind(fn), args, modes=("fwd", "rev"), order=2)


def _reference(data, ids, n):
    out = np.zeros((n,) + data.shape[1:])
    np.add.at(out, ids, data)
    return out


def test_values_with_and_without_num_segments():
    np.testing.assert_allclose(segment_sum(DATA, IDS), _reference(DATA, IDS, 3), rtol=1e-15)
    out = segment_sum(DATA, IDS, num_segments=5)
    assert out.shape == (5, 2)
    np.testing.assert_allclose(out, _reference(DATA, IDS, 5), rtol=1e-15)
    many = np.random.default_rng(0).standard_normal((40, 20))  # more than 16 columns
    ids = np.random.default_rng(1).integers(0, 7, 40)
    np.testing.assert_allclose(segment_sum(many, ids, 7), _reference(many, ids, 7), rtol=1e-13)


def test_second_derivative_of_segment_energy():
    # E = sum_s (sum_{i in s} x_i**2)**2 ; d2E/dx_i dx_j = 8 x_i x_j [s_i == s_j] + 4 S_s [i == j]
    x = DATA[:, 0]

    def energy(v):
        return jnp.sum(segment_sum(v**2, IDS, num_segments=3) ** 2)

    s = _reference(x**2, IDS, 3)
    same = IDS[:, None] == IDS[None, :]
    want = 8 * np.outer(x, x) * same + 4 * np.diag(s[IDS])
    np.testing.assert_allclose(rc.hessian(energy)(x), want, rtol=1e-13)
    np.testing.assert_allclose(rc.jacrev(rc.grad(energy))(x), want, rtol=1e-13)
    # grad of grad: the gradient of a directional derivative is a Hessian-vector product
    np.testing.assert_allclose(
        rc.grad(lambda v: jnp.sum(rc.grad(energy)(v) * np.arange(6.0)))(x),
        want @ np.arange(6.0),
        rtol=1e-13,
    )


def test_under_jit_and_vmap_with_traced_ids():
    f = rc.jit(lambda d, i: segment_sum(d, i, num_segments=3))
    np.testing.assert_allclose(f(DATA, IDS), _reference(DATA, IDS, 3), rtol=1e-15)
    f(DATA, IDS[::-1].copy())
    assert f.trace_count == 1
    ids_batch = np.stack([IDS, IDS[::-1], np.zeros(6, int)])
    out = rc.vmap(lambda i: segment_sum(DATA, i, num_segments=3))(ids_batch)
    for k in range(3):
        np.testing.assert_allclose(out[k], _reference(DATA, ids_batch[k], 3), rtol=1e-15)
    data_batch = np.stack([DATA, 2 * DATA])
    out = rc.vmap(lambda d: segment_sum(d, IDS, num_segments=3))(data_batch)
    np.testing.assert_allclose(out[1], 2 * _reference(DATA, IDS, 3), rtol=1e-15)


def test_vmap_with_batched_data_and_ids_and_its_gradient():
    data = np.random.default_rng(0).standard_normal((3, 6, 2))
    ids = np.random.default_rng(1).integers(0, 4, (3, 6))
    out = rc.vmap(lambda d, i: segment_sum(d, i, num_segments=4))(data, ids)
    for k in range(3):
        np.testing.assert_allclose(out[k], _reference(data[k], ids[k], 4), rtol=1e-14)

    def energy(d, i):
        return jnp.sum(segment_sum(d**2, i, num_segments=4) ** 2)

    grads = rc.vmap(rc.grad(energy))(data, ids)
    for k in range(3):
        np.testing.assert_allclose(grads[k], rc.grad(energy)(data[k], ids[k]), rtol=1e-14)


def test_argument_errors():
    with pytest.raises(TypeError, match="num_segments"):
        rc.jit(lambda d, i: segment_sum(d, i))(DATA, IDS)
    with pytest.raises(TypeError, match="integers"):
        segment_sum(DATA, IDS.astype(float), 3)
    with pytest.raises(ValueError, match=r"segment_ids of shape \(5,\)"):
        segment_sum(DATA, IDS[:5], 3)
