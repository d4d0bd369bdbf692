"""ReaxFF interaction lists (spec §3), built outside any trace: one neighbour search for all
the distance lists (``find_pairs``: compiled C through ``md.neighbors.pair_lists``) and compiled
joins for angles, torsions and hydrogen bonds (``_lists_c``); where no C compiler works, NumPy
paths give the same lists in the same order (``method="numpy"`` forces them).

``build_lists(positions, cell, pbc, types, params, control)`` returns a :class:`ReaxLists` of
padded index arrays (capacities on the ``md.neighbors.bucket_capacity`` ladder, so jit caches
hit) with masks:

* bonds: directed entries i -> image of j within ``nbrhood_cutoff`` whose uncorrected bond order
  is near LAMMPS's threshold ``BO'_raw >= c_bo`` or above; both directions are present.
* angles: unordered pairs of distinct bond entries of the same centre;
* torsions: bond entries (j->i, j->k, k->l), each central bond once;
* hydrogen bonds: (donor bond j->i, acceptor image k) with a hydrogen j;
* far pairs: the half list of every image within the nonbonded cutoff gp13.

Every set is a *candidate* set: LAMMPS's discontinuous tests (distance cutoffs, ``BO'_raw >=
c_bo``, ``BO > thb_cut``, products, ``BO >= 0.01`` for H-bond donors) are applied again to the
traced values inside the energy, so the result is LAMMPS's selection at the evaluated geometry.
The candidate tests here are looser: distances by ``skin`` (Å), and bond-order thresholds are
tested on the *uncorrected* bond order at the distance shortened by ``skin`` (an upper bound of
the corrected one, up to the factor ``bo_margin`` applied to every threshold), so the lists stay
exact while no atom moves more than about skin/2 (finite differences, a few MD steps).

Control keys (LAMMPS control file names): ``nbrhood_cutoff`` (5), ``hbond_cutoff`` (7.5; <= 0
switches H-bonds off), ``thb_cutoff`` (0.001), ``thb_cutoff_sq`` (1e-5); reaxgrad's ``skin``
(0.3 Å), ``bo_margin`` (0.5) and ``image_limit`` (None: every periodic image; 3 ints: only
images within that many cells along a, b, c, as JAX-ReaxFF, which stops at ceil(10 Å / the
cell matrix diagonal) and so misses images of strongly skewed cells) and ``corrected_margin``
(None; a number m: angle, torsion and H-bond candidates are tested on the *corrected* bond
orders at the build positions against m times LAMMPS's thresholds — far fewer candidates,
valid while bond orders grow less than 1/m times: fitting, which rebuilds often) and
``index_exclusions`` (False; True: a torsion's four atoms must be distinct atoms, not only
distinct images, as JAX-ReaxFF counts them in small periodic cells).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reaxgrad.md.neighbors import PaddedPairs, bucket_capacity, half_pair_mask, pair_lists

from . import _lists_c

CONTROL_DEFAULTS = {
    "nbrhood_cutoff": 5.0,
    "hbond_cutoff": 7.5,
    "thb_cutoff": 0.001,
    "thb_cutoff_sq": 0.00001,
    "skin": 0.3,
    "bo_margin": 0.5,
}
HB_THRESHOLD = 0.01


@dataclass
class ReaxLists:
    """Padded interaction lists (a pytree). Index arrays are int64, shifts float64 (m, 3) image
    vectors, masks bool. Bond entry b: ``bond_i[b] -> bond_j[b] + bond_shift[b]``. Angles, torsions
    and H-bonds index bond entries; the thresholds are 0-d float arrays."""

    types: np.ndarray
    is_carbon: np.ndarray
    bond_i: np.ndarray
    bond_j: np.ndarray
    bond_shift: np.ndarray
    bond_mask: np.ndarray
    bond_half: np.ndarray
    angle_b1: np.ndarray
    angle_b2: np.ndarray
    angle_mask: np.ndarray
    torsion_ij: np.ndarray
    torsion_jk: np.ndarray
    torsion_kl: np.ndarray
    torsion_mask: np.ndarray
    hbond_bond: np.ndarray
    hbond_k: np.ndarray
    hbond_shift: np.ndarray
    hbond_mask: np.ndarray
    far_i: np.ndarray
    far_j: np.ndarray
    far_shift: np.ndarray
    far_mask: np.ndarray
    bond_cut: np.ndarray
    hbond_cut: np.ndarray
    thb_cut: np.ndarray
    thb_cutsq: np.ndarray
    # batches of independent structures (optimize.batch): the structure of each atom, each
    # atom's slot s * m + local in the (S, m) padded layout of the charge solve, and that
    # layout's mask of real atoms. None for a single structure.
    atom_structure: np.ndarray | None = None
    charge_slot: np.ndarray | None = None
    structure_slots: np.ndarray | None = None

    def counts(self) -> dict:
        """Number of real (unpadded) candidates per list."""
        return {name: int(np.sum(getattr(self, name + "_mask")))
                for name in ("bond", "angle", "torsion", "hbond", "far")}


def _pad(capacity, *arrays):
    """Pad 1-d/2-d arrays with zeros to ``capacity`` rows; returns (*padded, mask)."""
    m = len(arrays[0])
    out = []
    for a in arrays:
        p = np.zeros((capacity,) + a.shape[1:], dtype=a.dtype)
        p[:m] = a
        out.append(p)
    mask = np.zeros(capacity, dtype=bool)
    mask[:m] = True
    return (*out, mask)


def _capacity(m, minimum):
    return bucket_capacity(m, minimum=minimum)


def _ranges(starts, counts):
    total = int(counts.sum())
    first = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(first - starts, counts)


def _join(key_a, key_b):
    """All (a, b) index pairs with key_a[a] == key_b[b]."""
    order = np.argsort(key_b, kind="stable")
    sorted_b = key_b[order]
    start = np.searchsorted(sorted_b, key_a, "left")
    counts = np.searchsorted(sorted_b, key_a, "right") - start
    a = np.repeat(np.arange(len(key_a), dtype=np.int64), counts)
    return a, order[_ranges(start, counts)]


def _corrected(positions, cell, types, params, i, j, shifts, bond_cut) -> np.ndarray:
    """Corrected bond orders (§4) of the bond entries (i, j, shifts) at these positions."""
    from types import SimpleNamespace

    from .bond_order import bond_orders

    entries = SimpleNamespace(bond_i=i, bond_j=j, bond_shift=shifts.astype(np.float64),
                              bond_mask=np.ones(len(i), dtype=bool), types=types,
                              bond_cut=np.array(bond_cut))
    return np.asarray(bond_orders(positions, cell, params, entries).bo, dtype=np.float64)


def _carbon_flags(params, types, elements):
    if elements is not None:
        names = np.array([str(e).upper()[:3] == "C" for e in elements])
    else:  # no names given: recognise carbon by its mass
        names = np.abs(np.asarray(params["mass"]) - 12.0) < 0.02
    return names[types]


_CONTROL_KEYS = frozenset(CONTROL_DEFAULTS) | {"tabulate_long_range", "bond_graph_cutoff",
                                               "image_limit", "corrected_margin",
                                               "index_exclusions"}


def _settings(control):
    settings = dict(CONTROL_DEFAULTS)
    if control:
        unknown = set(control) - _CONTROL_KEYS
        if unknown:
            raise ValueError(f"unknown control keywords {sorted(unknown)}")
        settings.update(control)
    return settings


def raw_bond_order(r, ti, tj, params):
    """``bond_order.uncorrected(r, ti, tj, params)[0]`` (BO'_raw) in plain NumPy: the same
    operations in the same order (equal bit for bit, tested), without the engine's dispatch,
    for list building."""
    p = params
    c_bo = 0.01 * np.asarray(p["gp"])[29]
    r_s, r_pi, r_pp = (np.asarray(p[k]) for k in ("r_s", "r_pi", "r_pi_pi"))
    t = ti * len(r_s) + tj

    def term(prefactor, r0, exponent, present):
        present = present[ti] & present[tj]
        ratio = r / np.where(present, np.asarray(p[r0]).ravel()[t], 1.0)
        return np.where(present, np.exp(np.asarray(p[prefactor]).ravel()[t]
                                        * ratio ** np.asarray(p[exponent]).ravel()[t]), 0.0)

    sig = (1.0 + c_bo) * term("p_bo1", "pair_r_s", "p_bo2", r_s > 0)
    pi = term("p_bo3", "pair_r_p", "p_bo4", r_pi > 0)
    pi2 = term("p_bo5", "pair_r_pp", "p_bo6", r_pp > 0)
    return sig + pi + pi2


def bond_reach(params, threshold):
    """(T, T) distances beyond which BO'_raw < ``threshold`` for sure (inf where that cannot
    be told: a term that does not decay, or a threshold <= 0).

    BO'_raw = (1 + c_bo) e_s + e_pi + e_pipi with e = exp(p (r / r0)^q), each decreasing in r
    when p < 0 < q; the sum reaches the threshold only where some term reaches a third of it,
    so the largest of the three distances where a term equals its share bounds the bond list
    (with a relative margin of 1e-6 for rounding)."""
    p = {k: np.asarray(params[k], dtype=np.float64) for k in (
        "gp", "r_s", "r_pi", "r_pi_pi", "p_bo1", "p_bo2", "p_bo3", "p_bo4", "p_bo5", "p_bo6",
        "pair_r_s", "pair_r_p", "pair_r_pp")}
    c_bo = 0.01 * p["gp"][29]
    n = len(p["r_s"])
    if not threshold > 0:
        return np.full((n, n), np.inf)
    reach = np.zeros((n, n))
    with np.errstate(all="ignore"):
        for pre, r0, ex, single, factor in (("p_bo1", "pair_r_s", "p_bo2", "r_s", 1.0 + c_bo),
                                            ("p_bo3", "pair_r_p", "p_bo4", "r_pi", 1.0),
                                            ("p_bo5", "pair_r_pp", "p_bo6", "r_pi_pi", 1.0)):
            present = (p[single][:, None] > 0) & (p[single][None, :] > 0)
            log_share = np.log(threshold / 3.0 / factor) if factor > 0 else np.nan
            a, q, rr = p[pre], p[ex], p[r0]
            dist = rr * (log_share / a) ** (1.0 / q)
            ok = (a < 0) & (q > 0) & (rr > 0) & (log_share < -1e-3) & np.isfinite(dist)
            dist = np.where(ok, dist * (1.0 + 1e-6) + 1e-9, np.inf)
            reach = np.maximum(reach, np.where(present, dist, 0.0))
    return reach


@dataclass
class ListPairs:
    """Neighbour pairs for one ``build_lists`` call, found in one search: bond candidates,
    hydrogen-acceptor pairs, the nonbonded half list and (when asked) the half list of pairs
    closer than ``overlap_distance``. Each (i, j, shifts), int32, in (i, j, shift) order, but
    ``far``: a ``PaddedPairs`` (int64 / float64 buffers that padding reuses)."""

    bond: tuple
    hbond: tuple | None
    far: PaddedPairs
    overlap: tuple | None
    key: tuple


def _pair_key(s, n):
    return (float(s["nbrhood_cutoff"]), float(s["hbond_cutoff"]), float(s["skin"]),
            float(s["bo_margin"]), repr(s.get("image_limit")), n)


_BOND_KEYS = ("gp", "r_s", "r_pi", "r_pi_pi", "p_bo1", "p_bo2", "p_bo3", "p_bo4", "p_bo5",
              "p_bo6", "pair_r_s", "pair_r_p", "pair_r_pp", "p_hbond")
_table_cache: dict = {}


def _search_tables(params, skin, margin, bond_cut, hbond_cut, with_hbonds, overlap_distance):
    """(k, T, T) cutoffs of the lists of one search (cached by force-field content): bond
    candidates (within the bond cutoff and near enough for BO'_raw at the distance shortened
    by the skin to reach its threshold), hydrogen-acceptor pairs (with hydrogen bonds), the
    nonbonded half list and the overlap check (when asked)."""
    arrays = [np.asarray(params[k]) for k in _BOND_KEYS]
    key = (b"|".join(a.tobytes() for a in arrays), skin, margin, bond_cut, hbond_cut,
           with_hbonds, overlap_distance)
    tables = _table_cache.get(key)
    if tables is None:
        gp, hb = arrays[0], arrays[-1]
        c_bo = 0.01 * gp[29]
        bond = np.minimum(bond_cut + skin, bond_reach(params, margin * c_bo) + skin)
        full = np.ones_like(bond)
        tables = [bond]
        if with_hbonds:
            tables.append(np.where((hb[:, None] == 1) & (hb[None, :] == 2),
                                   hbond_cut + skin, -1.0))
        tables.append(full * (float(gp[12]) + skin))
        if overlap_distance is not None:
            tables.append(full * float(overlap_distance))
        tables = np.array(tables)
        if len(_table_cache) > 64:
            _table_cache.clear()
        _table_cache[key] = tables
    return tables


def find_pairs(positions, cell, pbc, types, params, control=None, *, overlap_distance=None,
               previous=None, method="auto") -> ListPairs:
    """The neighbour search of ``build_lists`` (one pass at the largest cutoff); with
    ``overlap_distance``, also the pairs closer than that, for an overlap check. previous:
    the ReaxLists whose capacities ``build_lists`` will keep (the far list is found into
    buffers that large)."""
    s = _settings(control)
    positions = np.asarray(positions, dtype=np.float64)
    cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
    types = np.asarray(types, dtype=np.int64)
    skin, margin = float(s["skin"]), float(s["bo_margin"])
    bond_cut, hbond_cut = float(s["nbrhood_cutoff"]), float(s["hbond_cutoff"])
    hb = np.asarray(params["p_hbond"])
    with_hbonds = hbond_cut > 0 and bool(np.any(hb[types] == 1))
    tables = _search_tables(params, skin, margin, bond_cut, hbond_cut, with_hbonds,
                            overlap_distance)
    halves = [False] * (1 + with_hbonds) + [True] + [True] * (overlap_distance is not None)
    limit = s.get("image_limit")
    k_far = len(halves) - 1 - (overlap_distance is not None)
    wide = [limit is None and k == k_far for k in range(len(halves))]
    min_cap = [len(previous.far_i) if previous is not None and wide[k] else 0
               for k in range(len(halves))]
    found = pair_lists(positions, cell, pbc, tables, half=halves, types=types, method=method,
                       wide=wide, min_capacity=min_cap)
    overlap = found.pop() if overlap_distance is not None else None
    if limit is not None:  # the overlap check sees every image
        limit = np.asarray(limit, dtype=np.int64)
        found = [(i[k], j[k], sh[k]) for i, j, sh in found
                 for k in [np.all(np.abs(sh) <= limit, axis=1)]]
        fi, fj, fs = found[-1]
        found[-1] = PaddedPairs(fi.astype(np.int64), fj.astype(np.int64),
                                fs.astype(np.float64), len(fi))
    return ListPairs(bond=found[0], hbond=found[1] if with_hbonds else None, far=found[-1],
                     overlap=overlap, key=_pair_key(s, len(positions)))


def _joins_numpy(i, j, sh, ti, tj, types, bo_hi, bond_half, p, margin, thb, thb_sq,
                 exclusions, hpairs):
    """Angle, torsion and hydrogen-bond candidates from the bond entries (NumPy joins; the
    specification of the compiled joins)."""
    # valence angles: pairs of entries of one centre, a < b, among the entries whose (end,
    # centre) types appear in some angle of the force field (metals often have none)
    angle_types = p["angle_mask"].any(axis=-1)
    leg = np.flatnonzero(angle_types.any(axis=2)[tj, ti] | angle_types.any(axis=0).T[tj, ti])
    a, b = _join(i[leg], i[leg])
    a, b = leg[a], leg[b]
    sel = (a < b) & (bo_hi[a] > margin * thb) & (bo_hi[b] > margin * thb)
    sel &= bo_hi[a] * bo_hi[b] > margin * margin * thb_sq
    a, b = a[sel], b[sel]
    sel = p["angle_mask"][tj[a], ti[a], tj[b]].any(axis=-1)
    a, b = a[sel], b[sel]

    # torsions: central entry jk (once per bond), ij from j's list, kl from k's list
    central = np.flatnonzero(bond_half & (bo_hi > margin * thb)
                             & p["torsion_mask"].any(axis=(0, 3))[ti, tj])
    c_idx, ij = _join(i[central], i)
    jk = central[c_idx]
    sel = (ij != jk) & (bo_hi[ij] > margin * thb)
    jk, ij = jk[sel], ij[sel]
    t_idx, kl = _join(j[jk], i)
    jk, ij = jk[t_idx], ij[t_idx]
    shift_l = sh[jk] + sh[kl]
    back = (j[kl] == i[jk]) & ~shift_l.any(axis=1)
    same_end = (j[ij] == j[kl]) & (sh[ij] == shift_l).all(axis=1)
    sel = ~back & ~same_end & (bo_hi[kl] > margin * thb)
    sel &= bo_hi[ij] * bo_hi[jk] * bo_hi[kl] > margin**3 * thb
    if exclusions:  # JAX-ReaxFF: distinct atom indices, whatever the images
        sel &= ((i[jk] != j[jk]) & (j[ij] != j[jk]) & (j[kl] != i[jk])
                & (j[ij] != j[kl]))
    jk, ij, kl = jk[sel], ij[sel], kl[sel]
    sel = p["torsion_mask"][tj[ij], ti[jk], tj[jk], tj[kl]]
    jk, ij, kl = jk[sel], ij[sel], kl[sel]

    # hydrogen bonds: donor entries j->i of hydrogens j, acceptors from the pair search
    if hpairs is not None:
        hb = p["p_hbond"]
        hi, hk = hpairs
        donors = np.flatnonzero((hb[ti] == 1) & (hb[tj] == 2) & (bo_hi >= margin * HB_THRESHOLD))
        dn, ac = _join(i[donors], hi)
        dn = donors[dn]
        sel = (j[dn] != hk[ac]) & p["hbond_mask"][tj[dn], ti[dn], types[hk[ac]]]
        dn, ac = dn[sel], ac[sel]
    else:
        dn, ac = np.zeros(0, np.int64), np.zeros(0, np.int64)
    return (a, b), (ij, jk, kl), (dn, ac)


def _joins_compiled(i, j, sh, types, bo_hi, bond_half, p, margin, thb, thb_sq, exclusions,
                    hpairs, n, capacities):
    """The same joins by compiled code, into zero-filled buffers at least ``capacities`` long
    (None when compiled code is unavailable)."""
    hi, hk = hpairs if hpairs is not None else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    tables = _lists_c.packed_tables(p["angle_mask"], p["torsion_mask"], p["p_hbond"],
                                    p["hbond_mask"])
    thresholds = (margin * thb, margin * margin * thb_sq, margin * thb, margin**3 * thb,
                  margin * HB_THRESHOLD)
    return _lists_c.joins(n, i, j, sh, types, bo_hi, bond_half, tables, thresholds,
                          exclusions, hi, hk, capacities)


_JOIN_KEYS = ("angle_mask", "torsion_mask", "p_hbond", "hbond_mask")


def _fit(buffer, m, capacity):
    """``buffer`` (zero beyond row m) as a ``capacity``-row array: a view when long enough."""
    if len(buffer) >= capacity:
        return buffer[:capacity]
    out = np.zeros((capacity,) + buffer.shape[1:], dtype=buffer.dtype)
    out[:m] = buffer[:m]
    return out


def _mask(m, capacity):
    mask = np.zeros(capacity, dtype=bool)
    mask[:m] = True
    return mask


def build_lists(positions, cell, pbc, types, params, control=None, *, elements=None,
                minimum_capacity=64, previous=None, pairs: ListPairs | None = None,
                method="auto") -> ReaxLists:
    """Candidate interaction lists for ``positions`` (see the module docstring).

    types: (n,) indices into the force field's atom types; params: ``to_params(ff)``;
    control: dict of the keys in ``CONTROL_DEFAULTS``; elements: the force field's element
    names (``ff.elements``; only "C" matters, for the C2 correction; default: carbon by mass).
    previous: an earlier ReaxLists whose capacities are kept when the lists fit.
    pairs: the ``find_pairs`` result for these arguments (one search serves an overlap check
    and the lists). method: "auto" (compiled code when available), "numpy" (the NumPy paths).
    """
    s = _settings(control)
    positions = np.asarray(positions, dtype=np.float64)
    cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
    types = np.asarray(types, dtype=np.int64)
    gp = np.asarray(params["gp"])
    skin, margin = float(s["skin"]), float(s["bo_margin"])
    thb, thb_sq = float(s["thb_cutoff"]), float(s["thb_cutoff_sq"])
    bond_cut, hbond_cut = float(s["nbrhood_cutoff"]), float(s["hbond_cutoff"])
    c_bo = 0.01 * gp[29]
    if pairs is None:
        pairs = find_pairs(positions, cell, pbc, types, params, control, previous=previous,
                           method=method)
    elif pairs.key != _pair_key(s, len(positions)):
        raise ValueError("pairs were found with other settings")

    def cap(name, m):
        old = None if previous is None else len(getattr(previous, name))
        if old is not None and m <= old:
            return old
        return _capacity(m, minimum_capacity)

    # bonds. bo_hi: the uncorrected bond order at the distance shortened by the skin, an upper
    # bound (up to the f1 factor, ~1, covered by bo_margin) of every corrected bond order the
    # entry can reach while atoms move less than skin / 2.
    i, j, sh = (a.astype(np.int64) for a in pairs.bond)
    d = positions[j] - positions[i] + sh.astype(np.float64) @ cell
    r = np.sqrt(np.einsum("md,md->m", d, d))
    ti, tj = types[i], types[j]
    raw = raw_bond_order(r, ti, tj, params)
    if skin != 0.0:  # with no skin r_short == r
        r_short = np.maximum(r - skin, 0.5 * r)
        raw = np.maximum(raw, raw_bond_order(r_short, ti, tj, params))
    keep = raw >= margin * c_bo
    i, j, sh, bo_hi = i[keep], j[keep], sh[keep], raw[keep]
    nb = len(i)
    bcap = cap("bond_i", nb)
    bond_i, bond_j, bond_shift, bond_mask = _pad(bcap, i, j, sh.astype(np.float64))
    bond_half = np.zeros(bcap, dtype=bool)
    bond_half[:nb] = half_pair_mask(i, j, sh)
    ti, tj = types[i], types[j]
    if s.get("corrected_margin"):  # tighter: corrected bond orders at these positions
        # every entry counted as a bond (c_bo = 0), so that the 1-3 corrections are estimated
        # also for entries below the bond threshold here, which may cross it later
        p_all = {k: np.asarray(v) for k, v in params.items()}
        no_threshold = dict(p_all, gp=np.where(np.arange(len(gp)) == 29, 0.0, gp))
        bo_hi = _corrected(positions, cell, types, no_threshold, i, j, sh, bond_cut + skin)
        margin = float(s["corrected_margin"])

    p = {k: np.asarray(params[k]) for k in _JOIN_KEYS}
    hpairs = None
    if pairs.hbond is not None:
        hpairs = (pairs.hbond[0].astype(np.int64), pairs.hbond[1].astype(np.int64))
    exclusions = bool(s.get("index_exclusions"))
    compiled = None
    if method != "numpy":
        olds = [0 if previous is None else len(getattr(previous, name))
                for name in ("angle_b1", "torsion_ij", "hbond_bond")]
        compiled = _joins_compiled(i, j, sh, types, bo_hi, bond_half[:nb], p, margin, thb,
                                   thb_sq, exclusions, hpairs, len(positions), olds)
    if compiled is not None:
        ((a, b), (ij, jk, kl), (dn, ac)), (na, nt, nh) = compiled
        acap, tcap, hcap = cap("angle_b1", na), cap("torsion_ij", nt), cap("hbond_bond", nh)
        angle_b1, angle_b2 = _fit(a, na, acap), _fit(b, na, acap)
        torsion_ij, torsion_jk, torsion_kl = (_fit(x, nt, tcap) for x in (ij, jk, kl))
        angle_mask, torsion_mask = _mask(na, acap), _mask(nt, tcap)
        dn, ac = dn[:nh], ac[:nh]
    else:
        (a, b), (ij, jk, kl), (dn, ac) = _joins_numpy(
            i, j, sh, ti, tj, types, bo_hi, bond_half[:nb], p, margin, thb, thb_sq,
            exclusions, hpairs)
        angle_b1, angle_b2, angle_mask = _pad(cap("angle_b1", len(a)), a, b)
        torsion_ij, torsion_jk, torsion_kl, torsion_mask = _pad(cap("torsion_ij", len(jk)),
                                                                ij, jk, kl)
    if pairs.hbond is not None:
        h_k, h_shift = hpairs[1][ac], pairs.hbond[2][ac].astype(np.float64)
    else:
        h_k, h_shift = np.zeros(0, np.int64), np.zeros((0, 3))
    hcap = cap("hbond_bond", len(dn))
    hbond_bond, hbond_k, hbond_shift, hbond_mask = _pad(hcap, dn, h_k, h_shift)

    # nonbonded half list (its buffers, when long enough)
    far_i, far_j, far_shift, far_mask = pairs.far.padded(cap("far_i", pairs.far.n))
    return ReaxLists(
        types=types, is_carbon=_carbon_flags(params, types, elements), bond_i=bond_i,
        bond_j=bond_j, bond_shift=bond_shift, bond_mask=bond_mask, bond_half=bond_half,
        angle_b1=angle_b1, angle_b2=angle_b2, angle_mask=angle_mask, torsion_ij=torsion_ij,
        torsion_jk=torsion_jk, torsion_kl=torsion_kl, torsion_mask=torsion_mask,
        hbond_bond=hbond_bond, hbond_k=hbond_k, hbond_shift=hbond_shift, hbond_mask=hbond_mask,
        far_i=far_i, far_j=far_j, far_shift=far_shift, far_mask=far_mask,
        bond_cut=np.array(bond_cut), hbond_cut=np.array(hbond_cut), thb_cut=np.array(thb),
        thb_cutsq=np.array(thb_sq))
