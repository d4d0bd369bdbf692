"""Over- and under-coordination energy ``eatom`` (spec §7). Every atom counts (``enobonds``)."""

from __future__ import annotations

import reaxgrad.core.numpy as jnp
from reaxgrad.core.ops import segment_sum

from .bond_order import HEAVY_MASS
from .reduce import energy_sum


def over_under_energy(bo, params, lists):
    gp = params["gp"]
    t = lists.types
    n = t.shape[0]
    bi, bj = lists.bond_i, lists.bond_j
    ti, tj = t[bi], t[bj]
    lam = jnp.where(params["mass"][t] > HEAVY_MASS, 0.0, 1.0)
    s1 = segment_sum(params["p_ovun1"][ti, tj] * params["De_s"][ti, tj] * bo.bo, bi, n)
    s2 = segment_sum((bo.delta[bj] - lam[bi] * bo.dlp_temp[bj]) * (bo.bo_pi + bo.bo_pi2), bi, n)
    dlc = bo.delta - lam * bo.dlp_temp / (1.0 + gp[32] * jnp.exp(gp[31] * s2))
    val, p_ovun2 = params["valency"][t], params["p_ovun2"][t]
    e_over = s1 * dlc / (dlc + val + 1e-8) / (1.0 + jnp.exp(p_ovun2 * dlc))
    e_under = (-params["p_ovun5"][t] * (1.0 - jnp.exp(gp[6] * dlc))
               / (1.0 + jnp.exp(-p_ovun2 * dlc)) / (1.0 + gp[8] * jnp.exp(gp[9] * s2)))
    return energy_sum(e_over + e_under, None, lists)
