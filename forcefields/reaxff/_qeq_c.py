"""Compiled charge-equilibration solver (C through ``reaxgrad.md._native``, OpenMP when the
compiler has it): Jacobi-preconditioned conjugate gradients on the sparse symmetric QEq matrix
given by its half pair list (i, j, h) and diagonal, for several right-hand sides that share one
matrix (LAMMPS's s and t solves, or their adjoints).

The matrix is assembled once per call into CSR rows (each nonzero pair entered in row i and row
j, in pair order; 32-bit columns); the product runs over rows in parallel, each row summed in a
fixed order, and the dot products are summed in fixed blocks of rows combined in order, so a
solve repeats bitwise on any number of threads. The right-hand sides advance in lockstep, one
sweep over the matrix serving all of them (LAMMPS's "dual CG"), each one stopping at its own
convergence with exactly the arithmetic of a solve on its own. Convergence as SciPy's ``cg``
and LAMMPS's ``fix qeq/reaxff``: ||b − Hx|| <= tol·||b||, from the given starting guess.

``solve(i, j, h, diag, b, guess, tol)`` returns the solutions (k, n), or None when compiled
code is unavailable (the caller then uses SciPy).
"""
from __future__ import annotations

import ctypes
import os

import numpy as np

from reaxgrad.md import _native

__all__ = ["solve"]

SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLK 2048  /* rows per partial dot product: fixed, so sums do not depend on threads */
#define MAXV 4    /* right-hand sides advanced together by one sweep over the matrix */

static double dot(int64_t n, const double *a, const double *b, double *part, int nt) {
    const int64_t nb = (n + BLK - 1) / BLK;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && nb > 1)
    for (int64_t c = 0; c < nb; c++) {
        const int64_t e = (c + 1) * BLK < n ? (c + 1) * BLK : n;
        double s = 0.0;
        for (int64_t r = c * BLK; r < e; r++) s += a[r] * b[r];
        part[c] = s;
    }
    double s = 0.0;
    for (int64_t c = 0; c < nb; c++) s += part[c];
    return s;
}

/* y[v] = H x[v] for nv vectors in one pass over the rows; each row summed in entry order, so
   every vector's product is the one a single-vector sweep gives */
static void matvec(int64_t n, const int64_t *start, const int32_t *col, const double *val,
                   const double *diag, int nv, double *const *x, double *const *y, int nt) {
    if (nv == 1) {
        const double *x0 = x[0];
        double *y0 = y[0];
        #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n > BLK)
        for (int64_t r = 0; r < n; r++) {
            double s = diag[r] * x0[r];
            for (int64_t e = start[r]; e < start[r + 1]; e++) s += val[e] * x0[col[e]];
            y0[r] = s;
        }
    } else if (nv == 2) {
        const double *x0 = x[0], *x1 = x[1];
        double *y0 = y[0], *y1 = y[1];
        #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n > BLK)
        for (int64_t r = 0; r < n; r++) {
            double s0 = diag[r] * x0[r], s1 = diag[r] * x1[r];
            for (int64_t e = start[r]; e < start[r + 1]; e++) {
                const double v = val[e];
                const int32_t c = col[e];
                s0 += v * x0[c];
                s1 += v * x1[c];
            }
            y0[r] = s0;
            y1[r] = s1;
        }
    } else {
        #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n > BLK)
        for (int64_t r = 0; r < n; r++) {
            double s[MAXV];
            for (int a = 0; a < nv; a++) s[a] = diag[r] * x[a][r];
            for (int64_t e = start[r]; e < start[r + 1]; e++) {
                const double v = val[e];
                const int32_t c = col[e];
                for (int a = 0; a < nv; a++) s[a] += v * x[a][c];
            }
            for (int a = 0; a < nv; a++) y[a][r] = s[a];
        }
    }
}

typedef struct {
    const double *b;
    double *x, *r, *z, *p, *q;
    double bnorm, rz, rr;
    int64_t it;
    int active;
} cg_state;

static void cg_update(int64_t n, cg_state *v, const double *diag, double *part, int nt) {
    const double alpha = v->rz / dot(n, v->p, v->q, part, nt);
    for (int64_t i = 0; i < n; i++) {
        v->x[i] += alpha * v->p[i]; v->r[i] -= alpha * v->q[i]; v->z[i] = v->r[i] / diag[i];
    }
    const double rz_new = dot(n, v->r, v->z, part, nt);
    v->rr = dot(n, v->r, v->r, part, nt);
    const double beta = rz_new / v->rz;
    v->rz = rz_new;
    for (int64_t i = 0; i < n; i++) v->p[i] = v->z[i] + beta * v->p[i];
    v->it++;
}

/* Jacobi-preconditioned CG for k right-hand sides (rows of b) against one matrix, advanced in
   lockstep (up to MAXV per sweep), each until its own residual ||b - Hx|| <= tol ||b||.
   Pairs with h == 0 (padding, beyond the cutoff) are left out of the matrix.
   Returns the largest iteration count, -1: no convergence, -2: out of memory. */
int64_t rg_qeq_cg(int64_t n, int64_t m, const int64_t *pi, const int64_t *pj, const double *h,
                  const double *diag, int64_t k, const double *b, double *x, double tol,
                  int64_t maxiter, int nt) {
    int64_t *start = (int64_t *)calloc((size_t)n + 1, sizeof(int64_t));
    int64_t *fill = (int64_t *)malloc(sizeof(int64_t) * (size_t)(n + 1));
    int32_t *col = (int32_t *)malloc(sizeof(int32_t) * (size_t)(2 * m + 1));
    double *val = (double *)malloc(sizeof(double) * (size_t)(2 * m + 1));
    double *work = (double *)malloc(sizeof(double) * (size_t)(4 * MAXV * n + n / BLK + 2));
    int64_t result = 0;
    if (!start || !fill || !col || !val || !work) { result = -2; goto done; }
    for (int64_t e = 0; e < m; e++) {
        if (h[e] == 0.0) continue;
        start[pi[e] + 1]++; start[pj[e] + 1]++;
    }
    for (int64_t r = 0; r < n; r++) start[r + 1] += start[r];
    memcpy(fill, start, sizeof(int64_t) * (size_t)n);
    for (int64_t e = 0; e < m; e++) {
        if (h[e] == 0.0) continue;
        int64_t a = fill[pi[e]]++, c = fill[pj[e]]++;
        col[a] = (int32_t)pj[e]; val[a] = h[e];
        col[c] = (int32_t)pi[e]; val[c] = h[e];
    }
    double *part = work + 4 * MAXV * n;
    for (int64_t first = 0; first < k; first += MAXV) {
        const int nv = (int)(k - first < MAXV ? k - first : MAXV);
        cg_state v[MAXV];
        double *xs[MAXV], *qs[MAXV], *ps[MAXV];
        int na = 0;
        for (int a = 0; a < nv; a++) {
            cg_state *s = &v[a];
            s->b = b + (first + a) * n;
            s->x = x + (first + a) * n;
            s->r = work + (4 * a) * n; s->z = s->r + n; s->p = s->z + n; s->q = s->p + n;
            s->it = 0;
            s->bnorm = sqrt(dot(n, s->b, s->b, part, nt));
            s->active = s->bnorm != 0.0;
            if (!s->active) memset(s->x, 0, sizeof(double) * (size_t)n);
            else { xs[na] = s->x; qs[na] = s->q; na++; }
        }
        matvec(n, start, col, val, diag, na, xs, qs, nt);
        for (int a = 0; a < nv; a++) {
            cg_state *s = &v[a];
            if (!s->active) continue;
            for (int64_t i = 0; i < n; i++) {
                s->r[i] = s->b[i] - s->q[i]; s->z[i] = s->r[i] / diag[i]; s->p[i] = s->z[i];
            }
            s->rz = dot(n, s->r, s->z, part, nt);
            s->rr = dot(n, s->r, s->r, part, nt);
        }
        for (;;) {
            na = 0;
            for (int a = 0; a < nv; a++) {
                cg_state *s = &v[a];
                if (!s->active) continue;
                if (sqrt(s->rr) <= tol * s->bnorm) {  /* a NaN residual is not converged */
                    s->active = 0;
                    if (s->it > result) result = s->it;
                    continue;
                }
                if (s->it >= maxiter || !isfinite(s->rr)) { result = -1; goto done; }
                ps[na] = s->p; qs[na] = s->q; na++;
            }
            if (na == 0) break;
            matvec(n, start, col, val, diag, na, ps, qs, nt);
            for (int a = 0; a < nv; a++)
                if (v[a].active) cg_update(n, &v[a], diag, part, nt);
        }
    }
done:
    free(start); free(fill); free(col); free(val); free(work);
    return result;
}
"""

_lib = None
_tried = False
last_iterations = 0  # CG iterations of the latest solve (the largest over its right-hand sides)

_I64 = np.ctypeslib.ndpointer(np.int64, flags="C_CONTIGUOUS")
_F64 = np.ctypeslib.ndpointer(np.float64, flags="C_CONTIGUOUS")


def _library():
    global _lib, _tried
    if not _tried:
        _tried = True
        lib = _native.load("qeqcg", SOURCE, openmp=True)
        if lib is not None:
            lib.rg_qeq_cg.argtypes = [ctypes.c_int64, ctypes.c_int64, _I64, _I64, _F64, _F64,
                                      ctypes.c_int64, _F64, _F64, ctypes.c_double,
                                      ctypes.c_int64, ctypes.c_int]
            lib.rg_qeq_cg.restype = ctypes.c_int64
        _lib = lib
    return _lib


def _threads() -> int:
    """The fused kernels' thread setting (REAXGRAD_NUM_THREADS), else all cores; one thread
    in a forked child (OpenMP pools do not survive fork)."""
    from reaxgrad.core.fusion import runtime_c

    if runtime_c._in_forked_child:
        return 1
    n = int(os.environ.get("REAXGRAD_NUM_THREADS", "0") or 0)
    return n if n > 0 else (os.cpu_count() or 1)


def solve(i, j, h, diag, b, guess, tol):
    """x (k, n) with H x_r = b_r for each row r of b (k, n), CG from guess (k, n); None when
    the compiled solver is unavailable. Raises RuntimeError when CG does not converge."""
    lib = _library()
    if lib is None:
        return None
    i = np.ascontiguousarray(i, dtype=np.int64)
    j = np.ascontiguousarray(j, dtype=np.int64)
    h = np.ascontiguousarray(h, dtype=np.float64)
    diag = np.ascontiguousarray(diag, dtype=np.float64)
    b = np.ascontiguousarray(b, dtype=np.float64)
    x = np.array(guess, dtype=np.float64, order="C", copy=True)
    k, n = b.shape
    if n >= 2**31:  # 32-bit column indices
        return None
    maxiter = 10 * n + 100
    its = lib.rg_qeq_cg(n, len(i), i, j, h, diag, k, b, x, float(tol), maxiter, _threads())
    if its == -2:
        raise MemoryError("QEq CG: out of memory")
    if its < 0:
        raise RuntimeError(f"QEq CG did not converge to rtol {tol} ({maxiter} iterations)")
    global last_iterations
    last_iterations = int(its)
    return x
