"""Physics-flavoured checks of the engine: a Lennard-Jones cluster (forces, Hessian), a
ReaxFF-like bond-order term differentiated w.r.t. its parameters, and per-atom energies
accumulated with segment_sum and .at[].add, differentiated twice."""
import numpy as np
import pytest
from check_grads import check_grads, numerical_jvp

import reaxgrad.core as rc
import reaxgrad.core.numpy as jnp
from reaxgrad.core.ops import segment_sum

# a slightly distorted tetrahedron plus one atom: all pair distances near the LJ minimum
POS = np.array(
    [
        [0.00, 0.00, 0.00],
        [1.12, 0.05, -0.02],
        [0.55, 0.98, 0.03],
        [0.58, 0.31, 0.93],
        [1.40, 1.10, 0.85],
    ]
)
N = len(POS)
I_IDX, J_IDX = np.triu_indices(N, k=1)


def lj_energy(pos, eps=1.0, sigma=1.0):
    rij = pos[I_IDX] - pos[J_IDX]
    r2 = jnp.sum(rij**2, axis=1)
    sr6 = (sigma**2 / r2) ** 3
    return jnp.sum(4.0 * eps * (sr6**2 - sr6))


def lj_energy_loops(pos):
    e = 0.0
    for i in range(N):
        for j in range(i + 1, N):
            r = np.linalg.norm(pos[i] - pos[j])
            e += 4.0 * (r**-12 - r**-6)
    return e


def lj_forces_analytic(pos):
    f = np.zeros_like(pos)
    for i in range(N):
        for j in range(N):
            if i != j:
                d = pos[i] - pos[j]
                r = np.linalg.norm(d)
                f[i] += 4.0 * (12 * r**-14 - 6 * r**-8) * d
    return f


def _fd_gradient(fun, x, h=1e-4):
    g = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[k] = h
        g[k] = (-fun(x + 2 * e) + 8 * fun(x + e) - 8 * fun(x - e) + fun(x - 2 * e)) / (12 * h)
    return g


def test_lennard_jones_energy_and_forces():
    np.testing.assert_allclose(lj_energy(POS), lj_energy_loops(POS), rtol=1e-13)
    forces = -rc.grad(lj_energy)(POS)
    np.testing.assert_allclose(forces, lj_forces_analytic(POS), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(forces, -_fd_gradient(lj_energy_loops, POS), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.sum(forces, axis=0), 0.0, atol=1e-11)  # Newton's third law
    e, g = rc.jit(rc.value_and_grad(lj_energy))(POS)
    np.testing.assert_allclose(e, lj_energy_loops(POS), rtol=1e-13)
    np.testing.assert_allclose(-g, forces, rtol=1e-13, atol=1e-13)


def test_lennard_jones_hessian():
    hess = rc.hessian(lj_energy)(POS).reshape(3 * N, 3 * N)
    np.testing.assert_allclose(hess, hess.T, rtol=1e-12, atol=1e-10)
    # the Hessian is minus the Jacobian of the forces: compare with finite differences of them
    fd = np.zeros((3 * N, 3 * N))
    for k in range(3 * N):
        e = np.zeros(3 * N)
        e[k] = 1.0
        (col,) = numerical_jvp(lambda p: -lj_forces_analytic(p), (POS,), (e.reshape(N, 3),))
        fd[:, k] = col.ravel()
    np.testing.assert_allclose(hess, fd, rtol=1e-6, atol=1e-5)
    # translations are zero modes
    shift = np.tile([1.0, 0.0, 0.0], N)
    np.testing.assert_allclose(hess @ shift, 0.0, atol=1e-9)
    np.testing.assert_allclose(rc.jacfwd(rc.grad(lj_energy))(POS).reshape(3 * N, 3 * N), hess,
                               rtol=1e-12, atol=1e-10)


def bond_order(r, p1, p2, r0):
    return jnp.exp(p1 * (r / r0) ** p2)


R = np.array([0.9, 1.2, 1.45, 1.7])
PARAMS = (-0.08, 6.5, 1.35)


def bond_order_param_grads(r, p1, p2, r0):
    """Closed form: d/dp1, d/dp2, d/dr0 of exp(p1 (r/r0)^p2)."""
    u = (r / r0) ** p2
    bo = np.exp(p1 * u)
    return bo * u, bo * p1 * u * np.log(r / r0), bo * p1 * u * (-p2 / r0)


def test_bond_order_parameter_derivatives():
    def total(p1, p2, r0):
        return jnp.sum(bond_order(R, p1, p2, r0))

    grads = rc.grad(total, argnums=(0, 1, 2))(*PARAMS)
    for g, want in zip(grads, bond_order_param_grads(R, *PARAMS)):
        np.testing.assert_allclose(g, np.sum(want), rtol=1e-13)
    check_grads(lambda r, p1, p2, r0: bond_order(r, p1, p2, r0), (R, *PARAMS), order=2)
    # per-bond Jacobian w.r.t. the parameter vector, by both modes
    params = np.array(PARAMS)
    jr = rc.jacrev(lambda p: bond_order(R, p[0], p[1], p[2]))(params)
    jf = rc.jacfwd(lambda p: bond_order(R, p[0], p[1], p[2]))(params)
    np.testing.assert_allclose(jr, np.stack(bond_order_param_grads(R, *PARAMS), axis=1), rtol=1e-13)
    np.testing.assert_allclose(jf, jr, rtol=1e-13)


def test_bond_order_matches_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jjnp

    def total_jax(p1, p2, r0):
        return jjnp.sum(jjnp.exp(p1 * (R / r0) ** p2))

    def total(p1, p2, r0):
        return jnp.sum(bond_order(R, p1, p2, r0))

    want = jax.grad(total_jax, argnums=(0, 1, 2))(*PARAMS)
    got = rc.grad(total, argnums=(0, 1, 2))(*PARAMS)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    want_h = np.asarray(jax.hessian(lambda p: total_jax(*p))(jjnp.asarray(PARAMS)))
    got_h = rc.hessian(lambda p: total(p[0], p[1], p[2]))(np.array(PARAMS))
    np.testing.assert_allclose(got_h, want_h, rtol=1e-11)


def _pair_terms(pos):
    d = pos[I_IDX] - pos[J_IDX]
    r = jnp.sqrt(jnp.sum(d**2, axis=1))
    return jnp.exp(-r) * r


def per_atom_segment_sum(pos):
    half = 0.5 * _pair_terms(pos)
    return segment_sum(half, I_IDX, N) + segment_sum(half, J_IDX, N)


def per_atom_scatter(pos):
    half = 0.5 * _pair_terms(pos)
    return jnp.zeros(N).at[I_IDX].add(half).at[J_IDX].add(half)


def per_atom_loops(pos):
    out = np.zeros(N)
    for i, j in zip(I_IDX, J_IDX):
        r = np.linalg.norm(pos[i] - pos[j])
        out[i] += 0.5 * np.exp(-r) * r
        out[j] += 0.5 * np.exp(-r) * r
    return out


@pytest.mark.parametrize("per_atom", [per_atom_segment_sum, per_atom_scatter])
def test_per_atom_energies_differentiated_twice(per_atom):
    np.testing.assert_allclose(per_atom(POS), per_atom_loops(POS), rtol=1e-13)
    # a non-linear function of per-atom energies, so the scatter's transpose matters twice
    def energy(pos):
        return jnp.sum(per_atom(pos) ** 2)

    def energy_loops(pos):
        return np.sum(per_atom_loops(pos) ** 2)

    np.testing.assert_allclose(rc.grad(energy)(POS), _fd_gradient(energy_loops, POS), rtol=1e-7,
                               atol=1e-9)
    hess = rc.hessian(energy)(POS).reshape(3 * N, 3 * N)
    np.testing.assert_allclose(hess, hess.T, rtol=1e-12, atol=1e-12)
    # Hessian-vector products against finite differences of the gradient
    for seed in range(3):
        v = np.random.default_rng(seed).standard_normal(POS.shape)
        (fd,) = numerical_jvp(rc.grad(energy), (POS,), (v,))
        np.testing.assert_allclose(hess @ v.ravel(), fd.ravel(), rtol=1e-7, atol=1e-9)
    check_grads(per_atom, (POS,), order=2)


def test_per_atom_routes_agree_under_vmap_and_jit():
    frames = np.stack([POS, POS * 1.05, POS + 0.1 * np.sin(POS)])
    a = rc.jit(rc.vmap(rc.grad(lambda p: jnp.sum(per_atom_segment_sum(p) ** 2))))(frames)
    b = rc.vmap(rc.jit(rc.grad(lambda p: jnp.sum(per_atom_scatter(p) ** 2))))(frames)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
