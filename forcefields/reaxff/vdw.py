"""van der Waals energy ``ew`` (spec §15): Morse with or without shielding, the inner wall, and
the lg dispersion correction (zero unless the force field has lg parameters), all tapered.

The mode (1 shielded, 2 inner wall, 3 both) is ``params["vdw_type"]``, selected with ``where`` so
that it can be traced. Pairs come from the half far list and are masked by r <= swb (gp13).
"""

from __future__ import annotations

import reaxgrad.core.numpy as jnp

from .geometry import displacement, norm, safe_vectors
from .reduce import energy_sum
from .taper import taper


def vdw_energy(positions, cell, params, lists):
    gp = params["gp"]
    swa, swb = gp[11], gp[12]
    fi, fj = lists.far_i, lists.far_j
    ti, tj = lists.types[fi], lists.types[fj]
    d = safe_vectors(displacement(positions, cell, fi, fj, lists.far_shift), lists.far_mask)
    r = norm(d)
    on = lists.far_mask & (r <= swb)
    mode = params["vdw_type"]
    shielded = mode != 2
    inner = mode != 1

    p = gp[28]
    gw = params["pair_gamma_w"][ti, tj]
    gw_ok = gw > 0
    f13_shield = (r**p + jnp.where(gw_ok, gw, 1.0) ** (-p)) ** (1.0 / p)
    f13 = jnp.where(shielded, f13_shield, r)
    D, alpha, rvdw = (params["pair_D"][ti, tj], params["pair_alpha"][ti, tj],
                      params["pair_r_vdw"][ti, tj])
    rvdw = jnp.where(rvdw != 0, rvdw, 1.0)
    x = 1.0 - f13 / rvdw
    e_morse = D * (jnp.exp(alpha * x) - 2.0 * jnp.exp(0.5 * alpha * x))
    e_morse = jnp.where(gw_ok | ~shielded, e_morse, 0.0)  # gamma_w = 0: f13 = inf, E_M = 0

    rcore = params["pair_rcore"][ti, tj]
    core_ok = inner & (rcore > 0)
    e_core = params["pair_ecore"][ti, tj] * jnp.exp(
        params["pair_acore"][ti, tj] * (1.0 - r / jnp.where(rcore > 0, rcore, 1.0)))
    e_core = jnp.where(core_ok, e_core, 0.0)
    lgre = params["pair_lgre"][ti, tj]
    e_lg = jnp.where(inner, -params["pair_lgcij"][ti, tj] / (r**6 + lgre**6), 0.0)
    e = taper(r, swa, swb) * (e_morse + e_core + e_lg)
    return energy_sum(jnp.where(on, e, 0.0), fi, lists)
