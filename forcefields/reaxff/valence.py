"""Valence-angle family (spec §8-§10): angle energy ``ev``, penalty ``epen`` and three-body
conjugation (coalition) ``ecoa``, summed over every parameter slot of the type triple.

Angle candidates come from the lists; LAMMPS's membership test (``BO > thb_cut`` for both bonds
and ``BO_ij * BO_jk > thb_cutsq``, corrected bond orders) is re-applied here to traced values.
"""

from __future__ import annotations

import reaxgrad.core.numpy as jnp
from reaxgrad.core.ops import segment_sum

from .geometry import arccos_lammps, cos_angle
from .reduce import energy_sum

PI_LAMMPS = 3.14159265  # LAMMPS's truncated pi in theta_0
MIN_SINE = 1e-5  # LAMMPS clamps sin(theta) to this in the valence-angle forces


def sbo2(bo, params, lists):
    """Per atom SBO2 (§8): sum of pi bond orders corrected by the lone pairs, then clamped."""
    gp = params["gp"]
    n = lists.types.shape[0]
    bi = lists.bond_i
    sbop = segment_sum(bo.bo_pi + bo.bo_pi2, bi, n)
    prod = jnp.exp(-segment_sum(bo.bo**8, bi, n))
    vlpadj = jnp.where(bo.v >= 0, 0.0, bo.nlp)
    sbo = sbop + (1.0 - prod) * (-bo.delta_ang - gp[33] * vlpadj)
    low = (sbo > 0) & (sbo <= 1)
    mid = (sbo > 1) & (sbo < 2)
    p_low = jnp.where(low, sbo, 1.0) ** gp[16]
    p_mid = 2.0 - jnp.where(mid, 2.0 - sbo, 1.0) ** gp[16]
    return jnp.where(sbo <= 0, 0.0, jnp.where(low, p_low, jnp.where(mid, p_mid, 2.0)))


def valence_energies(bo, params, lists):
    """(ev, epen, ecoa) in kcal/mol."""
    gp = params["gp"]
    thb = lists.thb_cut
    b1, b2 = lists.angle_b1, lists.angle_b2
    j = lists.bond_i[b1]
    i, k = lists.bond_j[b1], lists.bond_j[b2]
    t = lists.types
    ti, tj, tk = t[i], t[j], t[k]
    bo_ij, bo_jk = bo.bo[b1], bo.bo[b2]
    on = (lists.angle_mask & (bo_ij > thb) & (bo_jk > thb) & (bo_ij * bo_jk > lists.thb_cutsq))
    boa_ij = jnp.where(on, bo_ij - thb, 1.0)[:, None]
    boa_jk = jnp.where(on, bo_jk - thb, 1.0)[:, None]
    theta = arccos_lammps(MIN_SINE, cos_angle(bo.d[b1], bo.d[b2]))[:, None]

    # per-centre factors
    dang = bo.delta_ang[j][:, None]
    p_val3, p_val5 = params["p_val3"][tj][:, None], params["p_val5"][tj][:, None]
    sbo2_j = sbo2(bo, params, lists)[j][:, None]
    delta_j = bo.delta[j][:, None]
    e3, e4 = jnp.exp(-gp[20] * delta_j), jnp.exp(gp[21] * delta_j)
    f9 = (2.0 + e3) / (1.0 + e3 + e4)
    coa_j = 1.0 / (1.0 + jnp.exp(gp[2] * bo.delta_boc[j]))[:, None]

    # per parameter slot, shape (A, S)
    slot = params["angle_mask"][ti, tj, tk] & on[:, None]
    theta_00 = params["theta_00"][ti, tj, tk]
    p_val1, p_val2 = params["p_val1"][ti, tj, tk], params["p_val2"][ti, tj, tk]
    p_val4, p_val7 = params["p_val4"][ti, tj, tk], params["p_val7"][ti, tj, tk]
    p_pen1, p_coa1 = params["p_pen1"][ti, tj, tk], params["p_coa1"][ti, tj, tk]

    f7 = ((1.0 - jnp.exp(-p_val3 * boa_ij**p_val4)) * (1.0 - jnp.exp(-p_val3 * boa_jk**p_val4)))
    e6, e7 = jnp.exp(gp[14] * dang), jnp.exp(-p_val7 * dang)
    f8 = p_val5 - (p_val5 - 1.0) * (2.0 + e6) / (1.0 + e6 + e7)
    theta0 = (180.0 - theta_00 * (1.0 - jnp.exp(-gp[17] * (2.0 - sbo2_j)))) * (PI_LAMMPS / 180.0)
    g = jnp.exp(-p_val2 * (theta0 - theta) ** 2)
    e_ang = f7 * f8 * jnp.where(p_val1 >= 0, p_val1 * (1.0 - g), -p_val1 * g)
    e_pen = (p_pen1 * f9 * jnp.exp(-gp[19] * (boa_ij - 2.0) ** 2)
             * jnp.exp(-gp[19] * (boa_jk - 2.0) ** 2))
    S = bo.S
    e_coa = (p_coa1 * coa_j
             * jnp.exp(-gp[38] * (S[i][:, None] - boa_ij) ** 2)
             * jnp.exp(-gp[38] * (S[k][:, None] - boa_jk) ** 2)
             * jnp.exp(-gp[30] * (boa_ij - 1.5) ** 2)
             * jnp.exp(-gp[30] * (boa_jk - 1.5) ** 2))
    return tuple(energy_sum(jnp.where(slot, e, 0.0), j, lists) for e in (e_ang, e_pen, e_coa))
