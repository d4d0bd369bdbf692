"""`reaxgrad md`: outputs (trajectory frames with results, thermo log, species), resume after
SIGKILL giving byte-identical outputs, and named errors for bad input with nothing left behind."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule
from ase.io import read, write

from reaxgrad.cli import main


def _water_box(path):
    sys.path.insert(0, str(Path(__file__).parent / "forcefields"))
    import structures

    write(path, structures.water_box())
    return path


def _md_args(inp, cho, out, *extra, ext="extxyz"):
    return [
        "md", str(inp), "--ffield", cho, "--ensemble", "langevin", "--timestep", "0.25",
        "--temperature", "300", "--seed", "7", "--interval", "5",
        "--trajectory", str(out / f"traj.{ext}"), "--log", str(out / "md.log"),
        "--species", str(out / "species.out"), "--quiet", *extra]


def test_md_writes_frames_log_and_species(tmp_path, cho):
    inp = _water_box(tmp_path / "water.extxyz")
    assert main(_md_args(inp, cho, tmp_path, "--steps", "20")) == 0
    frames = read(tmp_path / "traj.extxyz", index=":")
    assert [f.info["step"] for f in frames] == [0, 5, 10, 15, 20]
    first, last = frames[0], frames[-1]
    np.testing.assert_allclose(first.positions, read(inp).positions, atol=1e-7)
    assert np.abs(last.positions - first.positions).max() > 1e-3
    for f in (first, last):
        assert f.get_potential_energy() < 0  # eV
        assert f.get_forces().shape == (24, 3)
        assert f.get_charges().shape == (24,)
        assert abs(f.get_charges().sum()) < 1e-6  # extxyz keeps 8 decimals
        assert f.get_momenta().any()
    # the log: header and one row per frame; T, PE, KE, total, P consistent
    rows = np.loadtxt(tmp_path / "md.log")
    assert rows.shape == (5, 8)
    np.testing.assert_allclose(rows[:, 0], [0, 5, 10, 15, 20])
    np.testing.assert_allclose(rows[:, 1], rows[:, 0] * 0.25)
    assert rows[0, 2] == pytest.approx(300.0, rel=1e-6)  # exact initial temperature
    np.testing.assert_allclose(rows[:, 3] + rows[:, 4], rows[:, 5], atol=1e-6)
    from ase import units

    assert rows[-1, 3] * units.kcal / units.mol == pytest.approx(
        last.get_potential_energy(), rel=1e-8)
    species = (tmp_path / "species.out").read_text().splitlines()
    assert species[0].split()[1:4] == ["Timestep", "No_Moles", "No_Specs"]
    assert "H2O" in species[0] and species[1].split()[:4] == ["0", "8", "1", "8"]


@pytest.mark.parametrize("ext", ["extxyz", "traj"])
def test_md_resumes_after_sigkill_with_identical_outputs(tmp_path, cho, ext):
    inp = _water_box(tmp_path / "water.extxyz")
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    ref.mkdir(), killed.mkdir()
    steps = ["--steps", "120", "--restart"]
    assert main(_md_args(inp, cho, ref, *steps, str(ref / "ck.pkl"),
                         "--checkpoint-every", "10", ext=ext)) == 0
    cmd = [sys.executable, "-m", "reaxgrad.cli", *_md_args(
        inp, cho, killed, *steps, str(killed / "ck.pkl"), "--checkpoint-every", "10",
        ext=ext)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        log = killed / "md.log"
        if (killed / "ck.pkl").exists() and log.exists() and len(
                log.read_text().splitlines()) >= 8:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len((killed / "md.log").read_text().splitlines())
    assert 8 <= partial < 26  # killed in the middle
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for name in (f"traj.{ext}", "md.log", "species.out"):
        assert (killed / name).read_bytes() == (ref / name).read_bytes(), name
    frames = read(killed / f"traj.{ext}", index=":")
    assert [f.info.get("step", k * 5) for k, f in enumerate(frames)] == list(range(0, 121, 5))
    # a third run finds the work done and changes nothing
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already at step 120" in again.stderr
    assert (killed / f"traj.{ext}").read_bytes() == (ref / f"traj.{ext}").read_bytes()


def test_md_refuses_to_resume_a_different_run(tmp_path, cho, capsys):
    inp = _water_box(tmp_path / "water.extxyz")
    args = _md_args(inp, cho, tmp_path, "--steps", "5", "--restart", str(tmp_path / "ck.pkl"))
    assert main(args) == 0
    changed = [a if a != "300" else "350" for a in args]
    assert main(changed) == 2
    err = capsys.readouterr().err
    assert "reaxgrad md: error:" in err and "temperature" in err and "Traceback" not in err


def test_md_initial_velocities_from_the_input_momenta(tmp_path, cho):
    atoms = molecule("CH3CH2OH")
    rng = np.random.default_rng(3)
    atoms.set_momenta(rng.normal(scale=0.05, size=(9, 3)))
    masses = atoms.get_masses()
    masses[0] = 13.5  # extxyz masses are honoured
    atoms.set_masses(masses)
    write(tmp_path / "eth.extxyz", atoms)
    assert main(["md", str(tmp_path / "eth.extxyz"), "--ffield", cho, "--timestep", "0.1",
                 "--steps", "0", "--interval", "1", "--trajectory",
                 str(tmp_path / "t.extxyz"), "--quiet"]) == 0
    frame, given = read(tmp_path / "t.extxyz"), read(tmp_path / "eth.extxyz")
    assert given.get_masses()[0] == 13.5
    np.testing.assert_allclose(frame.get_momenta(), given.get_momenta(), rtol=0, atol=1e-8)
    assert frame.get_masses()[0] == 13.5


BAD = {
    "nan coordinate": ("3\n\nO 0 0 0\nH 0.96 nan 0\nH -0.24 0.93 0\n", "xyz", "nan"),
    "unknown element": ("3\n\nO 0 0 0\nH 0.96 0 0\nXe -0.24 0.93 0\n", "xyz", "Xe"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_md_bad_input_named_error_no_output(tmp_path, cho, case, capsys):
    text, ext, word = BAD[case]
    inp = tmp_path / f"bad.{ext}"
    inp.write_text(text)
    out = tmp_path / "out"
    code = main(["md", str(inp), "--ffield", cho, "--timestep", "0.1", "--steps", "5",
                 "--interval", "1", "--trajectory", str(out / "t.extxyz"),
                 "--restart", str(out / "ck.pkl"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "reaxgrad md: error:" in err and word in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_md_nan_force_field_value_named_error(tmp_path, cho, capsys):
    lines = Path(cho).read_text().splitlines(keepends=True)
    # the first atom line's second number (covalent radius) becomes nan
    k = next(i for i, line in enumerate(lines) if line.split()[:1] == ["C"])
    tokens = lines[k].split()
    lines[k] = lines[k].replace(tokens[1], "nan", 1)
    bad = tmp_path / "ffield.bad"
    bad.write_text("".join(lines))
    write(tmp_path / "w.xyz", molecule("H2O"))
    code = main(["md", str(tmp_path / "w.xyz"), "--ffield", str(bad), "--timestep", "0.1",
                 "--steps", "5", "--interval", "1", "--trajectory",
                 str(tmp_path / "out" / "t.extxyz"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "ffield.bad" in err and f"line {k + 1}" in err
    assert not (tmp_path / "out").exists()
