"""Compiled joins of the ReaxFF candidate lists (C through ``reaxgrad.md._native``): valence
angles, torsions and hydrogen bonds from the bond list, in one call.

Each join gives exactly the NumPy join of ``lists._joins_numpy`` (same candidates, same order):
bond entries are grouped by centre with a stable counting sort, and the loops run in the
order of the NumPy joins (first index ascending, then the partners ascending). Thresholds
arrive precomputed from Python and products are formed in NumPy's order, so the tests on
floating-point values decide the same way.

``joins(...)`` returns None when compiled code is unavailable.
"""
from __future__ import annotations

import ctypes

import numpy as np

from reaxgrad.md import _native
from reaxgrad.md.neighbors import bucket_capacity

__all__ = ["joins"]

SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* entries 0..m-1 grouped by key (0..n-1), ascending inside a group (stable counting sort);
   only entries with take[e] != 0 (take may be NULL) */
static int csr(int64_t n, int64_t m, const int64_t *key, const uint8_t *take, int64_t **start,
               int64_t **items) {
    *start = (int64_t *)calloc((size_t)n + 1, sizeof(int64_t));
    *items = (int64_t *)malloc(sizeof(int64_t) * (m > 0 ? m : 1));
    if (!*start || !*items) return -1;
    int64_t *s = *start, *it = *items;
    for (int64_t e = 0; e < m; e++) if (!take || take[e]) s[key[e] + 1]++;
    for (int64_t a = 0; a < n; a++) s[a + 1] += s[a];
    int64_t *fill = (int64_t *)malloc(sizeof(int64_t) * (n > 0 ? n : 1));
    if (!fill) return -1;
    memcpy(fill, s, sizeof(int64_t) * n);
    for (int64_t e = 0; e < m; e++) if (!take || take[e]) it[fill[key[e]]++] = e;
    free(fill);
    return 0;
}

/* H (int64): n atoms, bonds, types T, exclusions, acceptor pairs, capacities of the angle,
   torsion and hydrogen-bond outputs, then their counts (out; may exceed the capacities: call
   again). D: thresholds. tab: leg (T^2), angle (T^3), torsion centre (T^2), torsion (T^4),
   hydrogen bond (T^3) tables and the per-type hydrogen-bond codes (T). out (int64): angle
   a, b; torsion ij, jk, kl; hydrogen bond entry, acceptor pair; each its capacity long. */
int64_t rg_reax_joins(const int64_t *bi, const int64_t *bj, const int64_t *bs,
                      const int64_t *types, const double *bo, const uint8_t *half,
                      const uint8_t *tab, const int64_t *hi, const int64_t *hk, const double *D,
                      int64_t *H, int64_t *out) {
    int64_t n = H[0], nb = H[1], T = H[2], exclusions = H[3], nh = H[4];
    int64_t cap[3] = {H[5], H[6], H[7]};
    double a_t1 = D[0], a_t2 = D[1], t_t1 = D[2], t_t3 = D[3], h_t = D[4];
    const uint8_t *leg_tab = tab, *angle_tab = leg_tab + T * T,
                  *tcen_tab = angle_tab + T * T * T, *tors_tab = tcen_tab + T * T,
                  *hb_tab = tors_tab + T * T * T * T, *hb_code = hb_tab + T * T * T;
    int64_t *ang_a = out, *ang_b = ang_a + cap[0], *tor_ij = ang_b + cap[0],
            *tor_jk = tor_ij + cap[1], *tor_kl = tor_jk + cap[1], *hb_dn = tor_kl + cap[1],
            *hb_ac = hb_dn + cap[2];
    int64_t ret = 0, na = 0, nt = 0, nhb = 0;
    int64_t *all_s = NULL, *all_i = NULL, *leg_s = NULL, *leg_i = NULL, *h_s = NULL,
            *h_i = NULL;
    uint8_t *leg = (uint8_t *)malloc(nb > 0 ? nb : 1);
    if (!leg) return -1;
    for (int64_t e = 0; e < nb; e++)
        leg[e] = leg_tab[types[bj[e]] * T + types[bi[e]]];
    if (csr(n, nb, bi, leg, &leg_s, &leg_i) || csr(n, nb, bi, NULL, &all_s, &all_i)) {
        ret = -1; goto done;
    }
    /* valence angles: a ascending, then b > a of the same centre ascending */
    {
        int64_t *pos = (int64_t *)malloc(sizeof(int64_t) * (nb > 0 ? nb : 1));
        if (!pos) { ret = -1; goto done; }
        for (int64_t c = 0; c < n; c++)
            for (int64_t q = leg_s[c]; q < leg_s[c + 1]; q++) pos[leg_i[q]] = q;
        for (int64_t a = 0; a < nb; a++) {
            if (!leg[a] || !(bo[a] > a_t1)) continue;
            int64_t c = bi[a];
            int64_t tja = types[bj[a]], tia = types[c];
            for (int64_t q = pos[a] + 1; q < leg_s[c + 1]; q++) {
                int64_t b = leg_i[q];
                if (!(bo[b] > a_t1) || !(bo[a] * bo[b] > a_t2)) continue;
                if (!angle_tab[(tja * T + tia) * T + types[bj[b]]]) continue;
                if (na < cap[0]) { ang_a[na] = a; ang_b[na] = b; }
                na++;
            }
        }
        free(pos);
    }
    /* torsions: central jk ascending, ij from the centre's entries, kl from the end's */
    for (int64_t jk = 0; jk < nb; jk++) {
        int64_t j = bi[jk], k = bj[jk];
        if (!half[jk] || !(bo[jk] > t_t1) || !tcen_tab[types[j] * T + types[k]]) continue;
        for (int64_t q = all_s[j]; q < all_s[j + 1]; q++) {
            int64_t ij = all_i[q];
            if (ij == jk || !(bo[ij] > t_t1)) continue;
            double b2 = bo[ij] * bo[jk];
            for (int64_t r = all_s[k]; r < all_s[k + 1]; r++) {
                int64_t kl = all_i[r];
                int64_t l0 = bs[3 * jk] + bs[3 * kl], l1 = bs[3 * jk + 1] + bs[3 * kl + 1],
                        l2 = bs[3 * jk + 2] + bs[3 * kl + 2];
                if (bj[kl] == j && l0 == 0 && l1 == 0 && l2 == 0) continue;  /* back to j */
                if (bj[ij] == bj[kl] && bs[3 * ij] == l0 && bs[3 * ij + 1] == l1
                    && bs[3 * ij + 2] == l2) continue;                    /* i == l */
                if (!(bo[kl] > t_t1) || !(b2 * bo[kl] > t_t3)) continue;
                if (exclusions && !(j != k && bj[ij] != k && bj[kl] != j && bj[ij] != bj[kl]))
                    continue;
                if (!tors_tab[((types[bj[ij]] * T + types[j]) * T + types[k]) * T
                              + types[bj[kl]]]) continue;
                if (nt < cap[1]) { tor_ij[nt] = ij; tor_jk[nt] = jk; tor_kl[nt] = kl; }
                nt++;
            }
        }
    }
    /* hydrogen bonds: donor entries (hydrogen -> donor atom) ascending, acceptor pairs of the
       hydrogen ascending */
    if (nh > 0) {
        if (csr(n, nh, hi, NULL, &h_s, &h_i)) { ret = -1; goto done; }
        for (int64_t dn = 0; dn < nb; dn++) {
            int64_t h = bi[dn], d = bj[dn];
            if (hb_code[types[h]] != 1 || hb_code[types[d]] != 2 || !(bo[dn] >= h_t)) continue;
            for (int64_t q = h_s[h]; q < h_s[h + 1]; q++) {
                int64_t ac = h_i[q];
                if (hk[ac] == d) continue;
                if (!hb_tab[(types[d] * T + types[h]) * T + types[hk[ac]]]) continue;
                if (nhb < cap[2]) { hb_dn[nhb] = dn; hb_ac[nhb] = ac; }
                nhb++;
            }
        }
    }
done:
    H[8] = na; H[9] = nt; H[10] = nhb;
    free(leg); free(all_s); free(all_i); free(leg_s); free(leg_i); free(h_s); free(h_i);
    return ret;
}
"""

_lib = None
_loaded = False
_last: dict = {}  # capacity hints: last counts
_tables: dict = {}  # packed type tables by force-field content


def _library():
    global _lib, _loaded
    if not _native.enabled():
        return None
    if not _loaded:
        _lib = _native.load("reaxlists", SOURCE)
        _loaded = True
        if _lib is not None:
            f = _lib.rg_reax_joins
            f.restype = ctypes.c_int64
            f.argtypes = [ctypes.c_void_p] * 12
    return _lib


def available() -> bool:
    return _library() is not None


def packed_tables(angle_mask, torsion_mask, p_hbond, hbond_mask):
    """The C joins' type tables in one uint8 buffer (cached by content)."""
    arrays = [np.asarray(a) for a in (angle_mask, torsion_mask, p_hbond, hbond_mask)]
    key = b"|".join(a.tobytes() + str(a.shape).encode() for a in arrays)
    tab = _tables.get(key)
    if tab is None:
        angle_mask, torsion_mask, hb, hbond_mask = arrays
        angle_types = angle_mask.any(axis=-1)
        parts = [angle_types.any(axis=2) | angle_types.any(axis=0).T,  # legs: [end, centre]
                 angle_types, torsion_mask.any(axis=(0, 3)), torsion_mask, hbond_mask,
                 np.where(hb == 1, 1, np.where(hb == 2, 2, 0))]
        tab = np.concatenate([np.asarray(x, dtype=np.uint8).ravel() for x in parts])
        if len(_tables) > 64:
            _tables.clear()
        _tables[key] = tab
    return tab


def joins(n, bond_i, bond_j, bond_shift, types, bo, half, tables, thresholds, exclusions,
          h_i, h_k, capacities=(0, 0, 0)):
    """Angle (b1, b2), torsion (ij, jk, kl) and hydrogen-bond (entry, acceptor pair) index
    arrays, or None without compiled code. Each output is a view of a zero-filled buffer at
    least ``capacities[k]`` rows long (and on the bucket ladder), with its count:
    ((a, b), (ij, jk, kl), (dn, ac)), (na, nt, nh). ``tables``: ``packed_tables(...)``;
    thresholds: the floats the NumPy joins compare with: (angle leg, angle product, torsion
    leg, torsion product, hydrogen-bond donor)."""
    lib = _library()
    if lib is None:
        return None
    nb, nh = len(bond_i), len(h_i)
    arrays = [np.ascontiguousarray(a, dtype=np.int64) for a in
              (bond_i, bond_j, bond_shift, types, h_i, h_k)]
    bi, bj, bs, ty, hi, hk = arrays
    bo = np.ascontiguousarray(bo, dtype=np.float64)
    half = np.ascontiguousarray(half, dtype=np.bool_).view(np.uint8)
    D = np.array(thresholds, dtype=np.float64)
    H = np.zeros(11, np.int64)
    H[:5] = (n, nb, _types_of(tables), int(bool(exclusions)), nh)
    guess = (4 * nb + 64, 12 * nb + 64, 24 * nb + 64)
    caps = [bucket_capacity(max(g, _last.get(k, 0) + 64, c))
            for k, (g, c) in enumerate(zip(guess, capacities))]
    for _attempt in range(2):
        H[5:8] = caps
        out = np.zeros(2 * caps[0] + 3 * caps[1] + 2 * caps[2], np.int64)
        ret = lib.rg_reax_joins(bi.ctypes.data, bj.ctypes.data, bs.ctypes.data, ty.ctypes.data,
                                bo.ctypes.data, half.ctypes.data, tables.ctypes.data,
                                hi.ctypes.data, hk.ctypes.data, D.ctypes.data, H.ctypes.data,
                                out.ctypes.data)
        if ret != 0:
            raise MemoryError("ReaxFF list joins: out of memory")
        counts = H[8:11].tolist()
        if all(m <= c for m, c in zip(counts, caps)):
            break
        caps = [bucket_capacity(max(m, c)) for m, c in zip(counts, caps)]
    for k, m in enumerate(counts):
        _last[k] = m
    ca, ct, ch = caps
    edges = np.cumsum([0, ca, ca, ct, ct, ct, ch, ch])
    parts = [out[edges[k]:edges[k + 1]] for k in range(7)]
    return ((parts[0], parts[1]), (parts[2], parts[3], parts[4]), (parts[5], parts[6])), counts


def _types_of(tables):
    """T from the packed tables' length T^4 + 2 T^3 + 2 T^2 + T."""
    size, t = len(tables), 1
    while t**4 + 2 * t**3 + 2 * t**2 + t < size:
        t += 1
    return t
