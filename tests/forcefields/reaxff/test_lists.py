"""Interaction lists: structure (symmetry, padding buckets), and the candidate design: lists
built at one geometry give LAMMPS's selection at a nearby geometry because the discontinuous
tests are re-applied inside the traced energy."""

import numpy as np
import pytest
from ase import Atoms
from reaxff_cases import atom_types, ffield_tables, setup_case

from reaxgrad.forcefields.reaxff import bonded_energy_terms, build_lists
from reaxgrad.forcefields.reaxff.bond_order import uncorrected
from reaxgrad.md.neighbors import bucket_capacity


def _terms(atoms, params, lists):
    out = bonded_energy_terms(atoms.positions, atoms.cell.array, params, lists)
    return {k: float(v) for k, v in out.items()}


@pytest.mark.parametrize("name", ["water_box_triclinic", "diamond_primitive", "ethanol"])
def test_bond_list_is_symmetric_and_padded(name):
    _, _, _, _, _, lists = setup_case(name)
    m = lists.bond_mask
    entries = {(int(i), int(j), tuple(s)) for i, j, s in
               zip(lists.bond_i[m], lists.bond_j[m], lists.bond_shift[m].astype(int))}
    assert all((j, i, tuple(-np.array(s))) in entries for i, j, s in entries)
    assert lists.bond_half[m].sum() * 2 == m.sum()
    for name_ in ("bond_i", "angle_b1", "torsion_ij", "hbond_bond", "far_i"):
        n_real = int(getattr(lists, name_.split("_")[0] + "_mask").sum())
        assert len(getattr(lists, name_)) == bucket_capacity(n_real)


def test_small_cell_lists_hold_self_images():
    _, _, _, _, _, lists = setup_case("gold_primitive")  # one atom, 2.88 A cell
    m = lists.bond_mask
    assert m.sum() > 0 and np.all(lists.bond_i[m] == lists.bond_j[m])
    assert np.all(np.abs(lists.bond_shift[m]).sum(axis=1) > 0)


def test_previous_capacities_are_kept():
    atoms, _, _, params, types, lists = setup_case("water_box")
    moved = atoms.positions + 0.01
    again = build_lists(moved, atoms.cell.array, True, types, params, previous=lists)
    for name in ("bond_i", "angle_b1", "torsion_ij", "hbond_bond", "far_i"):
        assert len(getattr(again, name)) == len(getattr(lists, name))


@pytest.mark.parametrize("name", ["water_box_triclinic", "n_methylacetamide", "petn"])
def test_candidate_lists_stay_exact_after_small_moves(name):
    atoms, _, _, params, types, lists = setup_case(name)
    moved = atoms.copy()
    moved.positions += 0.03 * np.random.default_rng(3).normal(size=atoms.positions.shape)
    fresh = build_lists(moved.positions, moved.cell.array, moved.pbc, types, params)
    a, b = _terms(moved, params, lists), _terms(moved, params, fresh)
    for k in a:
        assert abs(a[k] - b[k]) <= 1e-9 * max(1.0, abs(b[k])), (k, a[k], b[k])


def test_tight_and_generous_candidates_agree():
    atoms, _, _, params, types, lists = setup_case("formamide_dimer")
    tight = build_lists(atoms.positions, atoms.cell.array, atoms.pbc, types, params,
                        {"skin": 0.0, "bo_margin": 1.0})
    assert tight.counts()["bond"] <= lists.counts()["bond"]
    a, b = _terms(atoms, params, lists), _terms(atoms, params, tight)
    for k in a:
        assert abs(a[k] - b[k]) <= 1e-12 * max(1.0, abs(b[k])), k


def test_bond_order_cutoff_is_applied_inside_the_energy():
    """Two H atoms just outside LAMMPS's bond-list threshold at build time, then moved inside:
    the energy with the old lists equals the energy with fresh lists (the bond switches on)."""
    ff, params = ffield_tables("ffield.reax.cho")
    h = atom_types(ff, Atoms("H"))[0]
    c_bo = 0.01 * params["gp"][29]
    lo, hi = 0.5, 5.0  # BO'_raw(r) decreases with r: bisect BO'_raw = c_bo
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        raw = float(np.asarray(uncorrected(np.array([mid]), [h], [h], params)[0])[0])
        lo, hi = (mid, hi) if raw >= c_bo else (lo, mid)
    outside = Atoms("H2", positions=[[0, 0, 0], [0, 0, lo + 0.02]])
    inside = Atoms("H2", positions=[[0, 0, 0], [0, 0, lo - 0.02]])
    types = atom_types(ff, outside)
    lists = build_lists(outside.positions, None, False, types, params)
    assert lists.counts()["bond"] == 2  # a candidate, although LAMMPS would not list it
    assert _terms(outside, params, lists)["ebond"] == 0.0
    fresh = build_lists(inside.positions, None, False, types, params)
    a, b = _terms(inside, params, lists), _terms(inside, params, fresh)
    assert b["ebond"] < 0.0
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-12, abs=1e-14), k
