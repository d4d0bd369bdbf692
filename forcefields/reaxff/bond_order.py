"""Bond orders (spec §4): uncorrected sigma/pi/pi-pi bond orders per bond-list entry, the
over-coordination (f1) and 1-3 (f4, f5) corrections, and the per-atom totals derived from them.

Every function is pure and works on NumPy arrays (list building) and on traced values (energy).
Bond-list entries are directed (i -> image of j); both directions are present and carry the same
bond orders. ``valid`` re-applies LAMMPS's bond-list test (``r <= bond_cut`` and
``BO'_raw >= c_bo``) to the traced values, so a generous candidate list gives LAMMPS's bonds.
"""

from __future__ import annotations

from dataclasses import dataclass

import reaxgrad.core.numpy as jnp
from reaxgrad.core.ops import segment_sum

from .geometry import displacement, norm, safe_vectors

BO_ZERO = 1e-10  # corrected bond orders below this are set to 0
CORRECTION_SWITCH = 0.001  # ovc / v13cor at or above this switch the corrections on
HEAVY_MASS = 21.0  # lambda = 0 (no lone-pair part in over-coordination) above this mass


@dataclass
class BondOrders:
    """Per bond entry (B,): d, r, valid, bo, bo_s, bo_pi, bo_pi2; per atom (n,): S, delta,
    delta_e, delta_ang (LAMMPS Delta_boc), delta_boc (LAMMPS Delta_val), v (vlpex), nlp,
    dlp (Delta_lp), dlp_temp."""

    d: object
    r: object
    valid: object
    bo: object
    bo_s: object
    bo_pi: object
    bo_pi2: object
    S: object
    delta: object
    delta_e: object
    delta_ang: object
    delta_boc: object
    v: object
    nlp: object
    dlp: object
    dlp_temp: object


def _exp_power(prefactor, r, r0, exponent, present):
    """exp(prefactor * (r / r0)^exponent) where ``present``, else 0 (r0 may be <= 0 there)."""
    ratio = r / jnp.where(present, r0, 1.0)
    return jnp.where(present, jnp.exp(prefactor * ratio**exponent), 0.0)


def uncorrected(r, ti, tj, params):
    """(BO'_raw, BO', BO'_sigma, BO'_pi, BO'_pipi) for distances r between types ti, tj."""
    c_bo = 0.01 * params["gp"][29]
    has_s = (params["r_s"][ti] > 0) & (params["r_s"][tj] > 0)
    has_p = (params["r_pi"][ti] > 0) & (params["r_pi"][tj] > 0)
    has_pp = (params["r_pi_pi"][ti] > 0) & (params["r_pi_pi"][tj] > 0)
    sig = (1.0 + c_bo) * _exp_power(params["p_bo1"][ti, tj], r, params["pair_r_s"][ti, tj],
                                    params["p_bo2"][ti, tj], has_s)
    pi = _exp_power(params["p_bo3"][ti, tj], r, params["pair_r_p"][ti, tj],
                    params["p_bo4"][ti, tj], has_p)
    pi2 = _exp_power(params["p_bo5"][ti, tj], r, params["pair_r_pp"][ti, tj],
                     params["p_bo6"][ti, tj], has_pp)
    raw = sig + pi + pi2
    return raw, raw - c_bo, sig - c_bo, pi, pi2


def _trunc(x):
    """C ``(int)`` cast as a float, with zero derivative."""
    x = jnp.stop_gradient(x)
    return jnp.where(x >= 0, jnp.floor(x), jnp.ceil(x))


def bond_orders(positions, cell, params, lists) -> BondOrders:
    """Corrected bond orders of every bond-list entry and the per-atom quantities of §4.3."""
    n = positions.shape[0]
    gp = params["gp"]
    bi, bj = lists.bond_i, lists.bond_j
    ti, tj = lists.types[bi], lists.types[bj]
    d = displacement(positions, cell, bi, bj, lists.bond_shift)
    d = safe_vectors(d, lists.bond_mask)
    r = norm(d)
    raw, bop, bop_s, bop_pi, bop_pi2 = uncorrected(r, ti, tj, params)
    valid = lists.bond_mask & (r <= lists.bond_cut) & (raw >= 0.01 * gp[29])
    bop = jnp.where(valid, bop, 0.0)
    bop_s = jnp.where(valid, bop_s, 0.0)
    bop_pi = jnp.where(valid, bop_pi, 0.0)
    bop_pi2 = jnp.where(valid, bop_pi2, 0.0)

    s_prime = segment_sum(bop, bi, n)
    dp = s_prime - params["valency"][lists.types]
    dp_boc = s_prime - params["valency_val"][lists.types]
    dpi, dpj = dp[bi], dp[bj]
    vi, vj = params["valency"][ti], params["valency"][tj]
    ovc, v13 = params["ovc"][ti, tj], params["v13cor"][ti, tj]

    f2 = jnp.exp(-gp[0] * dpi) + jnp.exp(-gp[0] * dpj)
    f3 = -1.0 / gp[1] * jnp.log(0.5 * (jnp.exp(-gp[1] * dpi) + jnp.exp(-gp[1] * dpj)))
    f1 = 0.5 * ((vi + f2) / (vi + f2 + f3) + (vj + f2) / (vj + f2 + f3))
    f1 = jnp.where(ovc >= CORRECTION_SWITCH, f1, 1.0)
    x = params["pair_p_boc4"][ti, tj] * bop * bop
    boc3, boc5 = params["pair_p_boc3"][ti, tj], params["pair_p_boc5"][ti, tj]
    f4 = 1.0 / (1.0 + jnp.exp(-(x - dp_boc[bi]) * boc3 + boc5))
    f5 = 1.0 / (1.0 + jnp.exp(-(x - dp_boc[bj]) * boc3 + boc5))
    f45 = jnp.where(v13 >= CORRECTION_SWITCH, f4 * f5, 1.0)
    bo = bop * f1 * f45
    bo_pi = bop_pi * f1 * f1 * f45
    bo_pi2 = bop_pi2 * f1 * f1 * f45
    bo_s = bo - (bo_pi + bo_pi2)
    corrected = (ovc >= CORRECTION_SWITCH) | (v13 >= CORRECTION_SWITCH)
    bo = jnp.where(corrected, bo, bop)
    bo_pi = jnp.where(corrected, bo_pi, bop_pi)
    bo_pi2 = jnp.where(corrected, bo_pi2, bop_pi2)
    bo_s = jnp.where(corrected, bo_s, bop_s)
    bo, bo_s, bo_pi, bo_pi2 = (jnp.where(valid & (b >= BO_ZERO), b, 0.0)
                               for b in (bo, bo_s, bo_pi, bo_pi2))

    t = lists.types
    S = segment_sum(bo, bi, n)
    delta_e = S - params["valency_e"][t]
    trunc = _trunc(delta_e / 2.0)
    v = delta_e - 2.0 * trunc
    nlp = jnp.exp(-gp[15] * (2.0 + v) ** 2) - trunc
    dlp = params["nlp_opt"][t] - nlp
    return BondOrders(
        d=d, r=r, valid=valid, bo=bo, bo_s=bo_s, bo_pi=bo_pi, bo_pi2=bo_pi2, S=S,
        delta=S - params["valency"][t], delta_e=delta_e,
        delta_ang=S - params["valency_boc"][t], delta_boc=S - params["valency_val"][t],
        v=v, nlp=nlp, dlp=dlp,
        dlp_temp=jnp.where(params["mass"][t] > HEAVY_MASS, 0.0, dlp),
    )
