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
  are not the total derivative of the energy along the QEq solution (about 5e-4 relative):
  MD with them does not conserve the reported energy exactly, as in LAMMPS.
``"consistent"``: one constant. The energies keep LAMMPS's formulas (``ep`` with 332.06371,
  ``eqeq`` with 23.02) and the matrix uses k = 332.06371/23.02 eV·Å and the pair style's taper
  (gp12/gp13), so the charges make the reported ``ep + eqeq`` stationary under Σq = Q (ACKS2:
  the reported energy is stationary in q and u). Everything is differentiated exactly through
  the solve; forces are the total derivative, which here equals the fixed-charge derivative
  (stationarity), so MD conserves energy. Charges differ from LAMMPS's by ~0.2 %.

Iterative solver (planned): for large systems ``solver="cg"`` will replace the dense solve by
a (preconditioned) conjugate-gradient solve on the sparse pair list with a warm start
(``guess=`` the previous charges), differentiated implicitly by a ``custom_vjp`` whose backward
pass solves the transposed system the same way. The public signatures already carry
``solver`` and ``guess``; only ``solver="direct"`` exists now.

Padding: ``pairs`` may be padded (mask False); atoms may not (every atom takes part).
"""
from __future__ import annotations

import numpy as np

import reaxgrad.core.numpy as jnp
from reaxgrad.core import stop_gradient
from reaxgrad.core.ops import segment_sum

from .coulomb import (
    C_ELE,
    K_POL,
    K_QEQ,
    acks2_pair_energy,
    charge_self_energy,
    coulomb_energy,
    pair_geometry,
    shielded_coulomb,
    softness_kernel,
    taper_range,
)
from .taper import taper

__all__ = ["CONVENTIONS", "METHODS", "electrostatic_energy", "equilibrate", "hardness_matrix",
           "softness_matrix"]

METHODS = ("qeq", "eem", "acks2")
CONVENTIONS = ("lammps", "consistent")
K_CONSISTENT = C_ELE / K_POL  # eV·Å: the Coulomb constant that makes QEq minimise ep + eqeq


def _scatter_pairs(values, i, j, n):
    """(n, n) matrix with values[p] added at (i_p, j_p) and (j_p, i_p): a self-image pair
    (i, i, n) lands twice on the diagonal, as its images n and −n do in LAMMPS."""
    flat = segment_sum(values, i * n + j, n * n) + segment_sum(values, j * n + i, n * n)
    return jnp.reshape(flat, (n, n))


def hardness_matrix(positions, cell, params, types, pairs, *, constant=K_QEQ, swa=None,
                    swb=None):
    """The QEq matrix H (eV/e²) of §19: η on the diagonal plus constant·Tap/(r³ + Γ)^(1/3)
    summed over every image pair within swb (default gp12, gp13)."""
    types = np.asarray(types)
    lo, hi = taper_range(params)
    swa = lo if swa is None else swa
    swb = hi if swb is None else swb
    i, j, r, valid = pair_geometry(positions, cell, pairs, swb)
    gamma = params["gamma"]
    h = constant * taper(r, swa, swb) * shielded_coulomb(r, gamma[types[i]], gamma[types[j]])
    n = len(types)
    eye = np.eye(n)
    return _scatter_pairs(jnp.where(valid, h, 0.0), i, j, n) + eye * params["eta"][types]


def softness_matrix(positions, cell, params, types, pairs, *, swb=None):
    """The ACKS2 matrix X of §20: X_ij = Σ_n X(r_ij,n) for r <= ½(bcut_i + bcut_j) (and swb),
    X_ii = −Σ_(j,n) X(r) over the other entries of the row (self-images cancel)."""
    types = np.asarray(types)
    swb = taper_range(params)[1] if swb is None else swb
    i, j, r, valid = pair_geometry(positions, cell, pairs, swb)
    x, inside = softness_kernel(r, params, types[i], types[j])
    n = len(types)
    off = _scatter_pairs(jnp.where(jnp.logical_and(valid, inside), x, 0.0), i, j, n)
    return off - np.eye(n) * jnp.sum(off, axis=1)


def _check(method, convention, solver, guess):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, not {convention!r}")
    if solver != "direct":
        raise NotImplementedError(f"solver {solver!r}: only the dense 'direct' solve exists yet")
    del guess  # reserved for the iterative solver's warm start


def _solve(positions, cell, params, types, pairs, total_charge, method, convention, swa, swb):
    """dict(q=..., u=... or None, mu=...): the charge-equilibration solution."""
    types = np.asarray(types)
    n = len(types)
    if convention == "lammps":
        positions = stop_gradient(positions)
        cell = None if cell is None else stop_gradient(cell)
        constant = K_QEQ
    else:
        if swa is not None or swb is not None:
            raise ValueError("convention='consistent' uses the pair taper (gp12, gp13); "
                             "swa/swb apply to convention='lammps' only")
        constant = K_CONSISTENT
    h = hardness_matrix(positions, cell, params, types, pairs, constant=constant, swa=swa,
                        swb=swb)
    chi = params["chi"][types]
    ones, zeros = np.ones((n, 1)), np.zeros((n, 1))
    qtot = jnp.reshape(jnp.asarray(total_charge, dtype=np.float64), (1,))
    if method in ("qeq", "eem"):
        kkt = jnp.concatenate([jnp.concatenate([h, ones], axis=1),
                               np.concatenate([ones.T, np.zeros((1, 1))], axis=1)], axis=0)
        sol = jnp.linalg.solve(kkt, jnp.concatenate([-chi, qtot]))
        return {"q": sol[:n], "u": None, "mu": sol[n]}
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


def equilibrate(positions, cell, params, types, pairs, total_charge=0.0, method="qeq",
                convention="lammps", *, swa=None, swb=None, solver="direct", guess=None,
                full_output=False):
    """Equilibrated charges q (n,) in e, as a differentiable function of its inputs.

    positions (n, 3) Å; cell (3, 3) rows = lattice vectors, or None (free); params: the tables
    of ``to_params`` (``chi eta gamma gp``, ACKS2 also ``bcut_acks2``); types: concrete (n,)
    type indices; pairs: the far-pair half list (i, j, shifts, mask) within gp13 (see
    ``coulomb``). total_charge: Σq (may be traced). method: "qeq" = "eem" | "acks2".
    convention: "lammps" | "consistent" (module docstring). swa, swb: the QEq taper (fix
    cutlo/cuthi), "lammps" only; default gp12, gp13. solver/guess: reserved (only "direct").
    full_output: return dict(q, u, mu) instead (u: ACKS2 potentials in eV, None for QEq;
    mu: the Lagrange multiplier of Σq = Q, minus the equalised electronegativity, in eV).
    """
    _check(method, convention, solver, guess)
    out = _solve(positions, cell, params, types, pairs, total_charge, method, convention, swa,
                 swb)
    return out if full_output else out["q"]


def electrostatic_energy(positions, cell, params, types, pairs, total_charge=0.0,
                         method="qeq", convention="lammps", *, swa=None, swb=None,
                         solver="direct", guess=None):
    """dict(ep, eqeq, q[, u]): equilibrated charges and the two charge-dependent terms as
    LAMMPS reports them (kcal/mol; ACKS2 terms included in ep and eqeq). Differentiate
    ``ep + eqeq`` for forces/stress in the chosen convention."""
    _check(method, convention, solver, guess)
    sol = _solve(positions, cell, params, types, pairs, total_charge, method, convention, swa,
                 swb)
    q, u = sol["q"], sol["u"]
    ep = coulomb_energy(positions, cell, q, params, types, pairs)
    eqeq = charge_self_energy(q, params, types, potentials=u)
    out = {"ep": ep, "eqeq": eqeq, "q": q}
    if u is not None:
        out["ep"] = ep + acks2_pair_energy(positions, cell, u, params, types, pairs)
        out["u"] = u
    return out
