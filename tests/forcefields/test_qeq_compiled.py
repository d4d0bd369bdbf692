"""The compiled QEq conjugate-gradient solver against SciPy's sparse direct solve, its
bitwise repeatability across thread counts, and its refusal to return an unconverged answer."""
import os

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spl

from reaxgrad.forcefields.reaxff import _qeq_c

pytestmark = pytest.mark.skipif(_qeq_c._library() is None, reason="no C compiler")


def _system(n=1500, pairs=15000, seed=0):
    """A random diagonally dominant symmetric matrix in the half-list form QEq uses, with a
    duplicated pair and self-image pairs (i == j), which land twice on the diagonal."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, pairs)
    j = rng.integers(0, n, pairs)
    i[:50] = j[:50]  # self-image pairs
    i[50], j[50] = i[51], j[51]  # a duplicate pair
    h = rng.uniform(-0.05, 0.05, pairs)
    diag = 7.0 + rng.uniform(0, 1, n)
    full = sp.coo_matrix((np.concatenate([h, h, diag]),
                          (np.concatenate([i, j, np.arange(n)]),
                           np.concatenate([j, i, np.arange(n)]))), shape=(n, n)).tocsc()
    return i, j, h, diag, full


def test_compiled_cg_solves_two_right_hand_sides():
    i, j, h, diag, full = _system()
    n = len(diag)
    rng = np.random.default_rng(1)
    b = np.stack([rng.normal(size=n), -np.ones(n)])
    x = _qeq_c.solve(i, j, h, diag, b, np.zeros_like(b), 1e-13)
    for r in range(2):
        exact = spl.spsolve(full, b[r])
        assert np.max(np.abs(x[r] - exact)) < 1e-11 * np.max(np.abs(exact))
    # a warm start at the answer converges at once to the same answer
    again = _qeq_c.solve(i, j, h, diag, b, x, 1e-13)
    assert np.max(np.abs(again - x)) < 1e-12


def test_compiled_cg_repeats_bitwise_on_any_thread_count(monkeypatch):
    i, j, h, diag, _ = _system(n=6000, pairs=80000, seed=2)
    b = np.stack([np.linspace(-1, 1, len(diag))])
    runs = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("REAXGRAD_NUM_THREADS", threads)
        runs.append(_qeq_c.solve(i, j, h, diag, b, np.zeros_like(b), 1e-10))
    assert all(np.array_equal(runs[0], r) for r in runs[1:])
    monkeypatch.delenv("REAXGRAD_NUM_THREADS")
    assert os.environ.get("REAXGRAD_NUM_THREADS") is None


def test_compiled_cg_refuses_an_unconverged_answer():
    """A singular matrix and a right-hand side outside its range (CG breaks down into NaN):
    an error, not a number."""
    i, j, h = np.array([0]), np.array([1]), np.array([1.0])
    diag = np.array([1.0, 1.0])
    b = np.array([[1.0, -1.0]])
    with pytest.raises(RuntimeError, match="did not converge"):
        _qeq_c.solve(i, j, h, diag, b, np.zeros_like(b), 1e-12)


def test_right_hand_sides_in_lockstep_equal_separate_solves_bitwise():
    """Several right-hand sides share each sweep over the matrix (LAMMPS's dual CG), more than
    one sweep's worth included (7 > 4), with a zero row and padding entries (h = 0 at pair
    (0, 0)): each solution is bit for bit the one a solve of that row alone gives."""
    i, j, h, diag, _ = _system(n=2000, pairs=20000, seed=3)
    i = np.concatenate([i, np.zeros(500, dtype=i.dtype)])
    j = np.concatenate([j, np.zeros(500, dtype=j.dtype)])
    h = np.concatenate([h, np.zeros(500)])
    rng = np.random.default_rng(4)
    b = rng.normal(size=(7, len(diag)))
    b[2] = 0.0
    b[5] *= 1e-3  # converges at another iteration than its neighbours
    guess = rng.normal(scale=0.1, size=b.shape)
    together = _qeq_c.solve(i, j, h, diag, b, guess, 1e-11)
    assert np.array_equal(together[2], np.zeros(len(diag)))
    for r in range(len(b)):
        alone = _qeq_c.solve(i, j, h, diag, b[r:r + 1], guess[r:r + 1], 1e-11)
        assert np.array_equal(alone[0], together[r]), r
