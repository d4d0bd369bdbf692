"""Tests for reaxgrad.datasets.dft (extxyz / ASE db -> structures + items) and dft_export
(geo + trainset items -> per-structure energies and forces)."""
import dataclasses

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db import connect
from ase.geometry import cellpar_to_cell
from ase.io import write

from reaxgrad.datasets import read_geo, reaxff_cell
from reaxgrad.datasets.dft import EV_TO_KCAL, DatasetError, read_dft, sanitize_name
from reaxgrad.datasets.dft_export import attach_targets, write_dft
from reaxgrad.datasets.geo_write import write_geo
from reaxgrad.datasets.trainset import TrainItem, read_trainset
from reaxgrad.datasets.trainset_write import write_trainset

CELLPAR = [5.1, 6.2, 7.3, 75.0, 85.0, 100.0]


def _frame(symbols, energy, seed, cell=None, **info):
    rng = np.random.default_rng(seed)
    n = len(Atoms(symbols))
    if cell is None:
        atoms = Atoms(symbols, positions=rng.random((n, 3)) * 3.0)
    else:
        atoms = Atoms(symbols, scaled_positions=rng.random((n, 3)), cell=cell, pbc=True)
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=rng.normal(size=(n, 3)))
    atoms.info.update(info)
    return atoms


def _frames():
    cell = cellpar_to_cell(CELLPAR)  # ASE's frame, not ReaxFF's
    crystals = [_frame("Si2O4", -40.0 - 0.5 * k, k, cell) for k in range(3)]
    waters = [_frame("OH2", -14.2 + 0.1 * k, 10 + k, name="water a") for k in range(2)]
    return crystals + waters


def _plain(item):
    return dataclasses.replace(item, path="", line=0, text="")


def _round_trip(tmp_path, structures, items):
    write_geo(tmp_path / "geo", structures)
    write_trainset(tmp_path / "trainset.in", items)
    back = read_geo(tmp_path / "geo")
    sizes = {a.info["name"]: len(a) for a in back}
    return back, [_plain(i) for i in read_trainset(tmp_path / "trainset.in", sizes).items]


def test_extxyz_round_trip_through_geo_and_trainset(tmp_path):
    frames = _frames()
    write(tmp_path / "dft.extxyz", frames)
    structures, items = read_dft(tmp_path / "dft.extxyz")
    names = ["dft_0", "dft_1", "dft_2", "water_a", "water_a_2"]
    assert [a.info["name"] for a in structures] == names
    back, read_items = _round_trip(tmp_path, structures, items)
    assert read_items == items
    energies = {i.structures: i.targets[0] for i in items if i.category == "ENERGY"}
    # "min": relative to the lowest energy of each composition (dft_2, water_a)
    assert energies.keys() == {("dft_0", "dft_2"), ("dft_1", "dft_2"), ("water_a_2", "water_a")}
    assert energies[("dft_0", "dft_2")] == pytest.approx(1.0 * EV_TO_KCAL, abs=1e-9)
    assert energies[("water_a_2", "water_a")] == pytest.approx(0.1 * EV_TO_KCAL, abs=1e-9)
    rotation = np.linalg.solve(frames[0].cell.array, reaxff_cell(*CELLPAR))
    for frame, atoms in zip(frames, back):
        assert atoms.pbc.all() == frame.pbc.all()
        np.testing.assert_allclose(atoms.get_all_distances(mic=True),
                                   frame.get_all_distances(mic=True), atol=2e-5)
        if frame.pbc.all():
            np.testing.assert_allclose(atoms.cell.cellpar(), CELLPAR, atol=1e-5)
        forces = np.array([i.targets for i in items
                           if i.category == "FORCE" and i.structures[0] == atoms.info["name"]])
        turn = rotation if frame.pbc.all() else np.eye(3)  # forces rotate with the cell
        np.testing.assert_allclose(forces, frame.get_forces() @ turn * EV_TO_KCAL, atol=1e-6)
        # frame-free check against the geo file read back: F_i . (r_j - r_i) is invariant
        d_back = atoms.get_all_distances(mic=True, vector=True)[0]
        d_orig = frame.get_all_distances(mic=True, vector=True)[0]
        np.testing.assert_allclose(np.einsum("ij,ij->i", forces, d_back),
                                   np.einsum("ij,ij->i", frame.get_forces() * EV_TO_KCAL,
                                             d_orig), atol=1e-3)


def test_ase_db_input_with_keys_and_weights(tmp_path):
    path = tmp_path / "set.db"
    with connect(path) as db:
        for k, frame in enumerate(_frames()[:3]):
            frame.calc = None
            data = {"dft_forces": np.full((len(frame), 3), float(k)),
                    "mulliken": np.linspace(-1, 1, len(frame))}
            db.write(frame, key_value_pairs={"name": f"si o {k}", "dft_energy": -k * 1.0,
                                             "energy_weight": 0.5 + k}, data=data)
    structures, items = read_dft(path, energy_key="dft_energy", forces_key="dft_forces",
                                 charges_key="mulliken", reference="structure:si_o_0",
                                 force_weight=3.0, charge_weight=0.2)
    assert [a.info["name"] for a in structures] == ["si_o_0", "si_o_1", "si_o_2"]
    energy = [i for i in items if i.category == "ENERGY"]
    assert [(i.structures, i.weight) for i in energy] == [(("si_o_1", "si_o_0"), 1.5),
                                                          (("si_o_2", "si_o_0"), 2.5)]
    assert energy[1].targets[0] == pytest.approx(-2.0 * EV_TO_KCAL)
    forces = [i for i in items if i.category == "FORCE"]
    assert len(forces) == 18 and {i.weight for i in forces} == {3.0}
    charges = [i for i in items if i.category == "CHARGE" and i.structures == ("si_o_2",)]
    assert [i.targets[0] for i in charges] == pytest.approx(np.linspace(-1, 1, 6))
    assert {i.weight for i in charges} == {0.2}


def test_energy_references(tmp_path):
    frames = _frames()
    frames[1].info["energy_reference"] = frames[3].info["energy_reference"] = "none"
    frames[4].info["energy_reference"] = "structure:dft_0"  # explicit: any composition
    write(tmp_path / "dft.extxyz", frames)
    _, items = read_dft(tmp_path / "dft.extxyz", reference="structure:2", forces=False)
    energy = {i.structures: i.targets[0] for i in items}
    assert energy.keys() == {("dft_0", "dft_2"), ("water_a_2", "dft_0")}
    assert energy[("water_a_2", "dft_0")] == pytest.approx((-14.1 + 40.0) * EV_TO_KCAL)
    refs = {"Si": -100.0, "O": -5.0, "H": -1.0}
    _, items = read_dft(tmp_path / "dft.extxyz", reference="elements", element_energies=refs,
                        forces=False)
    first = next(i for i in items if i.structures == ("dft_0",))
    assert first.factors == (1.0,)
    assert first.targets[0] == pytest.approx((-40.0 + 200.0 + 20.0) * EV_TO_KCAL)
    _, items = read_dft(tmp_path / "dft.extxyz", reference="absolute", forces=False)
    assert next(i for i in items if i.structures == ("dft_2",)).targets[0] == \
        pytest.approx(-41.0 * EV_TO_KCAL)
    _, items = read_dft(tmp_path / "dft.extxyz", reference="none", forces=False)
    assert [i.structures for i in items] == [("water_a_2", "dft_0")]
    del frames[3].info["energy_reference"]
    write(tmp_path / "dft.extxyz", frames)
    with pytest.raises(DatasetError, match=r"structure 3 \(water_a\).*composition"):
        read_dft(tmp_path / "dft.extxyz", reference="structure:dft_0", forces=False)
    with pytest.raises(DatasetError, match="no reference energy for"):
        read_dft(tmp_path / "dft.extxyz", reference="elements", element_energies={"Si": 1.0})
    with pytest.raises(ValueError, match="expected one of"):
        read_dft(tmp_path / "dft.extxyz", reference="lowest")


def test_names_are_sanitised_and_unique():
    assert sanitize_name("a b/c") == "a_b_c"
    assert sanitize_name("-x") == "_x"
    assert sanitize_name("ENERGY") == "s_ENERGY"
    assert sanitize_name("endforces") == "s_endforces"
    assert sanitize_name("hsh-SH1.15") == "hsh-SH1.15"


def _bad(tmp_path, frame, index=2, **kwargs):
    frames = _frames()[:2] + [frame]
    write(tmp_path / "bad.extxyz", frames)
    with pytest.raises(DatasetError) as exc:
        read_dft(tmp_path / "bad.extxyz", **kwargs)
    where = f"{tmp_path / 'bad.extxyz'}: structure {index} (bad_{index}): "
    assert str(exc.value).startswith(where)
    return str(exc.value)


def test_errors_name_file_structure_and_field(tmp_path):
    no_calc = _frames()[0]
    no_calc.calc = None
    assert "energy: missing energy" in _bad(tmp_path, no_calc)
    only_energy = _frames()[0]
    only_energy.calc = SinglePointCalculator(only_energy, energy=-1.0)
    assert "forces: missing forces" in _bad(tmp_path, only_energy)
    assert "REF_f: missing forces" in _bad(tmp_path, _frames()[0], index=0,
                                           forces_key="REF_f", reference="none")
    assert "q: missing charges" in _bad(tmp_path, _frames()[0], index=0, charges_key="q")
    nan = _frames()[0]
    nan.calc.results["energy"] = float("nan")
    assert "energy: NaN or infinite" in _bad(tmp_path, nan)
    inf = _frames()[0]
    inf.calc.results["forces"][1, 2] = np.inf
    assert "forces: NaN or infinite" in _bad(tmp_path, inf)
    moved = _frames()[0]
    moved.positions[0, 0] = np.nan
    assert "positions: non-finite" in _bad(tmp_path, moved)
    unknown = _frames()[0]
    unknown.numbers[0] = 0
    assert "symbols: unknown element" in _bad(tmp_path, unknown)
    weight = _frames()[0]
    weight.info["energy_weight"] = 0.0
    assert "energy_weight: weights must be > 0" in _bad(tmp_path, weight)
    with pytest.raises(DatasetError, match="no such file"):
        read_dft(tmp_path / "absent.extxyz")
    (tmp_path / "junk.extxyz").write_text("not a structure\n")
    with pytest.raises(DatasetError, match="junk.extxyz: file: cannot read"):
        read_dft(tmp_path / "junk.extxyz")


def test_missing_values_allowed_when_asked(tmp_path):
    frames = _frames()
    frames[1].calc = SinglePointCalculator(frames[1], energy=-40.5)
    write(tmp_path / "dft.extxyz", frames)
    _, items = read_dft(tmp_path / "dft.extxyz", allow_missing=True)
    assert {i.structures[0] for i in items if i.category == "FORCE"} == \
        {"dft_0", "dft_2", "water_a", "water_a_2"}


def test_trainset_targets_back_to_structures_and_again(tmp_path):
    structures, items = read_dft(_write(tmp_path, _frames()))
    extra = [TrainItem("ENERGY", 4.0, (-7.5,), ("dft_0",)),  # an absolute energy
             TrainItem("DISTANCE", 0.1, (1.5,), ("dft_0",), atoms=(0, 1))]
    exported, unused = attach_targets(structures, items + extra)
    # dft_0 has its absolute energy: its relative item has no per-structure form left
    assert [(i.category, i.structures) for i in unused] == [("ENERGY", ("dft_0", "dft_2")),
                                                            ("DISTANCE", ("dft_0",))]
    assert exported[0].get_potential_energy() == pytest.approx(-7.5 / EV_TO_KCAL)
    for fmt in ("extxyz", "db"):
        write_dft(tmp_path / f"data.{fmt}", exported, fmt)
        again, again_items = read_dft(tmp_path / f"data.{fmt}", reference="none")
        assert [a.info["name"] for a in again] == [a.info["name"] for a in structures]
        assert [i.structures for i in again_items if i.category == "ENERGY"] == \
            [("dft_0",), ("dft_1", "dft_2"), ("water_a_2", "water_a")]
        assert {_key(i): i for i in map(_plain, again_items)}.keys() == \
            {_key(i) for i in items + extra[:1] if _key(i)[1] != ("dft_0", "dft_2")}
        before = {_key(i): i for i in items}
        for item in again_items:
            if item.category == "FORCE":  # extxyz: 8 decimals
                assert item.targets == pytest.approx(before[_key(item)].targets, abs=1e-6)


def _key(item):
    return item.category, item.structures, item.atoms


def _write(tmp_path, frames):
    write(tmp_path / "dft.extxyz", frames)
    return tmp_path / "dft.extxyz"


def test_public_disulfide_set_round_trip(tmp_path, jaxreaxff_data):
    base = jaxreaxff_data / "disulfide"
    geo = read_geo(base / "geo")
    original = read_trainset(base / "trainset.in", {a.info["name"]: len(a) for a in geo})
    exported, unused = attach_targets(geo, original)
    assert {i.category for i in unused} == {"DISTANCE", "ANGLE", "TORSION"}
    write_dft(tmp_path / "data.extxyz", exported)
    structures, items = read_dft(tmp_path / "data.extxyz", allow_missing=True)
    back, read_items = _round_trip(tmp_path, structures, items)
    kept = [_plain(i) for i in original.items if i.category in ("ENERGY", "FORCE")]
    assert {_key(i) for i in read_items} == {_key(i) for i in kept}
    by_key = {_key(i): i for i in read_items}
    for item in kept:
        other = by_key[_key(item)]
        assert other.weight == item.weight and other.factors == item.factors
        np.testing.assert_allclose(other.targets, item.targets, atol=1e-6)
    for a, b in zip(geo, back):
        assert a.info["name"] == b.info["name"]
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-12)
