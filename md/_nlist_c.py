"""Compiled neighbour search (C through ``md._native``): every periodic image within per-type
cutoffs, for several lists at once, each in the canonical order (i, j, shift) ascending.

One search runs at the largest cutoff of all the lists asked for; each found pair is tested
against every list's cutoff table (``cut2[k, type_i, type_j]``, squared, < 0: never) and half
flag, so a bond list, a hydrogen-bond list and a nonbonded half list come from one pass.
Partners j < i only matter to full lists, so they are looked for within the largest full-list
cutoff of i's type (the stencil is sorted by distance: a shorter cutoff takes a prefix); beyond
it a row scans only j >= i (per-bin pointers that advance with i).

Two algorithms, same output bit for bit: all pairs (i, j ascending, images enumerated
in lexicographic order inside slabs that bound the cutoff sphere; no sort needed; small
systems) and a cell list (bins that tile the periodic cell exactly, a stencil that may wrap
around a small cell several times, rows sorted by (j, shift) with one 64-bit key per pair).
Distances are computed from the wrapped positions with one expression,
``(w_j + s @ cell) - w_i``, in both, so the same pairs pass the same tests.

Threads (OpenMP; the cell list from 1,024 atoms; REAXGRAD_NUM_THREADS, else every core, read
at each call; one in a forked child): rows in fixed blocks of 64 atoms, each block's sorted
rows into a buffer of its own, then each block writes its pairs at the places that the counts
of the blocks before it give. The output is the one-thread output bit for bit, whatever the
number of threads; one thread writes each row as it comes (no buffers).

``pairs(...)`` returns None when compiled code is unavailable (callers fall back to NumPy).
"""
from __future__ import annotations

import ctypes
import math
import os
import sys

import numpy as np

from . import _native

__all__ = ["MAX_LISTS", "pairs"]

MAX_LISTS = 8  # lists per search (one bit each in the sort key)

SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define RG_BLOCK 64           /* cell list: rows per block (fixed: the same output on any
                                 number of threads) */
#define RG_PARALLEL_MIN 1024  /* fewer atoms: one thread (a few ms at most, which waking
                                 threads on a busy machine can cost) */

static void isort_u64(uint64_t *a, int64_t n) {
    for (int64_t k = 1; k < n; k++) {
        uint64_t v = a[k];
        int64_t m = k - 1;
        while (m >= 0 && a[m] > v) { a[m + 1] = a[m]; m--; }
        a[m + 1] = v;
    }
}

/* LSD radix sort of keys on the 8-bit digits from bit `low` (keys are distinct above it) */
static void radix_u64(uint64_t *a, uint64_t *tmp, int64_t m, int low, int passes) {
    if (m <= 48) { isort_u64(a, m); return; }
    int64_t cnt[256];
    uint64_t *src = a, *dst = tmp;
    for (int p = 0; p < passes; p++) {
        int sh = low + 8 * p;
        memset(cnt, 0, sizeof cnt);
        for (int64_t k = 0; k < m; k++) cnt[(src[k] >> sh) & 255u]++;
        if (cnt[(src[0] >> sh) & 255u] == m) continue;  /* one digit value: order kept */
        int64_t sum = 0;
        for (int b = 0; b < 256; b++) { int64_t c = cnt[b]; cnt[b] = sum; sum += c; }
        for (int64_t k = 0; k < m; k++) dst[cnt[(src[k] >> sh) & 255u]++] = src[k];
        uint64_t *t = src; src = dst; dst = t;
    }
    if (src != a) memcpy(a, src, sizeof(uint64_t) * m);
}

static int64_t floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

/* smallest eigenvalue of a symmetric 3x3 matrix (trigonometric formula) */
static double eig_min_sym3(const double g[9]) {
    double p1 = g[1] * g[1] + g[2] * g[2] + g[5] * g[5];
    double q = (g[0] + g[4] + g[8]) / 3.0;
    double a = g[0] - q, b = g[4] - q, c = g[8] - q;
    double p2 = a * a + b * b + c * c + 2.0 * p1;
    if (p2 <= 0.0) return q;
    double p = sqrt(p2 / 6.0);
    double B[9];
    for (int k = 0; k < 9; k++) B[k] = (g[k] - ((k % 4 == 0) ? q : 0.0)) / p;
    double det = B[0] * (B[4] * B[8] - B[5] * B[7]) - B[1] * (B[3] * B[8] - B[5] * B[6])
                 + B[2] * (B[3] * B[7] - B[4] * B[6]);
    double r = det / 2.0;
    if (r < -1.0) r = -1.0;
    if (r > 1.0) r = 1.0;
    double phi = acos(r) / 3.0;
    return q + 2.0 * p * cos(phi + 2.0943951023931957);
}

/* the lists (at most 8): cutoff tables, half flags, output buffers and counts */
typedef struct {
    int64_t nspec, T;
    const double *cut2;
    int32_t half[8], wide[8];
    int64_t cap[8], count[8];
    void *oi[8], *oj[8], *os[8];
} outs_t;

/* list k's pair number c (written when within the capacity): int32 (i, j, shift) or, when
   wide, int64 (i, j) and double shifts */
static inline void emit_at(const outs_t *o, int64_t k, int64_t c, int64_t i, int64_t j,
                           const int32_t s[3]) {
    if (c >= o->cap[k]) return;
    if (o->wide[k]) {
        ((int64_t *)o->oi[k])[c] = i;
        ((int64_t *)o->oj[k])[c] = j;
        double *d = (double *)o->os[k] + 3 * c;
        d[0] = (double)s[0]; d[1] = (double)s[1]; d[2] = (double)s[2];
    } else {
        ((int32_t *)o->oi[k])[c] = (int32_t)i;
        ((int32_t *)o->oj[k])[c] = (int32_t)j;
        int32_t *d = (int32_t *)o->os[k] + 3 * c;
        d[0] = s[0]; d[1] = s[1]; d[2] = s[2];
    }
}

/* the next pair of list k (counted beyond the capacity too) */
static inline void emit(outs_t *o, int64_t k, int64_t i, int64_t j, const int32_t s[3]) {
    emit_at(o, k, o->count[k]++, i, j, s);
}

/* bit k set when list k takes the pair (i, j, s) at squared distance r2 (s: the shift between
   the wrapped positions; for i == j it is the shift itself) */
static inline unsigned lists_of(const outs_t *o, int64_t ti, int64_t tj, int64_t i, int64_t j,
                                const int64_t s[3], double r2) {
    int rep = (i < j) || (i == j && (s[0] > 0 || (s[0] == 0 && (s[1] > 0 ||
                                                                (s[1] == 0 && s[2] > 0)))));
    unsigned bits = 0;
    const double *c = o->cut2 + ti * o->T + tj;
    int64_t TT = o->T * o->T;
    for (int64_t k = 0; k < o->nspec; k++)
        if (c[k * TT] >= r2 && (rep || !o->half[k])) bits |= 1u << k;
    return bits;
}

typedef struct { double lower; int64_t index; } offset_t;

static int by_lower(const void *x, const void *y) {
    const offset_t *a = (const offset_t *)x, *b = (const offset_t *)y;
    if (a->lower < b->lower) return -1;
    if (a->lower > b->lower) return 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* cell list, read only while rows are searched */
typedef struct {
    const outs_t *o;
    const double *w, *ws;
    const int32_t *types, *tsorted, *sdecode;
    const int64_t *coord, *start, *order, *offs, *ns_full, *img;
    const int64_t *tb[3], *ts[3], *tc[3];
    const double *tv[3];
    int64_t ns, span_o[3], reach[3];
    double rc2;
    int sbits, passes;
} grid_t;

/* one thread's scratch: candidates of one bin, the radix sort's buffer, per bin its first
   atom with index >= row (the thread's rows ascend: pointers only advance), a size hint for
   the next block's keys */
typedef struct {
    int64_t *hit; double *hr2; uint64_t *tmp; int64_t *first;
    const int64_t *start;
    int64_t nbt, row, tcap, hint;
} scratch_t;

static int scratch_init(scratch_t *sc, int64_t maxbin, const int64_t *start, int64_t nbt) {
    sc->hit = (int64_t *)malloc(sizeof(int64_t) * maxbin);
    sc->hr2 = (double *)malloc(sizeof(double) * maxbin);
    sc->tmp = (uint64_t *)malloc(sizeof(uint64_t) * 1024);
    sc->first = (int64_t *)malloc(sizeof(int64_t) * (nbt > 0 ? nbt : 1));
    sc->start = start;
    sc->nbt = nbt;
    sc->row = 0;
    sc->tcap = 1024;
    sc->hint = 0;
    if (!sc->hit || !sc->hr2 || !sc->tmp || !sc->first) return -1;
    memcpy(sc->first, start, sizeof(int64_t) * nbt);
    return 0;
}

static void scratch_free(scratch_t *sc) {
    free(sc->hit); free(sc->hr2); free(sc->tmp); free(sc->first);
}

/* row i's pairs from its m sorted keys: list k's from place c[k] on (c advances) */
static void emit_row(const outs_t *o, const grid_t *g, int64_t i, const uint64_t *key,
                     int64_t m, int64_t *c) {
    const int js = g->sbits + 8;
    const uint64_t smask = ((uint64_t)1 << g->sbits) - 1;
    const int64_t *ii = g->img + 3 * i, nspec = o->nspec;
    for (int64_t q = 0; q < m; q++) {
        uint64_t x = key[q];
        int64_t j = (int64_t)(x >> js);
        unsigned bits = (unsigned)(x & 255u);
        const int32_t *sd = g->sdecode + 3 * (int64_t)((x >> 8) & smask);
        const int64_t *ij = g->img + 3 * j;
        int32_t st[3] = {(int32_t)(sd[0] + ii[0] - ij[0]), (int32_t)(sd[1] + ii[1] - ij[1]),
                         (int32_t)(sd[2] + ii[2] - ij[2])};
        for (int64_t k = 0; k < nspec; k++)
            if (bits >> k & 1u) emit_at(o, k, c[k]++, i, j, st);
    }
}

/* rows i0 <= i < i1, each row's keys ((j, shift code, list bits) in one 64-bit word) sorted.
   direct: each row written out at once, list k's from place direct[k] on (one buffer for
   every row). Else the rows' keys stay, one after another, in *keys (grown as needed), each
   row's length in rowlen[i], and the pairs of each list counted in cnt.
   Returns 0, or -1 (out of memory). */
static int cell_rows(const grid_t *g, int64_t i0, int64_t i1, uint64_t **keys, int64_t *kcap,
                     int64_t *rowlen, int64_t *cnt, int64_t *direct, scratch_t *sc) {
    /* locals: stores through keys and hit could alias the structs' integer fields */
    const outs_t ol = *g->o, *o = &ol;
    const double *w = g->w, *ws = g->ws, *tv0 = g->tv[0], *tv1 = g->tv[1], *tv2 = g->tv[2];
    const int32_t *types = g->types, *tsorted = g->tsorted;
    const int64_t *start = g->start, *order = g->order, *offs = g->offs, *coord = g->coord;
    const int64_t *tb0 = g->tb[0], *tb1 = g->tb[1], *tb2 = g->tb[2];
    const int64_t *ts0 = g->ts[0], *ts1 = g->ts[1], *ts2 = g->ts[2];
    const int64_t *tc0 = g->tc[0], *tc1 = g->tc[1], *tc2 = g->tc[2];
    const int64_t ns = g->ns, so0 = g->span_o[0], so1 = g->span_o[1], so2 = g->span_o[2];
    const int64_t r0 = g->reach[0], r1 = g->reach[1], r2_ = g->reach[2];
    const double rc2 = g->rc2;
    const int jshift = g->sbits + 8;
    int64_t *hit = sc->hit, *first = sc->first;
    double *hr2 = sc->hr2;
    uint64_t *kb = *keys;
    if (i0 < sc->row) memcpy(first, sc->start, sizeof(int64_t) * sc->nbt);  /* rows went back */
    sc->row = i1;
    int64_t len = 0, cap = *kcap, hist[256];
    memset(hist, 0, sizeof hist);
    int ret = 0;
    for (int64_t i = i0; i < i1; i++) {
        const double *wi = w + 3 * i;
        int64_t ti = types[i], m0 = len, nsf = g->ns_full[ti];
        int64_t e0 = coord[3 * i] * so0 + r0;
        int64_t e1 = coord[3 * i + 1] * so1 + r1;
        int64_t e2 = coord[3 * i + 2] * so2 + r2_;
        for (int64_t q = 0; q < ns; q++) {
            int64_t x0 = e0 + offs[3 * q], x1 = e1 + offs[3 * q + 1], x2 = e2 + offs[3 * q + 2];
            int64_t c0 = tb0[x0], c1 = tb1[x1], c2 = tb2[x2];
            if (c0 < 0 || c1 < 0 || c2 < 0) continue;
            int64_t b = c0 + c1 + c2;
            int64_t b0 = start[b], b1 = start[b + 1];
            if (q >= nsf) {  /* beyond every full list of i's type: only j >= i */
                int64_t l = first[b];
                while (l < b1 && order[l] < i) l++;
                first[b] = l;
                b0 = l;
            }
            if (b0 == b1) continue;
            int64_t s[3] = {ts0[x0], ts1[x1], ts2[x2]};
            const double *v0 = tv0 + 3 * x0, *v1 = tv1 + 3 * x1, *v2 = tv2 + 3 * x2;
            double sx = (v0[0] + v1[0]) + v2[0], sy = (v0[1] + v1[1]) + v2[1],
                   sz = (v0[2] + v1[2]) + v2[2];
            int zero = s[0] == 0 && s[1] == 0 && s[2] == 0;
            uint64_t code = (uint64_t)(tc0[x0] + tc1[x1] + tc2[x2]) << 8;
            int64_t nh = 0;
            for (int64_t idx = b0; idx < b1; idx++) {  /* branch-free distance test */
                const double *wj = ws + 3 * idx;
                double dx = (wj[0] + sx) - wi[0];
                double dy = (wj[1] + sy) - wi[1];
                double dz = (wj[2] + sz) - wi[2];
                double r2 = dx * dx + dy * dy + dz * dz;
                hit[nh] = idx;
                hr2[nh] = r2;
                nh += (r2 <= rc2);
            }
            for (int64_t u = 0; u < nh; u++) {
                int64_t idx = hit[u], j = order[idx];
                if (zero && j == i) continue;
                unsigned bits = lists_of(o, ti, tsorted[idx], i, j, s, hr2[u]);
                if (!bits) continue;
                if (len == cap) {
                    int64_t nc = cap < 1024 ? 1024 : 2 * cap;
                    uint64_t *nk = (uint64_t *)realloc(kb, sizeof(uint64_t) * nc);
                    if (!nk) { ret = -1; goto out; }
                    kb = nk;
                    cap = nc;
                }
                kb[len++] = ((uint64_t)j << jshift) | code | bits;
                hist[bits]++;
            }
        }
        int64_t m = len - m0;
        if (m > sc->tcap) {
            free(sc->tmp);
            sc->tcap = m + m / 2;
            sc->tmp = (uint64_t *)malloc(sizeof(uint64_t) * sc->tcap);
            if (!sc->tmp) { sc->tcap = 0; ret = -1; goto out; }
        }
        radix_u64(kb + m0, sc->tmp, m, 8, g->passes);
        if (direct) {
            emit_row(g->o, g, i, kb, m, direct);
            len = 0;
        } else {
            rowlen[i] = m;
        }
    }
    if (!direct)
        for (int b = 1; b < 256; b++)
            if (hist[b])
                for (int64_t k = 0; k < o->nspec; k++) cnt[k] += (b >> k & 1) ? hist[b] : 0;
out:
    *keys = kb;
    *kcap = cap;
    return ret;
}

/* Every (i, j, image) within the lists' cutoffs. Pairs with j < i (only full lists take
   them) are searched within the largest full-list cutoff of i's type only.
   mode: 0 automatic, 1 all pairs, 2 cell list. nthreads: the cell list's OpenMP threads.
   Returns 0, or -1 (out of memory), -2 (singular cell), -3 (cell list: shifts beyond the sort
   key's range; use another path). */
int64_t rg_pairs(const double *pos, const int32_t *types, const double *cut2,
                 const double *dpar, int64_t *H, int64_t nthreads) {
    /* dpar: cell (9, rows), bins per cutoff. H (int64): n, T, number of lists, mode, pbc (3),
       used mode (out); then per list: half, wide, capacity, count (out), and the addresses of
       its i, j, shift buffers */
    int64_t n = H[0], T = H[1], nspec = H[2], mode = H[3], *used_mode = H + 7;
    int32_t pbc[3] = {(int32_t)H[4], (int32_t)H[5], (int32_t)H[6]};
    const double *cell = dpar;
    double bins_per_cutoff = dpar[9];
    outs_t o;
    memset(&o, 0, sizeof o);
    o.nspec = nspec;
    o.T = T;
    o.cut2 = cut2;
    for (int64_t k = 0; k < nspec; k++) {
        int64_t *L = H + 8 + 7 * k;
        o.half[k] = (int32_t)L[0];
        o.wide[k] = (int32_t)L[1];
        o.cap[k] = L[2];
        o.oi[k] = (void *)(uintptr_t)L[4];
        o.oj[k] = (void *)(uintptr_t)L[5];
        o.os[k] = (void *)(uintptr_t)L[6];
    }
    const int32_t *half = o.half;
    int64_t *count = o.count;
    *used_mode = 0;
    int64_t ret = 0;
    double *w = NULL, *f = NULL, *rcf2 = NULL, *ws = NULL, *tv[3] = {0, 0, 0};
    int64_t *img = NULL, *coord = NULL, *start = NULL, *order = NULL, *bin_of = NULL,
            *offs = NULL, *ns_full = NULL, *rowlen = NULL, *bcnt = NULL, *tb[3] = {0, 0, 0},
            *ts[3] = {0, 0, 0}, *tc[3] = {0, 0, 0};
    int32_t *tsorted = NULL, *sdecode = NULL;
    uint64_t **bkeys = NULL;
    int64_t nblocks = 0;
    offset_t *stencil = NULL;
    double rc2 = 0.0;
    for (int64_t k = 0; k < nspec * T * T; k++) if (cut2[k] > rc2) rc2 = cut2[k];
    if (n == 0 || !(rc2 > 0.0)) goto done;
    double rc = sqrt(rc2);


    /* per type: the largest squared cutoff of a full list (-1: none) */
    rcf2 = (double *)malloc(sizeof(double) * T);
    if (!rcf2) { ret = -1; goto done; }
    for (int64_t t = 0; t < T; t++) {
        rcf2[t] = -1.0;
        for (int64_t k = 0; k < nspec; k++) {
            if (half[k]) continue;
            for (int64_t u = 0; u < T; u++)
                if (cut2[(k * T + t) * T + u] > rcf2[t]) rcf2[t] = cut2[(k * T + t) * T + u];
        }
    }

    const double *A = cell;
    double det = A[0] * (A[4] * A[8] - A[5] * A[7]) - A[1] * (A[3] * A[8] - A[5] * A[6])
                 + A[2] * (A[3] * A[7] - A[4] * A[6]);
    if (!(fabs(det) > 0.0)) { ret = -2; goto done; }
    double inv[9];  /* f = x @ inv */
    inv[0] = (A[4] * A[8] - A[5] * A[7]) / det;
    inv[1] = (A[2] * A[7] - A[1] * A[8]) / det;
    inv[2] = (A[1] * A[5] - A[2] * A[4]) / det;
    inv[3] = (A[5] * A[6] - A[3] * A[8]) / det;
    inv[4] = (A[0] * A[8] - A[2] * A[6]) / det;
    inv[5] = (A[2] * A[3] - A[0] * A[5]) / det;
    inv[6] = (A[3] * A[7] - A[4] * A[6]) / det;
    inv[7] = (A[1] * A[6] - A[0] * A[7]) / det;
    inv[8] = (A[0] * A[4] - A[1] * A[3]) / det;
    double h[3];  /* distances between opposite faces */
    for (int a = 0; a < 3; a++) {
        const double *u = A + 3 * ((a + 1) % 3), *v = A + 3 * ((a + 2) % 3);
        double cx = u[1] * v[2] - u[2] * v[1], cy = u[2] * v[0] - u[0] * v[2],
               cz = u[0] * v[1] - u[1] * v[0];
        h[a] = fabs(det) / sqrt(cx * cx + cy * cy + cz * cz);
    }

    /* wrap: w = x - img @ cell, f its fractional coordinates */
    w = (double *)malloc(sizeof(double) * 3 * n);
    f = (double *)malloc(sizeof(double) * 3 * n);
    img = (int64_t *)malloc(sizeof(int64_t) * 3 * n);
    if (!w || !f || !img) { ret = -1; goto done; }
    for (int64_t i = 0; i < n; i++) {
        const double *x = pos + 3 * i;
        for (int a = 0; a < 3; a++) {
            double fa = x[0] * inv[a] + x[1] * inv[3 + a] + x[2] * inv[6 + a];
            int64_t m = 0;
            if (pbc[a]) { double fl = floor(fa); m = (int64_t)fl; fa -= fl; }
            f[3 * i + a] = fa;
            img[3 * i + a] = m;
        }
        for (int c = 0; c < 3; c++)
            w[3 * i + c] = x[c] - ((double)img[3 * i] * A[c] + (double)img[3 * i + 1] * A[3 + c]
                                   + (double)img[3 * i + 2] * A[6 + c]);
    }
    double lo[3] = {0, 0, 0}, hi[3] = {1, 1, 1};
    for (int a = 0; a < 3; a++) {
        if (pbc[a]) continue;
        lo[a] = f[a]; hi[a] = f[a];
        for (int64_t i = 1; i < n; i++) {
            if (f[3 * i + a] < lo[a]) lo[a] = f[3 * i + a];
            if (f[3 * i + a] > hi[a]) hi[a] = f[3 * i + a];
        }
    }

    /* bins: fractional parallelepipeds tiling the periodic cell (free axes: the atoms' span) */
    double span[3], width[3];
    int64_t nb[3];
    for (int a = 0; a < 3; a++) {
        span[a] = 1.0;
        if (!pbc[a]) {
            span[a] = hi[a] - lo[a] + 1e-9;
            if (span[a] < rc / h[a]) span[a] = rc / h[a];
        }
    }
    double thickness = rc / bins_per_cutoff;
    for (;;) {
        double total = 1.0;
        for (int a = 0; a < 3; a++) {
            double b = floor(span[a] * h[a] / thickness);
            if (b < 1.0) b = 1.0;
            total *= b;
            nb[a] = (b > 4e9) ? (int64_t)4e9 : (int64_t)b;
        }
        if (total <= 8.0 * (double)n + 1000.0) break;
        thickness *= 1.26;
    }
    int64_t reach[3], smin_a[3], srange[3];
    for (int a = 0; a < 3; a++) {
        width[a] = span[a] / (double)nb[a];
        double r = ceil(rc / (width[a] * h[a]) - 1e-12);
        reach[a] = r < 1.0 ? 1 : (int64_t)r;
        if (!pbc[a] && reach[a] > nb[a] - 1) reach[a] = nb[a] > 1 ? nb[a] - 1 : 1;
        smin_a[a] = pbc[a] ? floordiv(-reach[a], nb[a]) : 0;
        srange[a] = pbc[a] ? floordiv(nb[a] - 1 + reach[a], nb[a]) - smin_a[a] + 1 : 1;
    }

    /* all pairs or cell list: estimated distance evaluations */
    double images = 1.0;
    for (int a = 0; a < 3; a++) if (pbc[a]) images *= 2.0 * rc / h[a] + 2.0;
    double nbins = (double)nb[0] * (double)nb[1] * (double)nb[2];
    double boxes = (double)(2 * reach[0] + 1) * (double)(2 * reach[1] + 1)
                   * (double)(2 * reach[2] + 1);
    double dn = (double)n;
    double per_bin = dn / nbins < 1.0 ? 1.0 : dn / nbins;
    double work_all = dn * dn * images;
    double work_cells = dn * boxes * (0.6 * per_bin + 0.4) + 4.0 * nbins + 2000.0;
    int all_pairs = (mode == 1) || (mode == 0 && work_all <= work_cells);
    int64_t S = srange[0] * srange[1] * srange[2];
    int sbits = 0, jbits = 0;
    while (((int64_t)1 << sbits) < S) sbits++;
    while (((int64_t)1 << jbits) < n) jbits++;
    if (!all_pairs && (S > ((int64_t)1 << 24) || sbits + jbits > 56)) { ret = -3; goto done; }
    *used_mode = all_pairs ? 1 : 2;
    int32_t st[3];

    if (all_pairs) {
        /* i, then j, then images in lexicographic order: sorted as it comes */
        for (int64_t i = 0; i < n; i++) {
            const double *wi = w + 3 * i, *fi = f + 3 * i;
            int64_t ti = types[i];
            double rf = rcf2[ti] > 0.0 ? sqrt(rcf2[ti]) : -1.0;
            for (int64_t j = rf > 0.0 ? 0 : i; j < n; j++) {
                const double *wj = w + 3 * j, *fj = f + 3 * j;
                double r = j < i ? rf : rc, lim2 = j < i ? rcf2[ti] : rc2;
                int64_t slo[3], shi[3];
                for (int a = 0; a < 3; a++) {  /* |(df + s)_a| h_a <= r */
                    if (pbc[a]) {
                        double df = fj[a] - fi[a], ra = r / h[a];
                        slo[a] = (int64_t)ceil(-ra - df - 1e-9);
                        shi[a] = (int64_t)floor(ra - df + 1e-9);
                    } else { slo[a] = 0; shi[a] = 0; }
                }
                int64_t s[3];
                for (s[0] = slo[0]; s[0] <= shi[0]; s[0]++)
                for (s[1] = slo[1]; s[1] <= shi[1]; s[1]++)
                for (s[2] = slo[2]; s[2] <= shi[2]; s[2]++) {
                    if (i == j && s[0] == 0 && s[1] == 0 && s[2] == 0) continue;
                    double d[3];
                    for (int c = 0; c < 3; c++) {
                        double sv = (double)s[0] * A[c] + (double)s[1] * A[3 + c]
                                    + (double)s[2] * A[6 + c];
                        d[c] = (wj[c] + sv) - wi[c];
                    }
                    double r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                    if (r2 > lim2) continue;
                    unsigned bits = lists_of(&o, ti, types[j], i, j, s, r2);
                    if (!bits) continue;
                    for (int a = 0; a < 3; a++)
                        st[a] = (int32_t)(s[a] + img[3 * i + a] - img[3 * j + a]);
                    for (int64_t k = 0; k < nspec; k++)
                        if (bits >> k & 1u) emit(&o, k, i, j, st);
                }
            }
        }
        goto done;
    }

    /* cell list: atoms sorted by bin (ascending index inside a bin) */
    int64_t nbt = nb[0] * nb[1] * nb[2];
    coord = (int64_t *)malloc(sizeof(int64_t) * 3 * n);
    start = (int64_t *)calloc((size_t)nbt + 1, sizeof(int64_t));
    order = (int64_t *)malloc(sizeof(int64_t) * n);
    bin_of = (int64_t *)malloc(sizeof(int64_t) * n);
    ws = (double *)malloc(sizeof(double) * 3 * n);
    tsorted = (int32_t *)malloc(sizeof(int32_t) * n);
    if (!coord || !start || !order || !bin_of || !ws || !tsorted) { ret = -1; goto done; }
    for (int64_t i = 0; i < n; i++) {
        for (int a = 0; a < 3; a++) {
            double c = floor((f[3 * i + a] - lo[a]) / width[a]);
            coord[3 * i + a] = c < 0.0 ? 0 : (c > (double)(nb[a] - 1) ? nb[a] - 1 : (int64_t)c);
        }
        bin_of[i] = coord[3 * i] + nb[0] * (coord[3 * i + 1] + nb[1] * coord[3 * i + 2]);
        start[bin_of[i] + 1]++;
    }
    for (int64_t b = 0; b < nbt; b++) start[b + 1] += start[b];
    {
        int64_t *fill = (int64_t *)malloc(sizeof(int64_t) * (nbt > 0 ? nbt : 1));
        if (!fill) { ret = -1; goto done; }
        memcpy(fill, start, sizeof(int64_t) * nbt);
        for (int64_t i = 0; i < n; i++) order[fill[bin_of[i]]++] = i;
        free(fill);
    }
    int64_t maxbin = 1;
    for (int64_t b = 0; b < nbt; b++)
        if (start[b + 1] - start[b] > maxbin) maxbin = start[b + 1] - start[b];
    for (int64_t idx = 0; idx < n; idx++) {
        int64_t j = order[idx];
        for (int c = 0; c < 3; c++) ws[3 * idx + c] = w[3 * j + c];
        tsorted[idx] = types[j];
    }

    /* stencil: bin offsets whose bins can hold points within rc of a point in bin 0, by
       increasing lower bound of that distance (a smaller cutoff takes a prefix) */
    double G[9];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            G[3 * r + c] = A[3 * r] * A[3 * c] + A[3 * r + 1] * A[3 * c + 1]
                           + A[3 * r + 2] * A[3 * c + 2];
    double gmax = fabs(G[0]);
    for (int k = 1; k < 9; k++) if (fabs(G[k]) > gmax) gmax = fabs(G[k]);
    int orthogonal = fabs(G[1]) <= 1e-12 * gmax && fabs(G[2]) <= 1e-12 * gmax
                     && fabs(G[5]) <= 1e-12 * gmax;
    double em = eig_min_sym3(G);
    double sigma_min = em > 0.0 ? sqrt(em) * (1.0 - 1e-9) : 0.0;
    int64_t nbox = (2 * reach[0] + 1) * (2 * reach[1] + 1) * (2 * reach[2] + 1);
    stencil = (offset_t *)malloc(sizeof(offset_t) * nbox);
    offs = (int64_t *)malloc(sizeof(int64_t) * 3 * nbox);
    ns_full = (int64_t *)malloc(sizeof(int64_t) * T);
    if (!stencil || !offs || !ns_full) { ret = -1; goto done; }
    int64_t ns = 0;
    for (int64_t q = 0; q < nbox; q++) {
        int64_t ov[3] = {q / ((2 * reach[1] + 1) * (2 * reach[2] + 1)) - reach[0],
                         (q / (2 * reach[2] + 1)) % (2 * reach[1] + 1) - reach[1],
                         q % (2 * reach[2] + 1) - reach[2]};
        double slab = 0.0, ss = 0.0, gg = 0.0;
        for (int a = 0; a < 3; a++) {
            int64_t g = (ov[a] < 0 ? -ov[a] : ov[a]) - 1;
            double gap = g > 0 ? (double)g * width[a] : 0.0;
            double t = gap * h[a];
            if (t > slab) slab = t;
            ss += t * t;
            gg += gap * gap;
        }
        double lower = orthogonal ? sqrt(ss) : fmax(slab, sigma_min * sqrt(gg));
        if (lower <= rc * (1.0 + 1e-12)) { stencil[ns].lower = lower; stencil[ns].index = q; ns++; }
    }
    qsort(stencil, (size_t)ns, sizeof(offset_t), by_lower);
    for (int64_t q = 0; q < ns; q++) {
        int64_t x = stencil[q].index;
        offs[3 * q] = x / ((2 * reach[1] + 1) * (2 * reach[2] + 1)) - reach[0];
        offs[3 * q + 1] = (x / (2 * reach[2] + 1)) % (2 * reach[1] + 1) - reach[1];
        offs[3 * q + 2] = x % (2 * reach[2] + 1) - reach[2];
    }
    for (int64_t t = 0; t < T; t++) {
        int64_t c = 0;
        if (rcf2[t] > 0.0) {
            double rf = sqrt(rcf2[t]) * (1.0 + 1e-12);
            while (c < ns && stencil[c].lower <= rf) c++;
        }
        ns_full[t] = c;
    }

    /* per axis, per (bin coordinate, offset): neighbour coordinate * stride (-1: none), shift,
       its place in the key's shift code, and its Cartesian vector s * A[a] */
    int64_t span_o[3];
    for (int a = 0; a < 3; a++) {
        int64_t stride = a == 0 ? 1 : (a == 1 ? nb[0] : nb[0] * nb[1]);
        int64_t mult = a == 0 ? srange[1] * srange[2] : (a == 1 ? srange[2] : 1);
        span_o[a] = 2 * reach[a] + 1;
        int64_t size = nb[a] * span_o[a];
        tb[a] = (int64_t *)malloc(sizeof(int64_t) * size);
        ts[a] = (int64_t *)malloc(sizeof(int64_t) * size);
        tc[a] = (int64_t *)malloc(sizeof(int64_t) * size);
        tv[a] = (double *)malloc(sizeof(double) * 3 * size);
        if (!tb[a] || !ts[a] || !tc[a] || !tv[a]) { ret = -1; goto done; }
        for (int64_t c = 0; c < nb[a]; c++)
            for (int64_t o2 = -reach[a]; o2 <= reach[a]; o2++) {
                int64_t e = c * span_o[a] + o2 + reach[a], cc = c + o2, sa = 0;
                if (pbc[a]) { sa = floordiv(cc, nb[a]); cc -= sa * nb[a]; }
                tb[a][e] = (cc < 0 || cc >= nb[a]) ? -1 : cc * stride;
                ts[a][e] = sa;
                tc[a][e] = (sa - smin_a[a]) * mult;
                for (int k = 0; k < 3; k++) tv[a][3 * e + k] = (double)sa * A[3 * a + k];
            }
    }
    sdecode = (int32_t *)malloc(sizeof(int32_t) * 3 * S);
    if (!sdecode) { ret = -1; goto done; }
    for (int64_t c = 0; c < S; c++) {
        sdecode[3 * c] = (int32_t)(c / (srange[1] * srange[2]) + smin_a[0]);
        sdecode[3 * c + 1] = (int32_t)((c / srange[2]) % srange[1] + smin_a[1]);
        sdecode[3 * c + 2] = (int32_t)(c % srange[2] + smin_a[2]);
    }

    grid_t g = {&o, w, ws, types, tsorted, sdecode, coord, start, order, offs, ns_full, img,
                {tb[0], tb[1], tb[2]}, {ts[0], ts[1], ts[2]}, {tc[0], tc[1], tc[2]},
                {tv[0], tv[1], tv[2]}, ns, {span_o[0], span_o[1], span_o[2]},
                {reach[0], reach[1], reach[2]}, rc2, sbits, (sbits + jbits + 7) / 8};
    nblocks = (n + RG_BLOCK - 1) / RG_BLOCK;
#ifndef _OPENMP
    nthreads = 1;  /* built without OpenMP */
#endif
    if (nthreads <= 1 || n < RG_PARALLEL_MIN || nblocks < 2) {
        /* one thread: rows written out as they come */
        scratch_t sc;
        uint64_t *kb = NULL;
        int64_t kcap = 0;
        int err = scratch_init(&sc, maxbin, start, nbt)
                  || cell_rows(&g, 0, n, &kb, &kcap, NULL, NULL, count, &sc);
        scratch_free(&sc);
        free(kb);
        nblocks = 0;
        if (err) ret = -1;
        goto done;
    }
    /* threads: rows in blocks of RG_BLOCK atoms (fixed: the output does not depend on the
       number of threads), each block's sorted keys in a buffer of its own; then every list's
       place for each block (sums of the counts of the blocks before it); then each block
       writes its pairs there */
    bkeys = (uint64_t **)calloc((size_t)nblocks, sizeof(uint64_t *));
    bcnt = (int64_t *)calloc((size_t)nblocks * 8, sizeof(int64_t));
    rowlen = (int64_t *)malloc(sizeof(int64_t) * n);
    if (!bkeys || !bcnt || !rowlen) { nblocks = 0; ret = -1; goto done; }
    int nt = (int)(nthreads < nblocks ? nthreads : nblocks), failed = 0;
    (void)nt;
    #pragma omp parallel num_threads(nt)
    {
        scratch_t sc;
        int ok = !scratch_init(&sc, maxbin, start, nbt);
        #pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < nblocks; blk++) {
            if (!ok) continue;
            int64_t i0 = blk * RG_BLOCK, i1 = i0 + RG_BLOCK < n ? i0 + RG_BLOCK : n;
            int64_t kcap = sc.hint + sc.hint / 4 + 1024;  /* the last block's size and more */
            bkeys[blk] = (uint64_t *)malloc(sizeof(uint64_t) * kcap);
            if (!bkeys[blk]
                || cell_rows(&g, i0, i1, &bkeys[blk], &kcap, rowlen, bcnt + 8 * blk, NULL, &sc))
                ok = 0;
            else {
                int64_t len = 0;
                for (int64_t i = i0; i < i1; i++) len += rowlen[i];
                sc.hint = len;
            }
        }
        scratch_free(&sc);
        if (!ok) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp barrier
        int bad;
        #pragma omp atomic read
        bad = failed;
        if (!bad) {
            #pragma omp single
            for (int64_t blk = 0; blk < nblocks; blk++)  /* counts -> the block's places */
                for (int64_t k = 0; k < nspec; k++) {
                    int64_t c = bcnt[8 * blk + k];
                    bcnt[8 * blk + k] = count[k];
                    count[k] += c;
                }
            #pragma omp for schedule(dynamic, 1) nowait
            for (int64_t blk = 0; blk < nblocks; blk++) {
                int64_t i0 = blk * RG_BLOCK, i1 = i0 + RG_BLOCK < n ? i0 + RG_BLOCK : n;
                const uint64_t *key = bkeys[blk];
                for (int64_t i = i0; i < i1; i++) {
                    emit_row(&o, &g, i, key, rowlen[i], bcnt + 8 * blk);
                    key += rowlen[i];
                }
            }
        }
    }
    if (failed) ret = -1;
done:
    for (int a = 0; a < 3; a++) { free(tb[a]); free(ts[a]); free(tc[a]); free(tv[a]); }
    if (bkeys) for (int64_t b = 0; b < nblocks; b++) free(bkeys[b]);
    free(w); free(f); free(rcf2); free(ws); free(img); free(coord); free(start);
    free(order); free(bin_of); free(offs); free(ns_full); free(tsorted);
    free(sdecode); free(bkeys); free(bcnt); free(rowlen); free(stencil);
    for (int64_t k = 0; k < nspec; k++) H[8 + 7 * k + 3] = count[k];
    return ret;
}
"""

_lib = None
_loaded = False


def _library():
    global _lib, _loaded
    if not _native.enabled():
        return None
    if not _loaded:
        _lib = _native.load("nlist", SOURCE, openmp=True)
        _loaded = True
        if _lib is not None:
            f = _lib.rg_pairs
            f.restype = ctypes.c_int64
            f.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_int64]
    return _lib


_in_forked_child = False


def _after_fork_in_child():
    global _in_forked_child
    _in_forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _threads() -> int:
    """Threads for the cell list, read at every call: REAXGRAD_NUM_THREADS when > 0, else
    every core; one in a forked child (OpenMP pools do not survive fork), as the other
    compiled kernels (``forcefields.reaxff._qeq_c``): a child of a process that had loaded
    this module or the kernels' runtime (``core.fusion.runtime_c``, not imported here: only a
    copy loaded before the fork knows)."""
    runtime = sys.modules.get("reaxgrad.core.fusion.runtime_c")
    if _in_forked_child or (runtime is not None and runtime._in_forked_child):
        return 1
    try:
        n = int(os.environ.get("REAXGRAD_NUM_THREADS", "0") or 0)
    except ValueError:
        n = 0
    return n if n > 0 else (os.cpu_count() or 1)


def available() -> bool:
    return _library() is not None


_MODES = {"auto": 0, "all_pairs": 1, "cells": 2}
_last_count: dict = {}  # capacity hints: (n, number of lists, list) -> last count
last_mode = None  # the algorithm of the latest search: "all_pairs" or "cells" (tests)


def _expected(n, volume, cutoff):
    """Rough number of (full-list) pairs within ``cutoff``; volume 0: free boundaries."""
    sphere = 4.1888 * cutoff**3
    if volume > 0:
        return n * n * sphere / volume
    return n * min(n - 1, 0.15 * sphere + 8.0)  # ~ condensed-matter density


def pairs(positions, full_cell, pbc, cut2, half, types=None, *, bins_per_cutoff=3.0,
          mode="auto", wide=None, capacity=None):
    """Search for ``len(half)`` lists at once.

    positions (n, 3); full_cell: a full-rank (3, 3) cell (``space.complete_cell``); pbc: 3
    bools; cut2: (k, T, T) squared cutoffs per (type_i, type_j), negative where the list takes
    no pair; half: k bools (half list: the representative of each mirror pair, as
    ``neighbors.half_pair_mask``); types: (n,) ints in [0, T) (default all 0).
    wide: k bools: list k as int64 (i, j) and float64 shifts in zero-filled buffers of
    ``capacity[k](rows needed)`` rows (callables), returned whole with the number of pairs:
    (i, j, shifts, n); else int32 arrays of the pairs: (i, j, shifts).
    Each list is ordered by (i, j, shift). None when compiled code is unavailable or the cell
    is outside its range.
    """
    global last_mode
    lib = _library()
    if lib is None:
        return None
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    n = len(positions)
    cut2 = np.ascontiguousarray(cut2, dtype=np.float64)
    k_lists, T = cut2.shape[0], cut2.shape[1]
    if k_lists > MAX_LISTS:
        raise ValueError(f"at most {MAX_LISTS} lists per search")
    wide = [False] * k_lists if wide is None else [bool(w) for w in wide]
    types = (np.zeros(n, np.int32) if types is None
             else np.ascontiguousarray(types, dtype=np.int32))
    dpar = np.empty(10)
    dpar[:9] = np.reshape(full_cell, 9)
    dpar[9] = bins_per_cutoff
    pbc = [bool(p) for p in pbc]
    H = np.zeros(8 + 7 * k_lists, np.int64)
    H[:7] = (n, T, k_lists, _MODES[mode], *pbc)
    tops = cut2.reshape(k_lists, -1).max(axis=1).tolist()
    volume = abs(float(np.linalg.det(dpar[:9].reshape(3, 3)))) if all(pbc) else 0.0
    caps = []
    for k in range(k_lists):
        guess = 0.0
        if tops[k] > 0:
            guess = _expected(n, volume, math.sqrt(tops[k])) * (0.5 if half[k] else 1.0)
        c = max(int(guess * 1.3) + 64, _last_count.get((n, k_lists, k), 0) + 16)
        caps.append(capacity[k](c) if wide[k] else c)
    threads = _threads()
    for _attempt in range(2):
        bufs = []
        compact = np.empty(5 * sum(c for c, w in zip(caps, wide) if not w), np.int32)
        base, offset = compact.ctypes.data if len(compact) else 0, 0
        for k, (c, w) in enumerate(zip(caps, wide)):
            row = H[8 + 7 * k: 15 + 7 * k]
            if w:  # zero-filled (calloc: untouched pages cost nothing)
                b = (np.zeros(c, np.int64), np.zeros(c, np.int64), np.zeros((c, 3), np.float64))
                row[:] = (half[k], 1, c, 0, b[0].ctypes.data, b[1].ctypes.data,
                          b[2].ctypes.data)
            else:
                b = (compact[offset:offset + c], compact[offset + c:offset + 2 * c],
                     compact[offset + 2 * c:offset + 5 * c].reshape(c, 3))
                row[:] = (half[k], 0, c, 0, base + 4 * offset, base + 4 * (offset + c),
                          base + 4 * (offset + 2 * c))
                offset += 5 * c
            bufs.append(b)
        ret = lib.rg_pairs(positions.ctypes.data, types.ctypes.data, cut2.ctypes.data,
                           dpar.ctypes.data, H.ctypes.data, threads)
        if ret == -3:
            return None
        if ret == -1:
            raise MemoryError("neighbour search: out of memory")
        if ret == -2:
            raise ValueError("the cell is singular")
        counts = H[11::7].tolist()
        if all(m <= c for m, c in zip(counts, caps)):
            break
        caps = [capacity[k](max(c, m)) if wide[k] else max(c, m)
                for k, (c, m) in enumerate(zip(caps, counts))]
    last_mode = {0: None, 1: "all_pairs", 2: "cells"}[int(H[7])]
    out = []
    for k, (bi, bj, bs) in enumerate(bufs):
        m = counts[k]
        if len(_last_count) > 256:
            _last_count.clear()
        _last_count[(n, k_lists, k)] = m
        out.append((bi, bj, bs, m) if wide[k] else (bi[:m], bj[:m], bs[:m]))
    return out
