"""ReaxFF interaction lists (spec §3), built in NumPy outside any trace.

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

from reaxgrad.md.neighbors import bucket_capacity, half_pair_mask, neighbor_pairs

from .bond_order import uncorrected

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


def _pairs(positions, cell, pbc, cutoff, half=False, image_limit=None):
    """(i, j, shifts) int64 of every image within ``cutoff`` (``md.neighbors``); with
    ``image_limit`` (3 ints), only images with |shift_k| <= image_limit[k]."""
    i, j, sh = neighbor_pairs(positions, cell, pbc, cutoff, half=half)
    i, j, sh = i.astype(np.int64), j.astype(np.int64), sh.astype(np.int64)
    if image_limit is not None:
        keep = np.all(np.abs(sh) <= np.asarray(image_limit, dtype=np.int64), axis=1)
        i, j, sh = i[keep], j[keep], sh[keep]
    return i, j, sh


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


def _settings(control):
    settings = dict(CONTROL_DEFAULTS)
    if control:
        unknown = set(control) - set(settings) - {"tabulate_long_range", "bond_graph_cutoff",
                                                  "image_limit", "corrected_margin",
                                                  "index_exclusions"}
        if unknown:
            raise ValueError(f"unknown control keywords {sorted(unknown)}")
        settings.update(control)
    return settings


def build_lists(positions, cell, pbc, types, params, control=None, *, elements=None,
                minimum_capacity=64, previous=None) -> ReaxLists:
    """Candidate interaction lists for ``positions`` (see the module docstring).

    types: (n,) indices into the force field's atom types; params: ``to_params(ff)``;
    control: dict of the keys in ``CONTROL_DEFAULTS``; elements: the force field's element
    names (``ff.elements``; only "C" matters, for the C2 correction; default: carbon by mass).
    previous: an earlier ReaxLists whose capacities are kept when the lists fit.
    """
    s = _settings(control)
    positions = np.asarray(positions, dtype=np.float64)
    cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
    types = np.asarray(types, dtype=np.int64)
    p = {k: np.asarray(v) for k, v in params.items()}
    gp = p["gp"]
    skin, margin = float(s["skin"]), float(s["bo_margin"])
    thb, thb_sq = float(s["thb_cutoff"]), float(s["thb_cutoff_sq"])
    bond_cut, hbond_cut = float(s["nbrhood_cutoff"]), float(s["hbond_cutoff"])
    c_bo = 0.01 * gp[29]

    def cap(name, m):
        old = None if previous is None else len(getattr(previous, name))
        if old is not None and m <= old:
            return old
        return _capacity(m, minimum_capacity)

    # bonds. bo_hi: the uncorrected bond order at the distance shortened by the skin, an upper
    # bound (up to the f1 factor, ~1, covered by bo_margin) of every corrected bond order the
    # entry can reach while atoms move less than skin / 2.
    limit = s.get("image_limit")
    i, j, sh = _pairs(positions, cell, pbc, bond_cut + skin, image_limit=limit)
    d = positions[j] - positions[i] + sh.astype(np.float64) @ cell
    r = np.sqrt(np.einsum("md,md->m", d, d))
    r_short = np.maximum(r - skin, 0.5 * r)
    raw = np.maximum(np.asarray(uncorrected(r, types[i], types[j], p)[0]),
                     np.asarray(uncorrected(r_short, types[i], types[j], p)[0]))
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
        no_threshold = dict(p, gp=np.where(np.arange(len(gp)) == 29, 0.0, gp))
        bo_hi = _corrected(positions, cell, types, no_threshold, i, j, sh, bond_cut + skin)
        margin = float(s["corrected_margin"])

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
    acap = cap("angle_b1", len(a))
    angle_b1, angle_b2, angle_mask = _pad(acap, a, b)

    # torsions: central entry jk (once per bond), ij from j's list, kl from k's list
    central = np.flatnonzero(bond_half[:nb] & (bo_hi > margin * thb)
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
    if s.get("index_exclusions"):  # JAX-ReaxFF: distinct atom indices, whatever the images
        sel &= ((i[jk] != j[jk]) & (j[ij] != j[jk]) & (j[kl] != i[jk])
                & (j[ij] != j[kl]))
    jk, ij, kl = jk[sel], ij[sel], kl[sel]
    sel = p["torsion_mask"][tj[ij], ti[jk], tj[jk], tj[kl]]
    jk, ij, kl = jk[sel], ij[sel], kl[sel]
    tcap = cap("torsion_ij", len(jk))
    torsion_ij, torsion_jk, torsion_kl, torsion_mask = _pad(tcap, ij, jk, kl)

    # hydrogen bonds: donor entries j->i of hydrogens j, acceptors by distance search
    hb = p["p_hbond"]
    if hbond_cut > 0 and np.any(hb[types] == 1):
        donors = np.flatnonzero((hb[ti] == 1) & (hb[tj] == 2) & (bo_hi >= margin * HB_THRESHOLD))
        hi, hk, hs = _pairs(positions, cell, pbc, hbond_cut + skin, image_limit=limit)
        acc = (hb[types[hi]] == 1) & (hb[types[hk]] == 2)
        hi, hk, hs = hi[acc].astype(np.int64), hk[acc].astype(np.int64), hs[acc]
        dn, ac = _join(i[donors], hi)
        dn = donors[dn]
        sel = (j[dn] != hk[ac]) & p["hbond_mask"][tj[dn], ti[dn], types[hk[ac]]]
        dn, ac = dn[sel], ac[sel]
        h_bond, h_k, h_shift = dn, hk[ac], hs[ac].astype(np.float64)
    else:
        h_bond, h_k, h_shift = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    hcap = cap("hbond_bond", len(h_bond))
    hbond_bond, hbond_k, hbond_shift, hbond_mask = _pad(hcap, h_bond, h_k, h_shift)

    # nonbonded half list
    fi, fj, fs = _pairs(positions, cell, pbc, float(gp[12]) + skin, half=True,
                        image_limit=limit)
    fcap = cap("far_i", len(fi))
    far_i, far_j, far_shift, far_mask = _pad(fcap, fi.astype(np.int64), fj.astype(np.int64),
                                             fs.astype(np.float64))
    return ReaxLists(
        types=types, is_carbon=_carbon_flags(p, types, elements), bond_i=bond_i, bond_j=bond_j,
        bond_shift=bond_shift, bond_mask=bond_mask, bond_half=bond_half, angle_b1=angle_b1,
        angle_b2=angle_b2, angle_mask=angle_mask, torsion_ij=torsion_ij, torsion_jk=torsion_jk,
        torsion_kl=torsion_kl, torsion_mask=torsion_mask, hbond_bond=hbond_bond, hbond_k=hbond_k,
        hbond_shift=hbond_shift, hbond_mask=hbond_mask, far_i=far_i, far_j=far_j,
        far_shift=far_shift, far_mask=far_mask, bond_cut=np.array(bond_cut),
        hbond_cut=np.array(hbond_cut), thb_cut=np.array(thb), thb_cutsq=np.array(thb_sq))
