"""reaxgrad.inputs: structure reading and checks, force-field loading (NaN values named by
line and parameter), element checks, the command runner and atomic outputs."""
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.io import read, write

from reaxgrad.errors import InputFileError
from reaxgrad.inputs import (
    InputError,
    TrajectoryWriter,
    check_elements,
    check_structure,
    load_model,
    output_format,
    read_structure,
    run_command,
    total_charge,
    write_structure_atomic,
)


def edited_ffield(cho, tmp_path, symbol, column, token, name="ffield.bad"):
    """A copy of ``cho`` with number ``column`` (1-based, after the symbol) of the first line of
    atom ``symbol`` replaced by ``token``; returns (path, 1-based line number)."""
    lines = Path(cho).read_text().splitlines(keepends=True)
    k = next(i for i, line in enumerate(lines) if line.split()[:1] == [symbol])
    words = lines[k].split()
    words[column] = token
    lines[k] = " " + "  ".join(words) + "\n"
    path = tmp_path / name
    path.write_text("".join(lines))
    return path, k + 1


# ----------------------------------------------------------------------------- structures


def test_read_structure_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.xyz: no such file") as info:
        read_structure(tmp_path / "missing.xyz")
    assert info.value.path == str(tmp_path / "missing.xyz")
    bad = tmp_path / "garbage.xyz"
    bad.write_text("this is not\na structure file\n")
    with pytest.raises(InputError, match="garbage.xyz: cannot read it as a structure"):
        read_structure(bad)
    write(tmp_path / "two.extxyz", [molecule("H2O"), molecule("CH4")])
    assert read_structure(tmp_path / "two.extxyz", 1).get_chemical_formula() == "CH4"
    assert read_structure(tmp_path / "two.extxyz", -2).get_chemical_formula() == "H2O"
    with pytest.raises(InputError, match="two.extxyz: has no structure at index 5"):
        read_structure(tmp_path / "two.extxyz", 5)


def test_read_structure_keeps_extxyz_masses_and_momenta(tmp_path):
    atoms = molecule("CH3CH2OH")
    masses = atoms.get_masses()
    masses[2] = 2.014  # a deuterium
    atoms.set_masses(masses)
    atoms.set_momenta(np.random.default_rng(0).normal(size=(len(atoms), 3)))
    write(tmp_path / "eth.extxyz", atoms)
    back = read_structure(tmp_path / "eth.extxyz")
    np.testing.assert_allclose(back.get_masses(), masses, rtol=1e-7)
    np.testing.assert_allclose(back.get_momenta(), atoms.get_momenta(), rtol=1e-7, atol=1e-9)


def test_read_structure_reads_geo_files(tmp_path):
    geo = tmp_path / "geo"
    geo.write_text(
        "BIOGRF 200\nDESCRP water\n"
        "HETATM     1 O                  0.00000   0.00000   0.00000 O    1 0  0.00000\n"
        "HETATM     2 H                  0.96000   0.00000   0.00000 H    1 0  0.00000\n"
        "HETATM     3 H                 -0.24000   0.93000   0.00000 H    1 0  0.00000\n"
        "END\n")
    atoms = read_structure(geo)
    assert atoms.get_chemical_symbols() == ["O", "H", "H"]
    with pytest.raises(InputError, match="has 1 structures, index 3 is out of range"):
        read_structure(geo, 3)


def test_nan_coordinates_name_atom_and_line(tmp_path):
    path = tmp_path / "bad.xyz"
    path.write_text("3\ncomment\nO 0 0 0\nH 0.96 nan 0\nH -0.24 0.93 0\n")
    with pytest.raises(InputError) as info:
        read_structure(path)
    message = str(info.value)
    assert message.startswith(f"{path} line 4: position: atom 1 (H)")
    assert info.value.line == 4 and info.value.field == "position"
    # the second frame of a two-frame file: 5 lines for frame 0, then count + comment
    path = tmp_path / "frames.xyz"
    path.write_text("3\n\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n"
                    "3\n\nO 0 0 0\nH 0.96 0 0\nH -0.24 inf 0\n")
    assert read_structure(path, 0).get_chemical_symbols() == ["O", "H", "H"]
    with pytest.raises(InputError, match=r"line 10: position: atom 2 \(H\)"):
        read_structure(path, 1)


def test_check_structure_refuses_unusable_structures():
    with pytest.raises(InputError, match="src: the structure has no atoms"):
        check_structure(Atoms(), "src")
    atoms = molecule("H2O", vacuum=3.0, pbc=True)
    check_structure(atoms, "src")  # fine as is
    bad = atoms.copy()
    bad.cell[1, 1] = np.nan
    with pytest.raises(InputError, match="src: cell: the cell has non-finite values"):
        check_structure(bad, "src")
    bad = atoms.copy()
    bad.cell[2] = 0.0
    with pytest.raises(InputError, match="periodic along cell vector 3, which is zero"):
        check_structure(bad, "src")
    bad = atoms.copy()
    bad.set_masses([16.0, np.nan, 1.0])
    with pytest.raises(InputError, match=r"masses: atom 1 \(H\) has mass nan"):
        check_structure(bad, "src")
    bad = atoms.copy()
    bad.set_momenta([[0, 0, 0], [0, 0, 0], [0, np.inf, 0]])
    with pytest.raises(InputError, match=r"momenta: atom 2 \(H\) has a non-finite momentum"):
        check_structure(bad, "src")


def test_total_charge_prefers_option_then_info_never_initial_charges():
    atoms = molecule("H2O")
    atoms.set_initial_charges([1.0, 0.0, 0.0])
    assert total_charge(atoms) == 0.0
    atoms.info["charge"] = -1
    assert total_charge(atoms) == -1.0
    assert total_charge(atoms, 2) == 2.0
    with pytest.raises(InputError, match="charge"):
        total_charge(atoms, float("nan"))


# ----------------------------------------------------------------------------- force fields


def test_nan_in_a_force_field_parameter_is_named(cho, tmp_path):
    # number 4 of C's first line is r_vdw (LAMMPS reads it): refused at read time
    path, line = edited_ffield(cho, tmp_path, "C", 4, "nan")
    with pytest.raises(InputFileError) as info:
        load_model(path)
    assert isinstance(info.value, ValueError) and info.value.lineno == line
    assert str(info.value).startswith(f"{path} line {line}: ")
    assert "'nan' as value 4 (r_vdw)" in str(info.value)
    # an overflowing number is not finite either
    path, line = edited_ffield(cho, tmp_path, "H", 2, "1e999", "ffield.inf")
    with pytest.raises(InputFileError, match=rf"line {line}: value 2 \(valency\) of atom 'H' "
                       r"\(line 1 of 4\) is '1e999', which is not a finite number"):
        load_model(path)


def test_nan_in_an_edited_force_field_object_is_named(cho):
    from reaxgrad.forcefields.ffield import read_ffield

    ff = read_ffield(cho)
    load_model(ff)  # the shipped file is fine
    bond = ff.bonds[1]
    bond.values[13] = float("nan")
    with pytest.raises(InputFileError, match=rf"line {bond.lineno}: value 14 \(p_bo2\) of "
                       rf"bond {bond.types[0]}-{bond.types[1]} is nan"):
        load_model(ff)


def test_load_model_errors(cho, tmp_path):
    with pytest.raises(InputError, match="nope: no such force-field file"):
        load_model(tmp_path / "nope")
    with pytest.raises(InputError, match="charge_method must be one of"):
        load_model(cho, charge_method="magic")
    model = load_model(cho, charge_method="none", convention="lammps")
    assert model.charge_method is None and model.convention == "lammps"
    assert load_model(cho).convention == "consistent"


def test_check_elements_names_missing_elements(cho):
    model = load_model(cho)
    types = check_elements(model, molecule("CH3OH"), "m.xyz")
    assert sorted(set(np.asarray(model.elements)[types])) == ["C", "H", "O"]
    with pytest.raises(InputError, match=r"nh3.xyz: element\(s\) N not in the force field"):
        check_elements(model, molecule("NH3"), "nh3.xyz")


# ----------------------------------------------------------------------------- commands


def test_run_command_turns_bad_input_into_status_2(capsys):
    def fail(exc):
        def fn(args):
            raise exc
        return fn

    assert run_command("demo", lambda args: 7, None) == 7
    cases = [(InputError("bad\nthing", path="x.xyz", line=3), "x.xyz line 3: bad thing"),
             (ValueError("plain"), "plain"),
             (FileNotFoundError(2, "No such file or directory", "gone.txt"),
              "gone.txt: No such file or directory")]
    for exc, text in cases:
        assert run_command("demo", fail(exc), None) == 2
        err = capsys.readouterr().err
        assert err == f"reaxgrad demo: error: {text}\n"
    assert run_command("demo", fail(KeyboardInterrupt()), None) == 130
    assert capsys.readouterr().err == "reaxgrad demo: interrupted\n"
    with pytest.raises(ZeroDivisionError):  # a bug is not bad input: it keeps its traceback
        run_command("demo", fail(ZeroDivisionError()), None)


# ----------------------------------------------------------------------------- outputs


def test_output_format_is_checked_from_the_name(tmp_path):
    assert output_format(tmp_path / "a.extxyz") == "extxyz"
    assert output_format(tmp_path / "a.traj", multiple=True) == "traj"
    with pytest.raises(InputError, match=r"--output: ASE cannot write the format 'foo'"):
        output_format(tmp_path / "a.foo")
    with pytest.raises(InputError, match="--output: cannot tell the file format"):
        output_format(tmp_path / "noextension")
    with pytest.raises(InputError, match="--trajectory: the format 'vasp' holds one structure"):
        output_format(tmp_path / "POSCAR", option="--trajectory", multiple=True)


def _leftovers(folder):
    return sorted(p.name for p in Path(folder).iterdir() if ".tmp" in p.name)


def test_write_structure_atomic_replaces_or_leaves_intact(tmp_path):
    path = tmp_path / "sub" / "out.extxyz"
    write_structure_atomic(path, molecule("H2O"))
    assert read(path).get_chemical_formula() == "H2O"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(Exception):  # noqa: B017 - whatever ASE raises for a non-structure
        write_structure_atomic(path, "not atoms")
    assert read(path).get_chemical_formula() == "H2O"  # the old output is intact
    assert _leftovers(path.parent) == []
    write_structure_atomic(tmp_path / "POSCAR", molecule("CH4", vacuum=2.0))
    assert read(tmp_path / "POSCAR").get_chemical_formula() == "CH4"


@pytest.mark.parametrize("name", ["t.extxyz", "t.traj"])
def test_trajectory_writer_streams_then_renames(tmp_path, name):
    from ase.calculators.singlepoint import SinglePointCalculator

    path = tmp_path / name
    frames = []
    with TrajectoryWriter(path) as traj:
        for k in range(3):
            atoms = molecule("H2O")
            atoms.positions[0, 0] += 0.1 * k
            atoms.calc = SinglePointCalculator(atoms, energy=-float(k),
                                               forces=np.full((3, 3), float(k)))
            traj.write(atoms)
            frames.append(atoms)
            assert not path.exists()  # only the temporary file grows
    back = read(path, ":")
    assert [f.get_potential_energy() for f in back] == [0.0, -1.0, -2.0]
    np.testing.assert_allclose(back[2].positions, frames[2].positions)
    np.testing.assert_allclose(back[1].get_forces(), 1.0)
    assert _leftovers(tmp_path) == []
    with pytest.raises(RuntimeError), TrajectoryWriter(tmp_path / ("x" + path.suffix)) as traj:
        traj.write(frames[0])
        raise RuntimeError("stop")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_energy_command_names_a_nan_force_field_value(cho, tmp_path, capsys):
    from reaxgrad.cli import main

    path, line = edited_ffield(cho, tmp_path, "O", 4, "nan")
    write(tmp_path / "w.xyz", molecule("H2O"))
    assert main(["energy", str(tmp_path / "w.xyz"), "--ffield", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"reaxgrad energy: error: {path} line {line}: expected 8 numbers "
                            "for atom 'O' (line 1 of 4), got 'nan' as value 4 (r_vdw)\n")
