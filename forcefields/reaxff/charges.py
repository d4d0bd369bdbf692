"""Charge equilibration for ReaxFF (QEq / EEM, ACKS2) as a linear solve inside the
differentiable function (docs/reaxff_equations.md §19, §20, §22).

What is solved
--------------
QEq and EEM: ``fix qeq/reaxff``'s equations. With the hardness matrix
``H_ij = δ_ij η_i + Σ_n k·Tap(r_ij,n)/(r³ + (γ_iγ_j)^-3/2)^(1/3)`` (η = 2·file value, the
self-images of an atom on the diagonal, k in eV·Å), the charges are the stationary point of
``χ·q + ½ qᵀHq`` subject to ``Σq = Q``, found from the bordered (KKT) system
``[[H, 1], [1ᵀ, 0]] [q, μ] = [−χ, Q]`` by a dense ``jnp.linalg.solve``. LAMMPS's "two-solve
trick" (``Hs = −χ, Ht = −1``) gives the same q for Q = 0; it cannot give Q ≠ 0, we can.

"eem" vs "qeq": in ReaxFF they are the same model. What ``fix qeq/reaxff`` solves is Mortier's
electronegativity equalisation (EEM) with a shielded, tapered Coulomb kernel, not the
Rappé–Goddard QEq (no Slater integrals, no charge-dependent hydrogen). The standalone ReaxFF
code and JAX-ReaxFF call it EEM and solve the same bordered system directly, with a total
charge, for molecules and crystals alike (JAX-ReaxFF also stops the gradient through the
distances by default, i.e. its forces are fixed-charge forces like LAMMPS's). The differences
are only in the solver: LAMMPS iterates (CG to ``tol``) and is always neutral. Here
``method="eem"`` is accepted as a synonym of ``"qeq"`` and gives identical charges.

ACKS2: the ``fix acks2/reaxff`` system of §20 in (q, u, μ_u, μ_q), size 2n + 2, also dense.

Conventions (``convention=``)
-----------------------------
``"lammps"`` (default): LAMMPS parity. Matrix constant k = 14.4 eV·Å, the taper of the fix
  (``taper_range``, default gp12/gp13, like the oracle's fix arguments). The charges are
  returned with the *geometry held fixed*: positions and cell enter the solve through
  ``stop_gradient``, so any derivative with respect to positions or cell (forces, stress,
  Hessians) is taken at fixed charges (and ACKS2 potentials u), exactly what LAMMPS reports
  (§22). Derivatives with respect to force-field parameters (χ, η, γ, bcut, gp35, taper) flow
  through the implicit differentiation of the solve: ``grad`` of a loss on charges, energies or
  LAMMPS-convention forces with respect to parameters is the exact derivative of the computed
  quantity. Caveat: in this convention ``dq/dx`` is reported as zero (by design), and the
  LAMMPS energy is not stationary in q (23.02 ≠ 332.06371/14.4), so the fixed-charge forces
  are not the total derivative of the energy along the QEq solution (~1 % of the
  electrostatic forces, ~5e-4 of the total ReaxFF forces in the spec's example): MD with them
  does not conserve the reported energy exactly, as in LAMMPS.
``"consistent"``: one constant. The energies keep LAMMPS's formulas (``ep`` with 332.06371,
  ``eqeq`` with 23.02) and the matrix uses k = 332.06371/23.02 eV·Å and the pair style's taper
  (gp12/gp13), so the charges make the reported ``ep + eqeq`` stationary under Σq = Q (ACKS2:
  the reported energy is stationary in q and u). Everything is differentiated exactly through
  the solve; forces are the total derivative, which here equals the fixed-charge derivative
  (stationarity), so MD conserves energy. The constant changes by 0.17 %, the charges by
  up to ~1 % (0.004 e in a water box, 0.011 e in PETN), electrostatic forces by 1–3 %.

Solvers (``solver=``)
---------------------
``"direct"`` (default): dense ``jnp.linalg.solve`` of the bordered system, O(n²) memory and
  O(n³) time; every transform (grad, jacfwd, jit, vmap, higher orders) works through it.
``"cg"`` (QEq/EEM only, for large systems): the sparse matrix from the pair list, LAMMPS's two
  solves ``Hs = −χ, Ht = −1`` by Jacobi-preconditioned CG (SciPy) to a relative residual
  ``tol``, warm-started from ``guess`` (the ``full_output`` of the previous call: MD steps),
  and ``q = s + ((Q − Σs)/Σt)·t``. Differentiated implicitly by a ``custom_vjp`` whose backward
  pass is one more CG solve with the (symmetric) matrix. CG is host code (SciPy) called
  through ``reaxgrad.core.pure_callback``, so it runs eagerly, under jit and under vmap (one
  call per example), and reverse mode works (grad, vjp, jacrev; in the "lammps" convention
  also a parameter gradient of forces, i.e. grad of grad, since the position derivative never
  reaches the solve). Forward mode (jvp, jacfwd) is refused, as for any custom_vjp, and so is
  a second derivative through the solve itself ("consistent" grad of grad).

Padding: ``pairs`` may be padded (mask False); atoms may not (every atom takes part).
"""
from __future__ import annotations

import numpy as np

import reaxgrad.core.numpy as jnp
from reaxgrad.core import custom_vjp, pure_callback, stop_gradient
from reaxgrad.core.ops import segment_sum

from .coulomb import (
    C_ELE,
    C_ELE_JAXREAXFF,
    K_POL,
    K_QEQ,
    acks2_pair_energy,
    charge_self_energy,
    coulomb_energy,
    coulomb_kernel,
    pair_geometry,
    softness_kernel,
    take,
    taper_range,
)
from .geometry import Cartesian
from .reduce import structure_count

__all__ = ["CONVENTIONS", "METHODS", "SOLVERS", "electrostatic_energy", "equilibrate",
           "hardness_matrix", "softness_matrix"]

METHODS = ("qeq", "eem", "acks2")
CONVENTIONS = ("lammps", "consistent", "jaxreaxff")
SOLVERS = ("direct", "cg")
K_CONSISTENT = C_ELE / K_POL  # eV·Å: the Coulomb constant that makes QEq minimise ep + eqeq


def _scatter_pairs(values, i, j, n):
    """(n, n) matrix with values[p] added at (i_p, j_p) and (j_p, i_p): a self-image pair
    (i, i, n) lands twice on the diagonal, as its images n and −n do in LAMMPS."""
    flat = segment_sum(values, i * n + j, n * n) + segment_sum(values, j * n + i, n * n)
    return jnp.reshape(flat, (n, n))


def _hardness_entries(positions, cell, params, types, pairs, constant, swa, swb):
    """(i, j, h, diag): the pair entries of H (0 where not valid) and its η diagonal."""
    i, j, kernel = coulomb_kernel(positions, cell, params, types, pairs, swa, swb)
    return i, j, constant * kernel, take(params["eta"], types)


def hardness_matrix(positions, cell, params, types, pairs, *, constant=K_QEQ, swa=None,
                    swb=None):
    """The QEq matrix H (eV/e²) of §19: η on the diagonal plus constant·Tap/(r³ + Γ)^(1/3)
    summed over every image pair within swb (default gp12, gp13)."""
    i, j, h, diag = _hardness_entries(positions, cell, params, types, pairs, constant, swa, swb)
    n = jnp.shape(types)[0]
    return _scatter_pairs(h, i, j, n) + np.eye(n) * diag


def softness_matrix(positions, cell, params, types, pairs, *, swb=None):
    """The ACKS2 matrix X of §20: X_ij = Σ_n X(r_ij,n) for r <= ½(bcut_i + bcut_j) (and swb),
    X_ii = −Σ_(j,n) X(r) over the other entries of the row (self-images cancel)."""
    swb = taper_range(params)[1] if swb is None else swb
    i, j, r, valid = pair_geometry(positions, cell, pairs, swb)
    x, inside = softness_kernel(r, params, take(types, i), take(types, j))
    n = jnp.shape(types)[0]
    off = _scatter_pairs(jnp.where(jnp.logical_and(valid, inside), x, 0.0), i, j, n)
    return off - np.eye(n) * jnp.sum(off, axis=1)


def _check(method, convention, solver):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, not {convention!r}")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, not {solver!r}")
    if solver == "cg" and method == "acks2":
        raise NotImplementedError("solver='cg' needs a positive definite matrix (QEq/EEM); "
                                  "the ACKS2 system is a saddle point: use solver='direct'")


# ---- iterative path: sparse CG (SciPy, host code through pure_callback), differentiated
# implicitly by a custom_vjp


def _sparse_hardness(i, j, h, diag):
    from scipy.sparse import coo_matrix

    n = len(diag)
    i, j = np.asarray(i), np.asarray(j)
    rows = np.concatenate([i, j, np.arange(n)])
    cols = np.concatenate([j, i, np.arange(n)])
    return coo_matrix((np.concatenate([h, h, diag]), (rows, cols)), shape=(n, n)).tocsr()


def _pcg(a, b, guess, tol):
    """Jacobi-preconditioned CG, relative residual tol, warm start."""
    from scipy.sparse.linalg import LinearOperator, cg

    inv_diag = 1.0 / a.diagonal()
    precond = LinearOperator(a.shape, matvec=lambda v: inv_diag * v, dtype=np.float64)
    x, info = cg(a, b, x0=guess, rtol=tol, atol=0.0, maxiter=10 * len(b) + 100, M=precond)
    if info != 0:
        raise RuntimeError(f"QEq CG did not converge to rtol {tol} ({info} iterations)")
    return x


def _host_solve(tol):
    def solve(i, j, h, diag, b, guess):
        """Rows of b (k, n) solved against one matrix: compiled CG, else SciPy's."""
        from ._qeq_c import solve as compiled

        x = compiled(i, j, h, diag, b, guess, tol)
        if x is not None:
            return x
        a = _sparse_hardness(i, j, h, diag)
        return np.stack([_pcg(a, bk, gk, tol) for bk, gk in zip(b, guess)])

    return solve


def _sparse_solve_impl(tol, i, j, h, diag, b, guess):
    """x (k, n) with H x_r = b_r for the sparse symmetric H given by its pair entries
    (i, j, h) and diagonal, CG from `guess` (k, n); host code, so it runs under jit and vmap as
    well as eagerly."""
    return pure_callback(_host_solve(tol), b, i, j, h, diag, b, guess)


def _sparse_solve_fwd(tol, i, j, h, diag, b, guess):
    x = _sparse_solve(tol, i, j, h, diag, b, guess)
    return x, (i, j, h, diag, x)


def _sparse_solve_bwd(tol, res, ct):
    """H symmetric: λ = H⁻¹ct; db = λ, d diag = −Σ_r λ_r x_r,
    dh_p = −Σ_r (λ_ri x_rj + λ_rj x_ri)."""
    i, j, h, diag, x = res
    lam = pure_callback(_host_solve(tol), ct, i, j, h, diag, ct, x)
    dh = -jnp.sum(lam[:, i] * x[:, j] + lam[:, j] * x[:, i], axis=0)
    return None, None, dh, -jnp.sum(lam * x, axis=0), lam, None


_sparse_solve = custom_vjp(_sparse_solve_impl, nondiff_argnums=(0,))
_sparse_solve.defvjp(_sparse_solve_fwd, _sparse_solve_bwd)


def _solve_cg(positions, cell, params, types, pairs, total_charge, constant, swa, swb, guess,
              tol):
    """QEq by LAMMPS's two solves H s = −χ, H t = −1, q = s + ((Q − Σs)/Σt)·t (sparse CG, both
    right-hand sides in one call)."""
    i, j, h, diag = _hardness_entries(positions, cell, params, types, pairs, constant, swa, swb)
    guess = guess or {}
    chi = take(params["chi"], types)
    n = jnp.shape(types)[0]
    zeros = np.zeros(n)
    rhs = jnp.stack([-chi, -np.ones(n)])
    start = jnp.stack([jnp.asarray(guess.get("s", zeros)), jnp.asarray(guess.get("t", zeros))])
    sol = _sparse_solve(tol, i, j, h, diag, rhs, start)
    s, t = sol[0], sol[1]
    mu = (total_charge - jnp.sum(s)) / jnp.sum(t)
    return {"q": s + mu * t, "u": None, "mu": mu, "s": s, "t": t}


def _solve(positions, cell, params, types, pairs, total_charge, method, convention, swa, swb,
           solver="direct", guess=None, tol=1e-10):
    """dict(q=..., u=... or None, mu=...): the charge-equilibration solution."""
    n = jnp.shape(types)[0]
    if convention == "lammps":
        positions = stop_gradient(positions)
        cell = cell if cell is None or isinstance(cell, Cartesian) else stop_gradient(cell)
        constant = K_QEQ
    elif convention == "jaxreaxff":
        constant = K_QEQ  # LAMMPS's matrix, differentiated through the solve
    else:
        if swa is not None or swb is not None:
            raise ValueError("convention='consistent' uses the pair taper (gp12, gp13); "
                             "swa/swb apply to convention='lammps' only")
        constant = K_CONSISTENT
    if solver == "cg":
        return _solve_cg(positions, cell, params, types, pairs, total_charge, constant, swa,
                         swb, guess, tol)
    if structure_count(pairs) is not None:
        if method == "acks2":
            raise NotImplementedError("ACKS2 charges of a batch of structures: evaluate the "
                                      "structures one by one")
        return _solve_batch(positions, cell, params, types, pairs, total_charge, constant,
                            swa, swb)
    if method in ("qeq", "eem"):
        i, j, h, diag = _hardness_entries(positions, cell, params, types, pairs, constant, swa,
                                          swb)
        slot, owner = np.arange(n), np.zeros(n, dtype=np.int64)
        real = np.zeros((1, padded_size(n)))
        real[0, :n] = 1.0
        out = _padded_solve(i, j, h, diag, take(params["chi"], types), total_charge, slot,
                            owner, real)
        return {"q": out["q"], "u": None, "mu": out["mu"][0]}
    h = hardness_matrix(positions, cell, params, types, pairs, constant=constant, swa=swa,
                        swb=swb)
    chi = take(params["chi"], types)
    ones, zeros = np.ones((n, 1)), np.zeros((n, 1))
    qtot = jnp.reshape(jnp.asarray(total_charge, dtype=np.float64), (1,))
    x = softness_matrix(positions, cell, params, types, pairs, swb=swb)
    eye = np.eye(n)
    top = jnp.concatenate([h, eye, zeros, ones], axis=1)
    mid = jnp.concatenate([eye, x, ones, zeros], axis=1)
    bottom = np.zeros((2, 2 * n + 2))
    bottom[0, n:2 * n] = 1.0  # Σu = 0
    bottom[1, :n] = 1.0       # Σq = Q
    a = jnp.concatenate([top, mid, bottom], axis=0)
    rhs = jnp.concatenate([-chi, np.zeros(n + 1), qtot])
    sol = jnp.linalg.solve(a, rhs)
    return {"q": sol[:n], "u": sol[n:2 * n], "mu": sol[2 * n + 1]}


def padded_size(n: int) -> int:
    """The dense system size used for n atoms: n rounded up to a bucket (16, then multiples of
    16 to 256, then of 64), so that molecules of nearby sizes share one traced program's
    kernel sources (the fused backend compiles once per bucket, not once per atom count)."""
    step = 16 if n <= 256 else 64
    return max(16, -(-n // step) * step)


def _solve_batch(positions, cell, params, types, lists, total_charge, constant, swa, swb):
    """QEq/EEM of a batch of independent structures (``lists.structure_slots`` (S, m)): one
    bordered (m + 1)-system per structure, solved together by a batched dense solve."""
    i, j, h, diag = _hardness_entries(positions, cell, params, types, lists, constant, swa,
                                      swb)
    out = _padded_solve(i, j, h, diag, take(params["chi"], types), total_charge,
                        lists.charge_slot, lists.atom_structure, lists.structure_slots)
    return {**out, "u": None}


def _padded_solve(i, j, h, diag, chi_atoms, total_charge, slot, owner, real):
    """Charges of S structures from their pair entries: structure s owns the m slots of
    ``real[s]`` (1: an atom, 0: padding); atom a sits in slot ``slot[a]`` of structure
    ``owner[a]``. Padded slots are decoupled (diagonal 1, χ 0, outside the Σq constraint), so
    they get charge 0 and leave the atoms' solution unchanged. total_charge: (S,) or a
    scalar. Returns dict(q=(n,), mu=(S,))."""
    real = jnp.asarray(real).astype(np.float64)
    count, m = real.shape
    slot, owner = jnp.asarray(slot), jnp.asarray(owner)
    # entry (local i, local j) of structure s at s*m*m + i_local*m + j_local
    first = slot[i] * m + slot[j] - owner[j] * m
    second = slot[j] * m + slot[i] - owner[i] * m
    size = count * m * m
    pairs = segment_sum(h, first, size) + segment_sum(h, second, size)
    chi = segment_sum(chi_atoms, slot, count * m)
    diag_slots = segment_sum(diag, slot, count * m) + (1.0 - jnp.reshape(real, (-1,)))
    a = (jnp.reshape(pairs, (count, m, m))
         + jnp.reshape(diag_slots, (count, m, 1)) * np.eye(m)[None])
    top = jnp.concatenate([a, real[:, :, None]], axis=2)
    bottom = jnp.concatenate([real[:, None, :], np.zeros((count, 1, 1))], axis=2)
    kkt = jnp.concatenate([top, bottom], axis=1)
    qtot = jnp.broadcast_to(jnp.asarray(total_charge, dtype=np.float64), (count,))
    rhs = jnp.concatenate([-jnp.reshape(chi, (count, m)), jnp.reshape(qtot, (count, 1))],
                          axis=1)
    sol = jnp.linalg.solve(kkt, rhs[:, :, None])[:, :, 0]
    q = jnp.reshape(sol[:, :m], (-1,))[slot]
    return {"q": q, "mu": sol[:, m]}


def equilibrate(positions, cell, params, types, pairs, total_charge=0.0, method="qeq",
                convention="lammps", *, swa=None, swb=None, solver="direct", guess=None,
                tol=1e-10, full_output=False):
    """Equilibrated charges q (n,) in e, as a differentiable function of its inputs.

    positions (n, 3) Å; cell (3, 3) rows = lattice vectors, or None (free); params: the tables
    of ``to_params`` (``chi eta gamma gp``, ACKS2 also ``bcut_acks2``); types: (n,) type
    indices (concrete or traced); pairs: the far-pair half list (i, j, shifts, mask) within
    gp13, or a ``ReaxLists`` (see ``coulomb``). total_charge: Σq (may be traced). method:
    "qeq" = "eem" | "acks2". convention: "lammps" | "consistent" (module docstring).
    swa, swb: the QEq taper (fix cutlo/cuthi), "lammps" only; default gp12, gp13.
    solver: "direct" (dense bordered solve; jit, vmap, every transform) or "cg" (QEq/EEM only:
    sparse Jacobi-preconditioned CG to relative residual ``tol`` with warm start ``guess`` =
    the ``full_output`` dict of a previous call; eager and reverse mode only, see above).
    full_output: return dict(q, u, mu[, s, t]) instead (u: ACKS2 potentials in eV, None for
    QEq; mu: the Lagrange multiplier of Σq = Q, minus the equalised electronegativity, in eV;
    s, t: the two CG solutions, the warm start of the next call).
    """
    _check(method, convention, solver)
    out = _solve(positions, cell, params, types, pairs, total_charge, method, convention, swa,
                 swb, solver, guess, tol)
    return out if full_output else out["q"]


def electrostatic_energy(positions, cell, params, types, pairs, total_charge=0.0,
                         method="qeq", convention="lammps", *, swa=None, swb=None,
                         solver="direct", guess=None, tol=1e-10):
    """dict(ep, eqeq, q[, u]): equilibrated charges and the two charge-dependent terms as
    LAMMPS reports them (kcal/mol; ACKS2 terms included in ep and eqeq). Differentiate
    ``ep + eqeq`` for forces/stress in the chosen convention. Arguments as ``equilibrate``."""
    _check(method, convention, solver)
    sol = _solve(positions, cell, params, types, pairs, total_charge, method, convention, swa,
                 swb, solver, guess, tol)
    q, u = sol["q"], sol["u"]
    ep = coulomb_energy(positions, cell, q, params, types, pairs,
                        constant=C_ELE_JAXREAXFF if convention == "jaxreaxff" else C_ELE)
    eqeq = charge_self_energy(q, params, types, potentials=u,
                              batch=pairs if structure_count(pairs) is not None else None)
    out = {"ep": ep, "eqeq": eqeq, "q": q}
    if u is not None:
        out["ep"] = ep + acks2_pair_energy(positions, cell, u, params, types, pairs)
        out["u"] = u
    if "s" in sol:  # CG: the two solutions, the warm start of the next call
        out["s"], out["t"] = sol["s"], sol["t"]
    return out
