"""ReaxFF candidate lists by compiled code: the same lists, in the same order, as the NumPy
joins; the NumPy shortcuts of list building (BO'_raw without the engine, the per-type reach
of the bond list) equal or bound what they replace; one search serves the overlap check."""
import sys
from pathlib import Path

import numpy as np
import pytest

from reaxgrad.forcefields import lammps_oracle as lo
from reaxgrad.forcefields.ffield import read_ffield, to_params
from reaxgrad.forcefields.reaxff import _lists_c, lists
from reaxgrad.forcefields.reaxff.bond_order import uncorrected
from reaxgrad.forcefields.reaxff.model import ReaxFF
from reaxgrad.md.neighbors import half_pair_mask, neighbor_pairs

sys.path.insert(0, str(Path(__file__).parent))
import structures  # noqa: E402

COMPILED = pytest.mark.skipif(not _lists_c.available(), reason="no working C compiler")
CONTROLS = {
    "default": None,
    "no_skin": {"skin": 0.0},
    "wide": {"skin": 0.5, "bo_margin": 0.3},
    "corrected": {"corrected_margin": 10.0},
    "jaxreaxff": {"index_exclusions": True, "image_limit": (1, 1, 1)},
}
_TABLES = {}


def _setup(name):
    case = structures.CASES_BY_NAME[name]
    if case.ffield not in _TABLES:
        ff = read_ffield(lo.potential_path(case.ffield))
        _TABLES[case.ffield] = ff, to_params(ff)
    ff, params = _TABLES[case.ffield]
    atoms = case.build()
    names = [e.upper() for e in ff.elements]
    types = np.array([names.index(s.upper()) for s in atoms.get_chemical_symbols()])
    return atoms, ff, params, types


def _fields(reax_lists):
    return {f: getattr(reax_lists, f) for f in reax_lists.__dataclass_fields__}


@COMPILED
@pytest.mark.parametrize("control", sorted(CONTROLS))
@pytest.mark.parametrize("name", [c.name for c in structures.CASES])
def test_compiled_lists_equal_the_numpy_lists(name, control):
    """Every array of ReaxLists, padding included, equal: same candidates, same order."""
    atoms, ff, params, types = _setup(name)
    args = (atoms.positions, atoms.cell.array, atoms.pbc, types, params, CONTROLS[control])
    fast = _fields(lists.build_lists(*args, elements=ff.elements))
    slow = _fields(lists.build_lists(*args, elements=ff.elements, method="numpy"))
    for field, value in slow.items():
        if value is None:
            assert fast[field] is None
            continue
        assert fast[field].dtype == value.dtype, field
        np.testing.assert_array_equal(fast[field], value, err_msg=field)


# candidate counts (bond, angle, torsion, hbond, far) with the default control, as the NumPy
# lists before the compiled path gave them (commit e333f20): the sets did not change
COUNTS_BEFORE = {
    "ethanol": (48, 90, 378, 0, 36),
    "n_methylacetamide": (68, 136, 588, 5, 66),
    "water_box_triclinic": (102, 174, 333, 1536, 5566),
    "diamond_primitive": (50, 588, 6360, 0, 797),
    "graphite": (48, 264, 2229, 0, 1008),
    "petn": (476, 1521, 9013, 2597, 12195),
    "zno_wurtzite": (80, 563, 0, 0, 789),
}


@pytest.mark.parametrize("method", ["auto", "numpy"])
@pytest.mark.parametrize("name", sorted(COUNTS_BEFORE))
def test_candidate_counts_are_those_of_the_earlier_lists(name, method):
    atoms, ff, params, types = _setup(name)
    built = lists.build_lists(atoms.positions, atoms.cell.array, atoms.pbc, types, params,
                              elements=ff.elements, method=method)
    counts = built.counts()
    assert tuple(counts[k] for k in ("bond", "angle", "torsion", "hbond", "far")) == \
        COUNTS_BEFORE[name]


@pytest.mark.parametrize("name", ["water_box_triclinic", "petn", "butane_gauche"])
def test_lists_come_in_canonical_order(name):
    """Bond and far entries ordered by (i, j, shift); angles by (b1, b2), torsions by (jk, ij,
    kl), hydrogen bonds by (bond, acceptor entry): deterministic whatever builds them."""
    atoms, ff, params, types = _setup(name)
    built = lists.build_lists(atoms.positions, atoms.cell.array, atoms.pbc, types, params,
                              elements=ff.elements)

    def ordered(*columns):
        keys = np.column_stack(columns)
        return len(keys) < 2 or bool(np.all(np.lexsort(keys.T[::-1]) == np.arange(len(keys))))

    m = built.bond_mask
    assert ordered(built.bond_i[m], built.bond_j[m], built.bond_shift[m])
    m = built.far_mask
    assert ordered(built.far_i[m], built.far_j[m], built.far_shift[m])
    assert np.all(half_pair_mask(built.far_i[m], built.far_j[m], built.far_shift[m]))
    m = built.angle_mask
    assert ordered(built.angle_b1[m], built.angle_b2[m])
    m = built.torsion_mask
    assert ordered(built.torsion_jk[m], built.torsion_ij[m], built.torsion_kl[m])
    for name_ in ("bond", "angle", "torsion", "hbond", "far"):
        mask = getattr(built, name_ + "_mask")
        assert not mask[mask.sum():].any()  # real entries first, then padding


@pytest.mark.parametrize("ffield", ["ffield.reax.cho", "ffield.reax.rdx", "ffield.reax.lg",
                                    "ffield.reax.ZnOH", "ffield.reax.AuO", "acks2_ff.water"])
def test_raw_bond_order_equals_the_engines_bit_for_bit(ffield):
    params = to_params(read_ffield(lo.potential_path(ffield)))
    n_types = len(np.asarray(params["r_s"]))
    rng = np.random.default_rng(0)
    ti, tj = rng.integers(0, n_types, 4000), rng.integers(0, n_types, 4000)
    r = rng.uniform(0.3, 6.0, 4000)
    np.testing.assert_array_equal(lists.raw_bond_order(r, ti, tj, params),
                                  np.asarray(uncorrected(r, ti, tj, params)[0]))


@pytest.mark.parametrize("ffield", ["ffield.reax.cho", "ffield.reax.budzien",
                                    "ffield.reax.ZnOH", "ffield.reax.AuO"])
def test_bond_reach_bounds_the_bond_threshold(ffield):
    """Beyond bond_reach, BO'_raw is below the threshold; just inside, some pair reaches it
    (the bound is tight, not merely safe)."""
    params = to_params(read_ffield(lo.potential_path(ffield)))
    threshold = 0.5 * 0.01 * float(np.asarray(params["gp"])[29])
    reach = lists.bond_reach(params, threshold)
    n_types = reach.shape[0]
    ti, tj = np.meshgrid(np.arange(n_types), np.arange(n_types), indexing="ij")
    ti, tj = ti.ravel(), tj.ravel()
    finite = np.isfinite(reach[ti, tj])
    assert finite.all()
    for factor in (1.0 + 1e-9, 1.001, 1.5):
        raw = lists.raw_bond_order(reach[ti, tj] * factor, ti, tj, params)
        assert np.all(raw < threshold)
    # at a third of the threshold per term the bound is within ~25 % of the true reach
    raw = lists.raw_bond_order(reach[ti, tj] * 0.75, ti, tj, params)
    assert np.any(raw >= threshold)


def test_bond_reach_gives_up_where_a_term_does_not_decay():
    params = dict(to_params(read_ffield(lo.potential_path("ffield.reax.cho"))))
    params["p_bo1"] = np.array(params["p_bo1"], dtype=float)
    params["p_bo1"][0, 1] = params["p_bo1"][1, 0] = 0.1  # grows with r
    reach = lists.bond_reach(params, 0.0005)
    assert np.isinf(reach[0, 1]) and np.isinf(reach[1, 0]) and np.isfinite(reach[0, 0])
    assert np.all(np.isinf(lists.bond_reach(params, 0.0)))


def test_one_search_serves_the_overlap_check_and_the_lists():
    atoms, ff, params, types = _setup("water_box_triclinic")
    positions = atoms.positions.copy()
    positions[5] = positions[3] + atoms.cell.array[0] + [0.03, 0.0, 0.04]  # an image of 3
    found = lists.find_pairs(positions, atoms.cell.array, atoms.pbc, types, params,
                             overlap_distance=0.1)
    i, j, s = neighbor_pairs(positions, atoms.cell.array, atoms.pbc, 0.1, half=True)
    np.testing.assert_array_equal(np.column_stack(found.overlap), np.column_stack([i, j, s]))
    assert len(i) == 1 and {int(i[0]), int(j[0])} == {3, 5}
    model = ReaxFF(lo.potential_path("ffield.reax.cho"))
    with pytest.raises(ValueError, match="atoms 3 and 5 overlap"):
        model.evaluate(positions, atoms.cell.array, atoms.pbc, atoms.get_chemical_symbols())
    with pytest.raises(ValueError, match="other settings"):
        lists.build_lists(positions, atoms.cell.array, atoms.pbc, types, params,
                          {"skin": 0.1}, pairs=found)


def test_model_lists_reuse_capacities_and_far_buffers():
    """Single points in a row keep the list shapes (jit cache hits) and the far list is padded
    in the buffer the search wrote it to (no copy)."""
    atoms, _, _, _ = _setup("petn")
    model = ReaxFF(lo.potential_path("ffield.reax.budzien"))
    types = model.types_of(atoms.get_chemical_symbols())
    first = model.lists(atoms.positions, atoms.cell.array, atoms.pbc, types)
    rng = np.random.default_rng(1)
    moved = atoms.positions + rng.normal(0, 0.01, atoms.positions.shape)
    pairs = lists.find_pairs(moved, atoms.cell.array, atoms.pbc, types, model.params,
                             model.control, previous=first)
    again = model.lists(moved, atoms.cell.array, atoms.pbc, types, pairs)
    for f in ("bond_i", "angle_b1", "torsion_ij", "hbond_bond", "far_i"):
        assert len(getattr(again, f)) == len(getattr(first, f)), f
    if _lists_c.available():
        assert np.shares_memory(again.far_i, pairs.far.i)
    assert again.far_mask.sum() == pairs.far.n
