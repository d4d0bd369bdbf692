"""ReaxFF electrostatics at given charges: the shielded, tapered Coulomb energy ``ep`` and the
charge self-energy ``eqeq`` as LAMMPS ``pair_style reaxff`` reports them
(docs/reaxff_equations.md §14, §16, §17; the ACKS2 additions of §20).

Every function is pure and traceable: call it inside ``grad`` / ``jit`` with positions, cell,
charges and the parameter tables of ``forcefields.ffield.to_params`` (any of them traced).

``pairs`` is the far-pair *half* list ``(i, j, shifts, mask)`` of ``md.neighbors``
(``neighbor_list(..., cutoff=gp13, half=True)`` or ``pad_to(..., *neighbor_pairs(...,
half=True))``): each unordered image pair once, including the periodic self-images
``(i, i, n)`` with ``n`` and ``-n`` counted once together, exactly as LAMMPS counts them (§3.7).
Entries with ``mask`` False (padding) and entries farther than the taper radius (a Verlet list
with a skin) are dropped inside the traced function, so a list built with a skin gives LAMMPS's
selection. The index arrays, shifts (integer or float image vectors), mask and ``types`` may be
concrete or traced (e.g. lists passed as jit arguments).

``pairs`` may also be an interaction-list object with ``far_i far_j far_shift far_mask``.
The taper is :func:`forcefields.reaxff.taper.taper` (§14).
"""
from __future__ import annotations

import numpy as np

import reaxgrad.core.numpy as jnp

from .geometry import image_vectors
from .reduce import energy_sum
from .taper import taper

__all__ = ["C_ELE", "C_ELE_JAXREAXFF", "K_POL", "K_QEQ", "acks2_pair_energy", "charge_self_energy",
           "coulomb_energy", "pair_geometry", "shielded_coulomb", "softness_kernel",
           "take", "taper_range", "coulomb_kernel"]

C_ELE = 332.06371  # kcal/mol·Å/e², Coulomb energy (§16)
C_ELE_JAXREAXFF = 332.0638  # the same constant as JAX-ReaxFF (jax-md) rounds it
K_POL = 23.02      # kcal/mol per eV, self-energy and ACKS2 terms (§17, §20)
K_QEQ = 14.4       # eV·Å/e², QEq / ACKS2 hardness matrix of the LAMMPS fixes (§19)


def taper_range(params):
    """(swa, swb) = (gp12, gp13) of the force field: the pair style's nonbonded taper."""
    gp = params["gp"]
    return gp[11], gp[12]


def take(table, index):
    """table[index] for concrete or traced tables and indices."""
    return jnp.asarray(table)[index]


def pair_geometry(positions, cell, pairs, cutoff):
    """(i, j, r, valid) for a half list: r is the image distance (1.0 where not valid, so
    that every function of it stays finite), valid = mask and 0 < r <= cutoff (traced)."""
    if hasattr(pairs, "far_i"):
        pairs = (pairs.far_i, pairs.far_j, pairs.far_shift, pairs.far_mask)
    i, j, shifts, mask = pairs
    if cell is None:
        cell = np.zeros((3, 3))
    positions = jnp.asarray(positions)
    shifts = jnp.asarray(shifts).astype(np.float64)
    d = positions[j] - positions[i] + image_vectors(shifts, cell)
    r2 = jnp.sum(d * d, axis=-1)
    valid = jnp.logical_and(jnp.asarray(mask),
                            jnp.logical_and(r2 > 0.0, r2 <= cutoff * cutoff))
    r = jnp.sqrt(jnp.where(valid, r2, 1.0))
    return i, j, r, valid


def shielded_coulomb(r, gamma_i, gamma_j):
    """The shielded 1/r of ReaxFF: (r³ + (γ_i γ_j)^(-3/2))^(-1/3)."""
    return 1.0 / jnp.cbrt(r * r * r + (gamma_i * gamma_j) ** -1.5)


def softness_kernel(r, params, ti, tj):
    """ACKS2 bond softness X(r) = gp35·x³(1 − x)⁶, x = r / (½(bcut_i + bcut_j)), and the
    boolean r <= ½(bcut_i + bcut_j) where it applies (§20)."""
    b_ij = 0.5 * (take(params["bcut_acks2"], ti) + take(params["bcut_acks2"], tj))
    x = r / b_ij
    return params["gp"][34] * x * x * x * (1.0 - x) ** 6, r <= b_ij


def coulomb_kernel(positions, cell, params, types, pairs, swa=None, swb=None):
    """(i, j, kernel) over the half list: Tap(r) / (r³ + Γ_ij)^(1/3), zero on invalid pairs.
    The pair part of both the Coulomb energy and the QEq hardness matrix. swa, swb default
    to gp12, gp13."""
    lo, hi = taper_range(params)
    swa = lo if swa is None else swa
    swb = hi if swb is None else swb
    i, j, r, valid = pair_geometry(positions, cell, pairs, swb)
    gamma = params["gamma"]
    kernel = taper(r, swa, swb) * shielded_coulomb(r, take(gamma, take(types, i)),
                                                   take(gamma, take(types, j)))
    return i, j, jnp.where(valid, kernel, 0.0)


def coulomb_energy(positions, cell, charges, params, types, pairs, *, constant=C_ELE,
                   swa=None, swb=None):
    """``ep`` without the ACKS2 term: constant · Σ_pairs q_i q_j Tap(r) / (r³ + Γ_ij)^(1/3)
    in kcal/mol (§16)."""
    i, j, kernel = coulomb_kernel(positions, cell, params, types, pairs, swa, swb)
    q = jnp.asarray(charges)
    return constant * energy_sum(q[i] * q[j] * kernel, i, pairs)


def charge_self_energy(charges, params, types, potentials=None, batch=None):
    """``eqeq`` = K_pol · Σ_i (χ_i q_i + η_i q_i²) with η the file value (the table holds 2η),
    plus K_pol · Σ_i q_i u_i with ACKS2 potentials u (§17, §20). batch: batched lists, for
    one sum per structure."""
    q = jnp.asarray(charges)
    chi, eta = take(params["chi"], types), take(params["eta"], types)
    per_atom = chi * q + 0.5 * eta * q * q
    if potentials is not None:
        per_atom = per_atom + q * jnp.asarray(potentials)
    return K_POL * (jnp.sum(per_atom) if batch is None else energy_sum(per_atom, None, batch))


def acks2_pair_energy(positions, cell, potentials, params, types, pairs):
    """The ACKS2 bond-softness part of ``ep``: −½ K_pol Σ_pairs X(r) (u_i − u_j)² over the
    nonbonded pairs with r <= ½(bcut_i + bcut_j) (§20)."""
    i, j, r, valid = pair_geometry(positions, cell, pairs, taper_range(params)[1])
    x, inside = softness_kernel(r, params, take(types, i), take(types, j))
    u = jnp.asarray(potentials)
    du = u[i] - u[j]
    keep = jnp.logical_and(valid, jnp.logical_and(inside, x > 0.0))  # LAMMPS also tests X > 0
    return -0.5 * K_POL * jnp.sum(jnp.where(keep, x * du * du, 0.0))
