"""Neighbour lists against a brute-force image enumeration and against ASE."""

import itertools
import os
import signal

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list

from reaxgrad.md import _native, _nlist_c, neighbors
from reaxgrad.md.space import complete_cell, pair_displacements, plane_spacings


def brute_force(positions, cell, pbc, cutoff):
    """Every (i, j, shift) with |x_j + shift @ cell - x_i| <= cutoff, by looping over images."""
    positions = np.asarray(positions, float)
    full = complete_cell(cell, pbc)
    # images far enough to cover unwrapped positions as well
    frac = np.linalg.solve(full.T, positions.T).T
    spread = np.ceil(np.ptp(frac, axis=0)) if len(frac) else np.zeros(3)
    reach = [int(np.ceil(cutoff / h) + spread[a] + 1) if pbc[a] else 0
             for a, h in enumerate(plane_spacings(full))]
    rows = []
    n = len(positions)
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    for shift in itertools.product(*(range(-r, r + 1) for r in reach)):
        d = positions[jj] + np.array(shift) @ full - positions[ii]
        ok = np.einsum("pd,pd->p", d, d) <= cutoff * cutoff
        if not any(shift):
            ok &= ii != jj
        for i, j in zip(ii[ok], jj[ok]):
            rows.append((i, j, *shift))
    return canonical(np.array(rows, dtype=np.int64).reshape(-1, 5))


def canonical(rows):
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, 5)
    return rows[np.lexsort(rows.T[::-1])]


def as_rows(i, j, shifts):
    return canonical(np.column_stack([i, j, shifts]))


def random_positions(rng, n, cell, spread=1.0):
    return (rng.random((n, 3)) * spread) @ cell


TRICLINIC = np.array([[5.0, 0.0, 0.0], [1.7, 4.6, 0.0], [-1.2, 0.9, 4.3]])
CASES = {
    "orthorhombic": (np.diag([7.0, 8.0, 9.0]), (True, True, True), 40, 3.5),
    "triclinic": (TRICLINIC, (True, True, True), 30, 4.0),
    "tiny_cell": (np.diag([2.1, 2.6, 3.1]), (True, True, True), 3, 5.7),
    "tiny_triclinic": (TRICLINIC * 0.45, (True, True, True), 4, 5.5),
    "skewed": (np.array([[4.0, 0, 0], [3.6, 2.0, 0], [3.1, 1.7, 2.2]]), (True,) * 3, 6, 5.0),
    "slab": (np.diag([6.0, 6.5, 20.0]), (True, True, False), 25, 4.0),
    "wire": (TRICLINIC, (False, True, False), 12, 5.0),
    "free": (np.diag([15.0, 15.0, 15.0]), (False, False, False), 50, 4.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_brute_force(name):
    cell, pbc, n, cutoff = CASES[name]
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    positions = random_positions(rng, n, cell)
    got = as_rows(*neighbors.neighbor_pairs(positions, cell, pbc, cutoff))
    np.testing.assert_array_equal(got, brute_force(positions, cell, pbc, cutoff))


@pytest.mark.parametrize("name", ["triclinic", "tiny_cell", "slab"])
def test_unwrapped_positions(name):
    """Shifts refer to the positions as given, also far outside the cell."""
    cell, pbc, n, cutoff = CASES[name]
    rng = np.random.default_rng(7)
    positions = random_positions(rng, n, cell, spread=3.0) - cell.sum(axis=0)
    i, j, shifts = neighbors.neighbor_pairs(positions, cell, pbc, cutoff)
    d = pair_displacements(positions, cell, i, j, shifts)
    assert np.all(np.linalg.norm(d, axis=1) <= cutoff + 1e-9)
    np.testing.assert_array_equal(as_rows(i, j, shifts),
                                  brute_force(positions, cell, pbc, cutoff))


@pytest.mark.parametrize("name", ["orthorhombic", "triclinic", "tiny_triclinic", "slab"])
def test_matches_ase(name):
    cell, pbc, n, cutoff = CASES[name]
    rng = np.random.default_rng(3)
    atoms = Atoms(f"H{n}", positions=random_positions(rng, n, cell), cell=cell, pbc=pbc)
    ai, aj, ashift = ase_neighbor_list("ijS", atoms, cutoff)
    got = as_rows(*neighbors.neighbor_pairs(atoms.positions, atoms.cell.array, atoms.pbc,
                                            cutoff))
    np.testing.assert_array_equal(got, as_rows(ai, aj, ashift))


def test_single_atom_sees_its_images():
    cell = np.diag([2.0, 3.0, 10.0])
    i, j, shifts = neighbors.neighbor_pairs([[0.5, 0.5, 0.5]], cell, True, 4.0)
    assert np.all(i == 0) and np.all(j == 0)
    lengths = np.linalg.norm(shifts @ cell, axis=1)
    assert np.all((lengths > 0) & (lengths <= 4.0))
    # (+-1,0,0), (+-2,0,0), (0,+-1,0), (+-1,+-1,0): 4 + 2 + 4 = 10 images
    assert len(i) == 10


def test_cutoff_is_inclusive():
    positions = [[1.0, 1.0, 1.0], [3.0, 1.0, 1.0]]
    i, _, _ = neighbors.neighbor_pairs(positions, np.diag([10.0] * 3), True, 2.0)
    assert len(i) == 2


def test_half_list_is_canonical_half_of_full():
    cell, pbc, n, cutoff = CASES["tiny_triclinic"]
    positions = random_positions(np.random.default_rng(1), n, cell)
    full = neighbors.neighbor_pairs(positions, cell, pbc, cutoff)
    hi, hj, hs = neighbors.neighbor_pairs(positions, cell, pbc, cutoff, half=True)
    assert np.all(neighbors.half_pair_mask(hi, hj, hs))
    mirrored = np.concatenate([as_rows(hi, hj, hs), as_rows(hj, hi, -hs)])
    np.testing.assert_array_equal(canonical(mirrored), as_rows(*full))


def test_sorted_output_groups_by_i():
    cell, pbc, n, cutoff = CASES["triclinic"]
    positions = random_positions(np.random.default_rng(2), n, cell)
    i, j, shifts = neighbors.neighbor_pairs(positions, cell, pbc, cutoff, sort=True)
    assert np.all(np.diff(i) >= 0)
    np.testing.assert_array_equal(as_rows(i, j, shifts),
                                  brute_force(positions, cell, pbc, cutoff))


def test_free_boundaries_with_zero_cell_and_sparse_atoms():
    rng = np.random.default_rng(4)
    positions = np.concatenate([rng.random((20, 3)) * 4.0, rng.random((20, 3)) * 4.0 + 500.0])
    got = as_rows(*neighbors.neighbor_pairs(positions, None, False, 3.0))
    np.testing.assert_array_equal(got, brute_force(positions, np.zeros((3, 3)), (False,) * 3,
                                                   3.0))


def test_empty_and_zero_cutoff():
    i, j, s = neighbors.neighbor_pairs(np.zeros((0, 3)), np.eye(3), True, 3.0)
    assert len(i) == len(j) == len(s) == 0
    i, _, _ = neighbors.neighbor_pairs(np.zeros((2, 3)), np.eye(3), True, 0.0)
    assert len(i) == 0


def test_bigger_random_system_against_ase():
    rng = np.random.default_rng(5)
    cell = np.array([[18.0, 0, 0], [4.0, 17.0, 0], [-3.0, 2.5, 16.0]])
    atoms = Atoms("H500", positions=random_positions(rng, 500, cell), cell=cell, pbc=True)
    ai, aj, ashift = ase_neighbor_list("ijS", atoms, 6.0)
    got = as_rows(*neighbors.neighbor_pairs(atoms.positions, cell, True, 6.0,
                                            bins_per_cutoff=2))
    np.testing.assert_array_equal(got, as_rows(ai, aj, ashift))


@pytest.mark.parametrize("growth,expected", [(2.0, [64, 64, 128, 1024]),
                                             (1.25, [64, 64, 80, 1184])])
def test_bucket_capacity_ladder(growth, expected):
    got = [neighbors.bucket_capacity(n, growth=growth) for n in (0, 64, 65, 1000)]
    assert got == expected


def test_padded_list_and_mask():
    cell, pbc, n, cutoff = CASES["triclinic"]
    positions = random_positions(np.random.default_rng(6), n, cell)
    nl = neighbors.neighbor_list(positions, cell, pbc, cutoff)
    assert nl.capacity == neighbors.bucket_capacity(nl.n_pairs)
    assert nl.mask.sum() == nl.n_pairs and not nl.mask[nl.n_pairs:].any()
    np.testing.assert_array_equal(as_rows(*nl.pairs()), brute_force(positions, cell, pbc,
                                                                     cutoff))
    d = nl.displacements(positions, cell)
    assert d.shape == (nl.capacity, 3)
    assert np.all(d[~nl.mask] == 0.0)
    assert np.all(np.linalg.norm(d[nl.mask], axis=1) <= cutoff + 1e-9)


def test_verlet_update_keeps_capacity_and_stays_exact():
    cell, pbc, n, cutoff = CASES["orthorhombic"]
    rng = np.random.default_rng(8)
    positions = random_positions(rng, n, cell)
    nl = neighbors.neighbor_list(positions, cell, pbc, cutoff, skin=0.6)
    # a small move: the list is still valid and is returned unchanged
    moved = positions + rng.normal(0, 0.05, positions.shape)
    assert not nl.needs_rebuild(moved, cell)
    assert nl.update(moved, cell) is nl
    # every pair within the cutoff is still in the list
    i, j, s = nl.pairs()
    r = np.linalg.norm(pair_displacements(moved, cell, i, j, s), axis=1)
    np.testing.assert_array_equal(as_rows(i[r <= cutoff], j[r <= cutoff], s[r <= cutoff]),
                                  brute_force(moved, cell, pbc, cutoff))
    # a move beyond skin/2 triggers a rebuild with the same capacity
    moved2 = positions.copy()
    moved2[0] += [0.4, 0.0, 0.0]
    assert nl.needs_rebuild(moved2, cell)
    nl2 = nl.update(moved2, cell)
    assert nl2 is not nl and nl2.capacity == nl.capacity
    np.testing.assert_array_equal(as_rows(*nl2.pairs()),
                                  brute_force(moved2, cell, pbc, cutoff + 0.6))
    # a changed cell triggers a rebuild
    assert nl.needs_rebuild(positions, cell * 1.01)


def test_capacity_grows_and_shrinks_by_buckets():
    rng = np.random.default_rng(9)
    cell = np.diag([10.0] * 3)
    positions = random_positions(rng, 60, cell)
    nl = neighbors.neighbor_list(positions, cell, True, 3.0, minimum=16)
    bigger = neighbors.neighbor_list(positions, cell, True, 5.0, minimum=16,
                                     previous_capacity=nl.capacity)
    assert bigger.capacity == neighbors.bucket_capacity(bigger.n_pairs, minimum=16)
    assert bigger.capacity > nl.capacity
    # slightly fewer pairs: same shape
    similar = neighbors.neighbor_list(positions, cell, True, 4.9, minimum=16,
                                      previous_capacity=bigger.capacity)
    assert similar.capacity == bigger.capacity
    # far fewer pairs: back down the ladder
    smaller = neighbors.neighbor_list(positions, cell, True, 2.0, minimum=16,
                                      previous_capacity=bigger.capacity)
    assert smaller.capacity == neighbors.bucket_capacity(smaller.n_pairs, minimum=16)
    assert smaller.capacity < bigger.capacity


def test_fixed_capacity_too_small_raises():
    positions = random_positions(np.random.default_rng(10), 30, np.diag([6.0] * 3))
    with pytest.raises(ValueError):
        neighbors.neighbor_list(positions, np.diag([6.0] * 3), True, 4.0, capacity=8)


def test_displacements_are_differentiable_in_the_engine():
    core = pytest.importorskip("reaxgrad.core")
    rnp = core.numpy
    cell, pbc, n, cutoff = CASES["tiny_triclinic"]
    positions = random_positions(np.random.default_rng(11), n, cell)
    i, j, s = neighbors.neighbor_pairs(positions, cell, pbc, cutoff)

    def energy(x, c):
        d = pair_displacements(x, c, i, j, s)
        return rnp.sum(rnp.exp(-rnp.sum(d * d, axis=1)))

    g_pos, g_cell = core.grad(energy, argnums=(0, 1))(positions, cell)
    d = pair_displacements(positions, cell, i, j, s)
    w = -2.0 * np.exp(-np.einsum("pd,pd->p", d, d))[:, None] * d
    expect_pos = np.zeros_like(positions)
    np.add.at(expect_pos, j, w)
    np.add.at(expect_pos, i, -w)
    np.testing.assert_allclose(np.asarray(g_pos), expect_pos, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(g_cell), s.astype(float).T @ w, rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("coords", [
    [[0, 0, 0], [0, 0, 0.97]],                      # linear molecule along z
    [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]],     # planar molecule in xy
    [[0, 0, 0]],                                     # a single atom
])
def test_flat_free_molecules(coords):
    """Free molecules with no extent along some axis (regression: bins of ~zero width gave
    an enormous stencil and a MemoryError)."""
    pos = np.asarray(coords, dtype=float)
    i, j, s = neighbors.neighbor_pairs(pos, None, False, 10.0, half=True)
    n = len(pos)
    expected = {(a, b) for a in range(n) for b in range(a + 1, n)}
    assert {(int(a), int(b)) for a, b in zip(i, j)} == expected
    assert not np.any(s)


# ---------------------------------------------------------------- compiled search and paths

COMPILED = pytest.mark.skipif(not _nlist_c.available(), reason="no working C compiler")
METHODS = ["numpy", pytest.param("all_pairs", marks=COMPILED),
           pytest.param("cells", marks=COMPILED), "auto"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_path_gives_the_canonical_list(name, method):
    """Exact set and order, (i, j, shift) ascending, whichever algorithm built it; larger
    systems too (several atoms per bin), positions unwrapped."""
    cell, pbc, n, cutoff = CASES[name]
    rng = np.random.default_rng(abs(hash((name, method))) % 2**32)
    for count, spread in ((n, 1.0), (3 * n, 2.5)):
        positions = random_positions(rng, count, cell, spread) - 0.5 * cell.sum(axis=0)
        expected = brute_force(positions, cell, pbc, cutoff)
        i, j, s = neighbors.neighbor_pairs(positions, cell, pbc, cutoff, method=method)
        assert i.dtype == j.dtype == s.dtype == np.int32
        np.testing.assert_array_equal(np.column_stack([i, j, s]), expected)
        half = neighbors.neighbor_pairs(positions, cell, pbc, cutoff, half=True, method=method)
        keep = neighbors.half_pair_mask(expected[:, 0], expected[:, 1], expected[:, 2:])
        np.testing.assert_array_equal(np.column_stack(half), expected[keep])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["tiny_triclinic", "slab", "free", "triclinic"])
def test_several_lists_by_type_from_one_search(name, method):
    """Per-type cutoff tables (asymmetric, with pairs of types that take nothing), full and
    half lists, against the brute-force list filtered by distance and types."""
    cell, pbc, n, cutoff = CASES[name]
    rng = np.random.default_rng(12)
    positions = random_positions(rng, 2 * n, cell)
    types = rng.integers(0, 3, len(positions))
    table = cutoff * np.array([[0.5, 0.9, 0.0], [0.7, 0.3, 1.0], [-1.0, 0.6, 0.45]])
    everything = brute_force(positions, cell, pbc, cutoff)
    d = pair_displacements(positions, complete_cell(cell, pbc), everything[:, 0],
                           everything[:, 1], everything[:, 2:])
    r = np.linalg.norm(d, axis=1)
    typed = everything[r <= table[types[everything[:, 0]], types[everything[:, 1]]]]
    rep = neighbors.half_pair_mask(everything[:, 0], everything[:, 1], everything[:, 2:])
    near = everything[(r <= 0.4 * cutoff) & rep]
    lists = neighbors.pair_lists(positions, cell, pbc, [table, cutoff, 0.4 * cutoff],
                                 half=[False, False, True], types=types, method=method)
    for got, want in zip(lists, (typed, everything, near)):
        np.testing.assert_array_equal(np.column_stack(got), want)


@COMPILED
def test_compiled_paths_agree_bit_for_bit_on_a_crystal():
    """All pairs, cell list and NumPy give the same arrays on a small-cell crystal with a
    10 A cutoff (many images, several wraps of the stencil)."""
    cell = np.array([[2.52, 0.0, 0.0], [1.26, 2.18, 0.0], [1.26, 0.73, 2.06]])
    positions = np.array([[0.0, 0.0, 0.0], [1.26, 0.73, 0.52]]) + 0.01
    got = [np.column_stack(neighbors.neighbor_pairs(positions, cell, True, 10.0, method=m))
           for m in ("all_pairs", "cells", "numpy")]
    assert len(got[0]) > 1000
    for other in got[1:]:
        np.testing.assert_array_equal(other, got[0])


@COMPILED
def test_capacity_retry_on_dense_free_clusters():
    """More pairs than the first buffer guess: the search runs again with room for all."""
    rng = np.random.default_rng(13)
    positions = rng.random((300, 3)) * 3.0  # dense: every pair within 5.2 A
    _nlist_c._last_count.clear()
    i, j, s = neighbors.neighbor_pairs(positions, None, False, 5.2)
    assert len(i) == 300 * 299
    np.testing.assert_array_equal(np.column_stack([i, j, s]),
                                  brute_force(positions, np.zeros((3, 3)), (False,) * 3, 5.2))


def _crystal_lists(seed=21, n=3000):
    """A few thousand atoms in a triclinic cell (many blocks of rows for the threads), some
    outside it, three types: per-type, full, half and wide lists at once."""
    rng = np.random.default_rng(seed)
    cell = np.array([[30.0, 0.0, 0.0], [3.0, 28.5, 0.0], [-2.0, 1.5, 27.0]])
    positions = (rng.random((n, 3)) * 1.2 - 0.1) @ cell
    types = rng.integers(0, 3, n)
    table = np.array([[2.0, 3.6, 0.0], [2.8, 1.2, 4.0], [-1.0, 2.4, 1.8]])
    cut2 = np.stack([np.where(table > 0, table**2, -1.0), np.full((3, 3), 4.5**2),
                     np.full((3, 3), 6.0**2), np.full((3, 3), 2.5**2)])
    half = [False, False, True, True]
    return positions, cell, cut2, half, types


def _search(positions, cell, cut2, half, types, capacity=None):
    """The compiled cell list's lists (i, j, shifts, count), wide ones included."""
    wide = [False, True, True, False]
    cap = capacity or (lambda m: m + 100)
    found = _nlist_c.pairs(positions, complete_cell(cell, (True,) * 3), (True,) * 3, cut2,
                           half, types, mode="cells", wide=wide, capacity=[cap] * 4)
    assert _nlist_c.last_mode == "cells"
    out = []
    for lst in found:
        m = lst[3] if len(lst) == 4 else len(lst[0])
        out.append((np.asarray(lst[0][:m]), np.asarray(lst[1][:m]), np.asarray(lst[2][:m]), m))
    return out


def _assert_same_lists(got, want):
    for (gi, gj, gs, gm), (wi, wj, ws, wm) in zip(got, want, strict=True):
        assert gm == wm
        assert gi.dtype == wi.dtype and gs.dtype == ws.dtype
        assert np.array_equal(gi, wi) and np.array_equal(gj, wj) and np.array_equal(gs, ws)


@COMPILED
def test_threads_give_the_same_lists_bit_for_bit(monkeypatch):
    """Several threads (the setting read at each call) build exactly the lists one thread
    does: same pairs, same order, same counts; and they are the NumPy path's."""
    positions, cell, cut2, half, types = _crystal_lists()
    monkeypatch.setenv("REAXGRAD_NUM_THREADS", "1")
    assert _nlist_c._threads() == 1
    one = _search(positions, cell, cut2, half, types)
    assert min(m for *_, m in one) > 10000
    numpy = neighbors.pair_lists(positions, cell, True, np.sqrt(np.maximum(cut2, 0.0)),
                                 half=half, types=types, method="numpy")
    for (i, j, s, _), (ni, nj, ns) in zip(one, numpy):
        np.testing.assert_array_equal(np.column_stack([i, j, s]), np.column_stack([ni, nj, ns]))
    for threads in ("2", "3"):
        monkeypatch.setenv("REAXGRAD_NUM_THREADS", threads)
        assert _nlist_c._threads() == int(threads)
        _assert_same_lists(_search(positions, cell, cut2, half, types), one)
    # fewer atoms than rows per block times threads, and a last block that is not full
    sub = slice(0, 1500)
    many = _search(positions[sub], cell, cut2, half, types[sub])
    monkeypatch.setenv("REAXGRAD_NUM_THREADS", "1")
    _assert_same_lists(many, _search(positions[sub], cell, cut2, half, types[sub]))


@COMPILED
def test_threads_keep_the_capacity_retry(monkeypatch):
    """Buffers far too small at first: every thread count runs the search again with room
    for all and gives the one-thread lists."""
    positions, cell, cut2, half, types = _crystal_lists(seed=22, n=2000)
    monkeypatch.setenv("REAXGRAD_NUM_THREADS", "1")
    want = _search(positions, cell, cut2, half, types)
    lib = _nlist_c._library()

    class Counting:
        calls = 0

        def rg_pairs(self, *args):
            Counting.calls += 1
            return lib.rg_pairs(*args)

    monkeypatch.setattr(_nlist_c, "_lib", Counting())
    monkeypatch.setattr(_nlist_c, "_expected", lambda *args: 0.0)  # first guess: 64 rows
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("REAXGRAD_NUM_THREADS", threads)
        _nlist_c._last_count.clear()
        Counting.calls = 0
        asked = []

        def tiny(m, asked=asked):  # the two wide lists' first buffers: 8 rows; then the
            asked.append(m)        # rows the first search counted
            return 8 if len(asked) <= 2 else m

        _assert_same_lists(_search(positions, cell, cut2, half, types, capacity=tiny), want)
        assert Counting.calls == 2


@COMPILED
def test_without_openmp_the_source_gives_the_same_lists(monkeypatch):
    """A compiler without OpenMP builds the same source (pragmas ignored): one thread, same
    lists."""
    import ctypes

    positions, cell, cut2, half, types = _crystal_lists(seed=23, n=1500)
    monkeypatch.setenv("REAXGRAD_NUM_THREADS", "2")
    want = _search(positions, cell, cut2, half, types)
    plain = _native.load("nlist", _nlist_c.SOURCE)  # no -fopenmp
    plain.rg_pairs.restype = ctypes.c_int64
    plain.rg_pairs.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_int64]
    monkeypatch.setattr(_nlist_c, "_lib", plain)
    _assert_same_lists(_search(positions, cell, cut2, half, types), want)


@COMPILED
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_searches_on_one_thread(monkeypatch):
    """OpenMP thread pools do not survive fork: after the parent searched on threads, a
    forked child searches on one thread (no hang) and finds the same lists."""
    positions, cell, cut2, half, types = _crystal_lists(seed=24, n=1500)
    monkeypatch.setenv("REAXGRAD_NUM_THREADS", "2")
    want = _search(positions, cell, cut2, half, types)
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 when right
        code = 1
        try:
            signal.alarm(120)
            if _nlist_c._threads() == 1:
                _assert_same_lists(_search(positions, cell, cut2, half, types), want)
                code = 0
        except BaseException:  # noqa: BLE001 (any failure: a non-zero status)
            pass
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_padded_pairs_reuse_their_buffers():
    cell, pbc, n, cutoff = CASES["triclinic"]
    positions = random_positions(np.random.default_rng(14), n, cell)
    plain, wide = neighbors.pair_lists(positions, cell, pbc, [cutoff, cutoff], half=True,
                                       wide=[False, True], min_capacity=[0, 5000])
    assert isinstance(wide, neighbors.PaddedPairs) and len(wide.i) >= 5000
    i, j, s = wide.pairs()
    assert i.dtype == np.int64 and s.dtype == np.float64
    np.testing.assert_array_equal(np.column_stack([i, j, s]), np.column_stack(plain))
    pi, pj, ps, mask = wide.padded(4096)
    assert len(pi) == 4096 and np.shares_memory(pi, wide.i)
    assert mask.sum() == wide.n and not pi[wide.n:].any() and not ps[wide.n:].any()
    bi, _, _, bmask = wide.padded(len(wide.i) + 1)  # longer than the buffer: a copy
    assert not np.shares_memory(bi, wide.i) and bmask.sum() == wide.n
    with pytest.raises(ValueError):
        wide.padded(wide.n - 1)


def test_without_compiled_code_numpy_serves(monkeypatch):
    monkeypatch.setenv("REAXGRAD_NATIVE", "0")
    cell, pbc, n, cutoff = CASES["tiny_cell"]
    positions = random_positions(np.random.default_rng(15), n, cell)
    i, j, s = neighbors.neighbor_pairs(positions, cell, pbc, cutoff)
    np.testing.assert_array_equal(np.column_stack([i, j, s]),
                                  brute_force(positions, cell, pbc, cutoff))
    with pytest.raises(RuntimeError):
        neighbors.neighbor_pairs(positions, cell, pbc, cutoff, method="cells")


# ---------------------------------------------------------------- the compile-and-cache runtime

def _probe_source(tag):
    return f"int probe_{tag}(int x) {{ return x + {len(tag)}; }}\n"


@COMPILED
def test_native_libraries_are_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("REAXGRAD_CACHE_DIR", str(tmp_path))
    lib = _native.load("probe", _probe_source("disk"))
    assert lib.probe_disk(1) == 5
    files = sorted((tmp_path / "native").glob("probe-*.so"))
    assert len(files) == 1 and not list((tmp_path / "native").glob(".*"))  # no temporaries
    stamp = files[0].stat().st_mtime_ns
    _native._loaded.clear()  # a new process would find the file: no compile
    assert _native.load("probe", _probe_source("disk")) is not None
    assert files[0].stat().st_mtime_ns == stamp
    _native.load("probe", _probe_source("other"))  # another source: another file
    assert len(list((tmp_path / "native").glob("probe-*.so"))) == 2


def _load_in_process(args):
    cache, tag = args
    import os

    os.environ["REAXGRAD_CACHE_DIR"] = cache
    from reaxgrad.md import _native as native

    lib = native.load("probe", _probe_source(tag))
    return None if lib is None else lib.probe_race(1)


@COMPILED
def test_concurrent_processes_compile_the_same_source(tmp_path):
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(4) as pool:
        got = pool.map(_load_in_process, [(str(tmp_path), "race")] * 4)
    assert got == [5] * 4
    assert len(list((tmp_path / "native").glob("probe-*.so"))) == 1
    assert not list((tmp_path / "native").glob(".*"))


def test_a_broken_compiler_falls_back_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("REAXGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", "false")
    with pytest.warns(RuntimeWarning, match="using NumPy"):
        assert _native.load("probe", _probe_source("broken")) is None
