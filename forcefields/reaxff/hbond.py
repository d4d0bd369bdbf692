"""Hydrogen-bond energy ``ehb`` (spec §13): donor i bonded to hydrogen j, acceptor k found by a
distance search. Not tapered; LAMMPS's tests (donor BO >= 0.01, r_jk <= hbond_cut) are
re-applied to traced values."""

from __future__ import annotations

import reaxgrad.core.numpy as jnp

from .geometry import displacement, dot, norm, safe_vectors
from .reduce import energy_sum

HB_THRESHOLD = 0.01


def hbond_energy(bo, positions, cell, params, lists):
    b = lists.hbond_bond
    j, i, k = lists.bond_i[b], lists.bond_j[b], lists.hbond_k
    t = lists.types
    ti, tj, tk = t[i], t[j], t[k]
    d_jk = safe_vectors(displacement(positions, cell, j, k, lists.hbond_shift), lists.hbond_mask)
    r_jk = norm(d_jk)
    bo_ij = bo.bo[b]
    on = lists.hbond_mask & (bo_ij >= HB_THRESHOLD) & (r_jk <= lists.hbond_cut)
    d_ji = bo.d[b]
    cos_theta = dot(d_ji, d_jk) / (bo.r[b] * r_jk)
    sin2_half = 0.5 * (1.0 - cos_theta)  # sin^2(theta/2)
    r0 = jnp.where(on, params["r0_hb"][ti, tj, tk], 1.0)
    e = (params["p_hb1"][ti, tj, tk] * (1.0 - jnp.exp(-params["p_hb2"][ti, tj, tk] * bo_ij))
         * jnp.exp(-params["p_hb3"][ti, tj, tk] * (r0 / r_jk + r_jk / r0 - 2.0))
         * sin2_half * sin2_half)
    return energy_sum(jnp.where(on, e, 0.0), j, lists)
