"""`reaxgrad vibrations`: the mode table, the JSON output (written atomically) and named
errors with exit status 2 and no traceback."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from ase.build import molecule
from ase.io import read, write

from reaxgrad.cli import main


def test_relax_table_and_json(tmp_path, capsys, cho):
    import reaxgrad
    from reaxgrad.md.vibrations import vibrations

    path = tmp_path / "methanol.xyz"
    write(path, molecule("CH3OH"))
    out = tmp_path / "modes.json"
    out.write_text("old")  # replaced
    argv = ["vibrations", str(path), "--ffield", cho, "--relax", "--fmax", "1e-5",
            "--output", str(out)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "frequency (cm^-1)" in table and "zero-point energy:" in table
    assert "(converged)" in table
    data = json.loads(out.read_text())
    assert sorted(os.listdir(tmp_path)) == ["methanol.xyz", "modes.json"]  # no temp file left
    assert data["units"]["hessian"] == "eV/A^2"
    assert data["units"]["frequencies"].startswith("cm^-1")
    assert data["convention"] == "consistent" and data["relaxation"]["converged"]
    assert data["max_force"] < 1e-5
    n = 6
    assert np.shape(data["modes"]) == (3 * n, n, 3)
    assert np.shape(data["hessian"]) == (3 * n, 3 * n)
    # the numbers are those of the library at the relaxed positions written out
    atoms = molecule("CH3OH")
    atoms.positions = np.array(data["positions"])
    atoms.calc = reaxgrad.ReaxFFCalculator(cho)
    ref = vibrations(atoms.calc, atoms)
    np.testing.assert_allclose(data["frequencies"], ref.frequencies, rtol=0, atol=1e-6)
    np.testing.assert_allclose(data["hessian"], ref.hessian, rtol=0, atol=1e-9)
    assert data["zero_point_energy"] == pytest.approx(ref.zero_point_energy(), abs=1e-9)
    assert f"{ref.zero_point_energy():.6f} eV" in table
    # every mode in the table, in order, with its frequency
    for k in (6, 17):
        assert f"{k:3d} " in table and f"{ref.frequencies[k]:17.4f}" in table
    assert ref.frequencies[6] > 400  # a minimum: the real modes are real


def test_imaginary_modes_are_marked_and_lammps_convention(tmp_path, capsys, cho):
    """ASE's symmetric ethanol relaxes (by symmetry) to a saddle point of this force field: one
    imaginary torsion, printed with an "i" as ASE prints it."""
    path = tmp_path / "ethanol.xyz"
    write(path, molecule("CH3CH2OH"))
    out = tmp_path / "ethanol.json"
    assert main(["vibrations", str(path), "--ffield", cho, "--relax", "--convention",
                 "lammps", "--output", str(out)]) == 0
    table = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["convention"] == "lammps"
    f = np.array(data["frequencies"])
    assert f[0] < -100  # the imaginary torsion
    assert np.abs(f[1:7]).max() < 3.0 and f[7] > 100
    assert f"{abs(f[0]):17.4f}i" in table
    assert "lammps convention" in table


def test_unrelaxed_structure_is_flagged(tmp_path, capsys, cho):
    path = tmp_path / "water.xyz"
    atoms = molecule("H2O")
    atoms.positions[1] += [0.05, 0.0, 0.0]
    write(path, atoms)
    assert main(["vibrations", str(path), "--ffield", cho, "--charge-method", "eem"]) == 0
    assert "not a stationary point: use --relax" in capsys.readouterr().out


def _error(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reaxgrad vibrations: error: ")
    return lines[0]


def test_errors_name_the_problem(tmp_path, capsys, cho):
    water = tmp_path / "water.xyz"
    write(water, molecule("H2O"))
    out = tmp_path / "keep.json"
    out.write_text("old")
    missing = tmp_path / "missing.xyz"
    assert str(missing) in _error(["vibrations", str(missing), "--ffield", cho], capsys)
    garbage = tmp_path / "garbage.xyz"
    garbage.write_text("this is not\nan xyz file\n")
    assert "garbage.xyz" in _error(["vibrations", str(garbage), "--ffield", cho,
                                    "--output", str(out)], capsys)
    nh3 = tmp_path / "nh3.xyz"
    write(nh3, molecule("NH3"))
    message = _error(["vibrations", str(nh3), "--ffield", cho], capsys)
    assert "nh3.xyz: element(s) N not in the force field" in message
    nan = tmp_path / "nan.xyz"
    nan.write_text("3\n\nO 0 0 0\nH 0.96 0 0\nH nan 0.9 0\n")
    assert read(nan).positions.shape == (3, 3)
    message = _error(["vibrations", str(nan), "--ffield", cho, "--output", str(out)], capsys)
    assert "nan.xyz line 5: position: atom 2 (H) has a non-finite position" in message
    bad_ff = tmp_path / "ffield.bad"
    bad_ff.write_text("header\n39 ! general\nnot-a-number ! p1\n")
    assert "ffield.bad" in _error(["vibrations", str(water), "--ffield", str(bad_ff)], capsys)
    assert "no-such-ffield" in _error(["vibrations", str(water), "--ffield",
                                       str(tmp_path / "no-such-ffield")], capsys)
    assert "--fmax" in _error(["vibrations", str(water), "--ffield", cho, "--relax",
                               "--fmax", "-1"], capsys)
    assert "no such directory" in _error(["vibrations", str(water), "--ffield", cho,
                                          "--output", str(tmp_path / "nope" / "x.json")],
                                         capsys)
    assert out.read_text() == "old"  # failed runs leave an existing output alone


def test_error_exit_status_from_the_shell(tmp_path, cho):
    result = subprocess.run(
        [sys.executable, "-m", "reaxgrad.cli", "vibrations", str(tmp_path / "none.xyz"),
         "--ffield", cho], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("reaxgrad vibrations: error: ")
    assert "none.xyz" in result.stderr
