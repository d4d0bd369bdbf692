"""Bond energy ``ebond`` (spec §5): sigma/pi/pi-pi bond energies and the triple-bond
stabilisation (C-O pairs recognised by mass, or every pair when trunc(gp38) == 2)."""

from __future__ import annotations

import reaxgrad.core.numpy as jnp

from .bond_order import _trunc
from .reduce import energy_sum

TRIPLE_BOND_MIN = 1.0  # the stabilisation applies when BO >= this
CO_MASSES = (12.0, 15.999)


def _is_mass(m, value):
    return jnp.abs(m - value) < 1e-4


def bond_energy(bo, params, lists):
    """Sum over each bond once (``lists.bond_half``) of E_bond + E_trip (kcal/mol)."""
    gp = params["gp"]
    bi, bj = lists.bond_i, lists.bond_j
    ti, tj = lists.types[bi], lists.types[bj]
    has_s = bo.bo_s > 0
    pw = jnp.where(has_s, jnp.where(has_s, bo.bo_s, 1.0) ** params["p_be2"][ti, tj], 0.0)
    e = (-params["De_s"][ti, tj] * bo.bo_s * jnp.exp(params["p_be1"][ti, tj] * (1.0 - pw))
         - params["De_p"][ti, tj] * bo.bo_pi - params["De_pp"][ti, tj] * bo.bo_pi2)

    mi, mj = params["mass"][ti], params["mass"][tj]
    c_o = ((_is_mass(mi, CO_MASSES[0]) & _is_mass(mj, CO_MASSES[1]))
           | (_is_mass(mj, CO_MASSES[0]) & _is_mass(mi, CO_MASSES[1])))
    applies = (bo.bo >= TRIPLE_BOND_MIN) & ((_trunc(gp[37]) == 2.0) | c_o)
    S, delta = bo.S, bo.delta
    trip = (gp[10] * jnp.exp(-gp[7] * (bo.bo - 2.5) ** 2)
            * (jnp.exp(-gp[3] * (S[bi] - bo.bo)) + jnp.exp(-gp[3] * (S[bj] - bo.bo)))
            / (1.0 + 25.0 * jnp.exp(gp[4] * (delta[bi] + delta[bj]))))
    e = e + jnp.where(applies, trip, 0.0)
    return energy_sum(jnp.where(lists.bond_half & bo.valid, e, 0.0), bi, lists)
