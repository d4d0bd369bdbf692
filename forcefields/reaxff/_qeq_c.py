"""Compiled charge-equilibration solver (C through ``reaxgrad.md._native``, OpenMP when the
compiler has it): Jacobi-preconditioned conjugate gradients on the sparse symmetric QEq matrix
given by its half pair list (i, j, h) and diagonal, for several right-hand sides that share one
matrix (LAMMPS's s and t solves, or their adjoints).

The matrix is assembled once per call into CSR rows (each pair entered in row i and row j, in
pair order); the product runs over rows in parallel, each row summed in a fixed order, and the
dot products are summed in fixed blocks of rows combined in order, so a solve repeats bitwise
on any number of threads. Convergence as SciPy's ``cg`` and LAMMPS's ``fix qeq/reaxff``:
||b − Hx|| <= tol·||b||, from the given starting guess.

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

static void matvec(int64_t n, const int64_t *start, const int64_t *col, const double *val,
                   const double *diag, const double *x, double *y, int nt) {
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n > BLK)
    for (int64_t r = 0; r < n; r++) {
        double s = diag[r] * x[r];
        for (int64_t e = start[r]; e < start[r + 1]; e++) s += val[e] * x[col[e]];
        y[r] = s;
    }
}

/* returns the largest iteration count, -1: no convergence, -2: out of memory */
int64_t rg_qeq_cg(int64_t n, int64_t m, const int64_t *pi, const int64_t *pj, const double *h,
                  const double *diag, int64_t k, const double *b, double *x, double tol,
                  int64_t maxiter, int nt) {
    int64_t *start = (int64_t *)calloc((size_t)n + 1, sizeof(int64_t));
    int64_t *fill = (int64_t *)malloc(sizeof(int64_t) * (size_t)(n + 1));
    int64_t *col = (int64_t *)malloc(sizeof(int64_t) * (size_t)(2 * m + 1));
    double *val = (double *)malloc(sizeof(double) * (size_t)(2 * m + 1));
    double *work = (double *)malloc(sizeof(double) * (size_t)(4 * n + n / BLK + 2));
    int64_t result = 0;
    if (!start || !fill || !col || !val || !work) { result = -2; goto done; }
    for (int64_t e = 0; e < m; e++) { start[pi[e] + 1]++; start[pj[e] + 1]++; }
    for (int64_t r = 0; r < n; r++) start[r + 1] += start[r];
    memcpy(fill, start, sizeof(int64_t) * (size_t)n);
    for (int64_t e = 0; e < m; e++) {
        int64_t a = fill[pi[e]]++, c = fill[pj[e]]++;
        col[a] = pj[e]; val[a] = h[e];
        col[c] = pi[e]; val[c] = h[e];
    }
    double *r = work, *z = work + n, *p = work + 2 * n, *q = work + 3 * n;
    double *part = work + 4 * n;
    for (int64_t rhs = 0; rhs < k; rhs++) {
        const double *bb = b + rhs * n;
        double *xx = x + rhs * n;
        const double bnorm = sqrt(dot(n, bb, bb, part, nt));
        if (bnorm == 0.0) { memset(xx, 0, sizeof(double) * (size_t)n); continue; }
        matvec(n, start, col, val, diag, xx, q, nt);
        for (int64_t i = 0; i < n; i++) {
            r[i] = bb[i] - q[i]; z[i] = r[i] / diag[i]; p[i] = z[i];
        }
        double rz = dot(n, r, z, part, nt);
        double rr = dot(n, r, r, part, nt);
        int64_t it = 0;
        while (!(sqrt(rr) <= tol * bnorm)) {  /* a NaN residual does not count as converged */
            if (it >= maxiter || !isfinite(rr)) { result = -1; goto done; }
            matvec(n, start, col, val, diag, p, q, nt);
            const double alpha = rz / dot(n, p, q, part, nt);
            for (int64_t i = 0; i < n; i++) {
                xx[i] += alpha * p[i]; r[i] -= alpha * q[i]; z[i] = r[i] / diag[i];
            }
            const double rz_new = dot(n, r, z, part, nt);
            rr = dot(n, r, r, part, nt);
            const double beta = rz_new / rz;
            rz = rz_new;
            for (int64_t i = 0; i < n; i++) p[i] = z[i] + beta * p[i];
            it++;
        }
        if (it > result) result = it;
    }
done:
    free(start); free(fill); free(col); free(val); free(work);
    return result;
}
"""

_lib = None
_tried = False

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
    maxiter = 10 * n + 100
    its = lib.rg_qeq_cg(n, len(i), i, j, h, diag, k, b, x, float(tol), maxiter, _threads())
    if its == -2:
        raise MemoryError("QEq CG: out of memory")
    if its < 0:
        raise RuntimeError(f"QEq CG did not converge to rtol {tol} ({maxiter} iterations)")
    return x
