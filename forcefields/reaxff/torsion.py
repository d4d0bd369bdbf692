"""Torsion family (spec §11-§12): torsion energy ``et`` and four-body conjugation ``eco``.

Torsion candidates (i, j, k, l) come from the lists as three bond entries j->i, j->k, k->l;
LAMMPS's tests (each BO > thb_cut, product > thb_cut) are re-applied to traced values.
"""

from __future__ import annotations

import reaxgrad.core.numpy as jnp

from .geometry import dot, norm, safe_sqrt, sin_cos
from .reduce import energy_sum

MIN_SINE = 1e-10  # LAMMPS's clamp of sin(theta) in the torsion forces


def _sin_theta(a, b):
    s, _ = sin_cos(a, b)
    return s / (norm(a) * norm(b))


def torsion_energies(bo, params, lists):
    """(et, eco) in kcal/mol."""
    gp = params["gp"]
    thb = lists.thb_cut
    b_ij, b_jk, b_kl = lists.torsion_ij, lists.torsion_jk, lists.torsion_kl
    j, k = lists.bond_i[b_jk], lists.bond_j[b_jk]
    i, l = lists.bond_j[b_ij], lists.bond_j[b_kl]
    t = lists.types
    ti, tj, tk, tl = t[i], t[j], t[k], t[l]
    bo1, bo2, bo3 = bo.bo[b_ij], bo.bo[b_jk], bo.bo[b_kl]
    on = (lists.torsion_mask & params["torsion_mask"][ti, tj, tk, tl]
          & (bo1 > thb) & (bo2 > thb) & (bo3 > thb) & (bo1 * bo2 * bo3 > thb))
    boa = [b - thb for b in (bo1, bo2, bo3)]

    dsum = bo.delta_ang[j] + bo.delta_ang[k]
    e3, e4 = jnp.exp(-gp[24] * dsum), jnp.exp(gp[25] * dsum)
    f11 = (2.0 + e3) / (1.0 + e3 + e4)
    f10 = ((1.0 - jnp.exp(-gp[23] * boa[0])) * (1.0 - jnp.exp(-gp[23] * boa[1]))
           * (1.0 - jnp.exp(-gp[23] * boa[2])))

    d_ji, d_jk, d_kl = bo.d[b_ij], bo.d[b_jk], bo.d[b_kl]
    sin1, sin2 = _sin_theta(d_ji, d_jk), _sin_theta(-d_jk, d_kl)
    sines = sin1 * sin2
    r_jk = bo.r[b_jk]
    c = -dot(d_ji, d_jk) * dot(d_jk, d_kl) + r_jk * r_jk * dot(d_ji, d_kl)
    s = -r_jk * dot(d_ji, jnp.cross(d_jk, d_kl))
    q = c * c + s * s
    cos1 = jnp.where(q > 0, c / safe_sqrt(jnp.where(q > 0, q, 1.0)), 1.0)
    cos2 = 2.0 * cos1 * cos1 - 1.0
    cos3 = 4.0 * cos1 * cos1 * cos1 - 3.0 * cos1

    V1, V2, V3 = params["V1"][ti, tj, tk, tl], params["V2"][ti, tj, tk, tl], params["V3"][
        ti, tj, tk, tl]
    p_tor1, p_cot1 = params["p_tor1"][ti, tj, tk, tl], params["p_cot1"][ti, tj, tk, tl]
    v2 = V2 * jnp.exp(p_tor1 * (2.0 - bo.bo_pi[b_jk] - f11) ** 2)
    e_tor = f10 * sines * 0.5 * (V1 * (1.0 + cos1) + v2 * (1.0 - cos2) + V3 * (1.0 + cos3))
    f12 = (jnp.exp(-gp[27] * (boa[0] - 1.5) ** 2) * jnp.exp(-gp[27] * (boa[1] - 1.5) ** 2)
           * jnp.exp(-gp[27] * (boa[2] - 1.5) ** 2))
    conj = (cos1 * cos1 - 1.0) * sines
    # A bond angle of 0 or 180 degrees (sin < MIN_SINE) is a kink of sin(theta) and leaves omega
    # undefined. LAMMPS's forces, which clamp sin(theta) and 2 r_ij r_kl sin sin in the omega
    # derivatives, take no geometric derivative there: neither do we (the values are unchanged).
    flat = (sin1 < MIN_SINE) | (sin2 < MIN_SINE)
    e_tor = jnp.where(flat, jnp.stop_gradient(e_tor), e_tor)
    conj = jnp.where(flat, jnp.stop_gradient(conj), conj)
    e_con = p_cot1 * f12 * (1.0 + conj)
    return (energy_sum(jnp.where(on, e_tor, 0.0), j, lists),
            energy_sum(jnp.where(on, e_con, 0.0), j, lists))
