"""The `reaxgrad` command: --version, info, demo, energy (tables, JSON, errors)."""
import json

import pytest

from reaxgrad import __version__
from reaxgrad.cli import main


def test_version_and_info(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("numpy", "backend", "C compiler", "GPU"):
        assert word in out


def test_demo_runs(capsys):
    assert main(["demo", "--atoms", "13", "--steps", "300"]) == 0
    out = capsys.readouterr().out
    assert "near-zero modes                        6" in out
    assert "1 trace(s)" in out


def test_energy_json_matches_the_model(tmp_path, capsys, cho):
    from ase.build import molecule
    from ase.io import write

    from reaxgrad.forcefields.reaxff.model import ReaxFF

    atoms = molecule("CH3CH2OH")
    path = tmp_path / "ethanol.xyz"
    write(path, atoms)
    assert main(["energy", str(path), "--ffield", cho, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ref = ReaxFF(cho).evaluate(atoms.positions, None, False, atoms.get_chemical_symbols())
    assert out["energy"] == pytest.approx(ref.energy, rel=1e-12)
    assert out["energy_terms"]["ebond"] == pytest.approx(ref.terms["ebond"], rel=1e-12)
    assert len(out["forces"]) == len(atoms) and len(out["charges"]) == len(atoms)
    assert main(["energy", str(path), "--ffield", cho]) == 0
    table = capsys.readouterr().out
    assert "total energy" in table and "ebond" in table and "eqeq" in table


def test_energy_errors_name_the_problem(tmp_path, cho, capsys):
    from ase.build import molecule
    from ase.io import write

    path = tmp_path / "nh3.xyz"
    write(path, molecule("NH3"))

    def error(argv):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("reaxgrad energy: error: ") and err.count("\n") == 1
        return err

    assert "nh3.xyz: element(s) N not in the force field" in error(
        ["energy", str(path), "--ffield", cho])
    assert "missing.xyz: no such file" in error(
        ["energy", str(tmp_path / "missing.xyz"), "--ffield", cho])
    bad = tmp_path / "ffield.bad"
    bad.write_text("header\n39 ! general\nnot-a-number ! p1\n")
    assert "ffield.bad line 3: expected a number for general parameter 1" in error(
        ["energy", str(path), "--ffield", str(bad)])
