"""Lone-pair energy ``elp`` (spec §6), including the C2 correction for C-C bonds (atoms whose
element name is "C", flagged in ``lists.is_carbon``). Every atom counts (``enobonds yes``)."""

from __future__ import annotations

import reaxgrad.core.numpy as jnp

from .reduce import energy_sum

C2_SWITCH = 0.001  # the C2 correction is on when gp6 > this


def lone_pair_energy(bo, params, lists):
    t = lists.types
    dlp = bo.dlp
    e = energy_sum(params["p_lp2"][t] * dlp / (1.0 + jnp.exp(-75.0 * dlp)), None, lists)
    gp6 = params["gp"][5]
    bi, bj = lists.bond_i, lists.bond_j
    delta_i = bo.delta[bi]
    x = bo.bo - delta_i - 0.04 * delta_i**4
    on = (bo.valid & lists.is_carbon[bi] & lists.is_carbon[bj] & (gp6 > C2_SWITCH)
          & (x > 3.0))
    return e + energy_sum(jnp.where(on, gp6 * (x - 3.0) ** 2, 0.0), bi, lists)
