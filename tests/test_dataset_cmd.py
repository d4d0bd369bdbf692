"""The `reaxgrad dataset convert` command: both directions, output files, one-line errors."""
import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from reaxgrad.cli import main
from reaxgrad.datasets import read_geo
from reaxgrad.datasets.dft import EV_TO_KCAL
from reaxgrad.datasets.trainset import read_trainset


def _frames(n=3):
    rng = np.random.default_rng(1)
    frames = []
    for k in range(n):
        atoms = Atoms("Si2O4", scaled_positions=rng.random((6, 3)),
                      cell=[[5.0, 0, 0], [1.0, 5.5, 0], [0.5, 0.7, 6.0]], pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=-40.0 - k,
                                           forces=rng.normal(size=(6, 3)))
        frames.append(atoms)
    return frames


def _items(path):
    return [dataclasses.replace(i, path="", line=0, text="") for i in read_trainset(path).items]


def test_extxyz_to_geo_and_back(tmp_path, capsys):
    write(tmp_path / "dft.extxyz", _frames())
    out = tmp_path / "fit"
    assert main(["dataset", "convert", str(tmp_path / "dft.extxyz"), "--out", str(out),
                 "--reference", "structure:dft_0", "--energy-weight", "2",
                 "--force-weight", "5"]) == 0
    assert "3 structures" in capsys.readouterr().out
    structures = read_geo(out / "geo")
    items = _items(out / "trainset.in")
    assert [a.info["name"] for a in structures] == ["dft_0", "dft_1", "dft_2"]
    energy = [i for i in items if i.category == "ENERGY"]
    assert [(i.structures, i.weight) for i in energy] == [(("dft_1", "dft_0"), 2.0),
                                                         (("dft_2", "dft_0"), 2.0)]
    assert energy[1].targets[0] == pytest.approx(-2.0 * EV_TO_KCAL, abs=1e-9)
    assert sum(i.category == "FORCE" and i.weight == 5.0 for i in items) == 18

    for fmt in ("extxyz", "db"):
        back = tmp_path / fmt
        assert main(["dataset", "convert", str(out / "geo"), "--trainset",
                     str(out / "trainset.in"), "--out", str(back), "--format", fmt]) == 0
        frames = read(back / f"data.{fmt}", index=":")
        assert len(frames) == 3
        # dft_0 is the energy zero; the others lie at their differences
        assert [a.get_potential_energy() for a in frames] == pytest.approx([0, -1, -2])
        assert frames[2].get_forces() == pytest.approx(
            np.array([i.targets for i in items if i.structures == ("dft_2",)
                      and i.category == "FORCE"]) / EV_TO_KCAL)
        again = tmp_path / f"again_{fmt}"
        assert main(["dataset", "convert", str(back / f"data.{fmt}"), "--out",
                     str(again)]) == 0
        _assert_same(_items(again / "trainset.in"), items)


def _assert_same(a, b):
    assert [(i.category, i.structures, i.factors, i.atoms, i.weight) for i in a] == \
        [(i.category, i.structures, i.factors, i.atoms, i.weight) for i in b]
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.targets, y.targets, atol=1e-6)


def test_elements_reference_from_the_command_line(tmp_path):
    write(tmp_path / "dft.extxyz", _frames(2))
    assert main(["dataset", "convert", str(tmp_path / "dft.extxyz"), "--out",
                 str(tmp_path / "o"), "--reference", "elements", "--element-energies",
                 "Si=-100,O=-5", "--no-forces"]) == 0
    items = _items(tmp_path / "o" / "trainset.in")
    assert [i.structures for i in items] == [("dft_0",), ("dft_1",)]
    assert items[0].targets[0] == pytest.approx((-40.0 + 220.0) * EV_TO_KCAL)


@pytest.mark.parametrize("args, message", [
    (["missing.extxyz"], "missing.extxyz: file: no such file"),
    (["{dft}", "--reference", "lowest"], "reference: expected one of"),
    (["{dft}", "--reference", "structure:nope"], "no structure named 'nope'"),
    (["{dft}", "--reference", "elements", "--element-energies", "Si"], "El=eV pairs"),
    (["{dft}", "--format", "extxyz"], "--format extxyz converts one geo file"),
    (["{dft}", "--trainset", "{dft}"], "--trainset goes with a geo input"),
    (["{geo}", "--format", "geo"], "is a geo file"),
    (["{geo}", "--reference", "min"], "--reference applies to extxyz"),
    (["{nanforces}"], "structure 0 (nanforces_0): forces: NaN or infinite value"),
    (["{geo}", "--trainset", "{badtrainset}"], "bad.in line 2: ENERGY"),
])
def test_errors_are_one_line(tmp_path, capsys, args, message):
    write(tmp_path / "dft.extxyz", _frames(2))
    bad = _frames(1)
    bad[0].calc.results["forces"][0, 0] = np.nan
    write(tmp_path / "nanforces.extxyz", bad)
    (tmp_path / "geo").write_text("BIOGRF 200\nDESCRP a\nHETATM     1 H    0.0 0.0 0.0\nEND\n")
    (tmp_path / "bad.in").write_text("ENERGY\n1.0 + a/1\nENDENERGY\n")
    paths = {"dft": tmp_path / "dft.extxyz", "geo": tmp_path / "geo",
             "nanforces": tmp_path / "nanforces.extxyz", "badtrainset": tmp_path / "bad.in"}
    argv = [a.format(**paths) for a in args]
    assert main(["dataset", "convert", *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reaxgrad dataset: error: ") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "o").exists()


def test_exit_status_of_the_installed_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "reaxgrad.cli", "dataset", "convert",
                           str(tmp_path / "none.db"), "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("reaxgrad dataset: error: ") and "Traceback" not in proc.stderr


def test_public_disulfide_set_through_extxyz(tmp_path, jaxreaxff_data):
    base = jaxreaxff_data / "disulfide"
    assert main(["dataset", "convert", str(base / "geo"), "--trainset",
                 str(base / "trainset.in"), "--out", str(tmp_path / "x")]) == 0
    assert main(["dataset", "convert", str(tmp_path / "x" / "data.extxyz"), "--out",
                 str(tmp_path / "y"), "--allow-missing"]) == 0
    original = [i for i in _items(base / "trainset.in") if i.category in ("ENERGY", "FORCE")]
    back = _items(tmp_path / "y" / "trainset.in")
    key = lambda i: (i.category, i.structures, i.atoms)  # noqa: E731
    assert sorted(map(key, back)) == sorted(map(key, original))
    by_key = {key(i): i for i in back}
    for item in original:
        other = by_key[key(item)]
        assert (other.weight, other.factors) == (item.weight, item.factors)
        np.testing.assert_allclose(other.targets, item.targets, atol=1e-6)
    geo = {a.info["name"]: a for a in read_geo(base / "geo")}
    for atoms in read_geo(tmp_path / "y" / "geo"):
        np.testing.assert_array_equal(atoms.positions, geo[atoms.info["name"]].positions)
