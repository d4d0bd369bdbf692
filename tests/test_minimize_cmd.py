"""`reaxgrad minimize`: the relaxed structure with its results, exit status on (non-)convergence,
trajectories, cell relaxation under pressure, named errors for malformed input with nothing
left behind, and minima equal to LAMMPS's `min_style fire` ones."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import units
from ase.build import bulk, molecule
from ase.geometry import find_mic
from ase.io import read, write

from reaxgrad.cli import main

EV = units.kcal / units.mol  # eV per kcal/mol
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def lo():
    return pytest.importorskip("reaxgrad.forcefields.lammps_oracle")


@pytest.fixture(scope="module")
def cho(lo):
    try:
        return str(lo.potential_path("ffield.reax.cho"))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no shipped force field: {exc}")


def run(capsys, *argv):
    code = main(["minimize", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def files(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def test_minimize_writes_structure_results_and_trajectory(tmp_path, cho, capsys):
    from reaxgrad.forcefields.reaxff.model import ReaxFF

    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)
    write(tmp_path / "in.xyz", atoms)
    code, out, err = run(capsys, tmp_path / "in.xyz", "--ffield", cho, "-o",
                         tmp_path / "out.extxyz", "--trajectory", tmp_path / "t.extxyz",
                         "--no-progress")
    assert code == 0 and err == ""
    final = read(tmp_path / "out.extxyz")
    steps = final.info["minimize_steps"]
    assert final.info["minimize_converged"] is True and steps > 5
    assert f"converged after {steps} steps" in out and "kcal/mol" in out
    # the stored results are the consistent-convention energy, forces, charges there (eV)
    ref = ReaxFF(cho, convention="consistent").evaluate(
        final.positions, None, False, final.get_chemical_symbols())
    assert final.get_potential_energy() == pytest.approx(ref.energy * EV, abs=1e-6)
    np.testing.assert_allclose(final.get_forces(), ref.forces * EV, atol=1e-6)
    np.testing.assert_allclose(final.get_charges(), ref.charges, atol=1e-6)
    assert np.linalg.norm(final.get_forces(), axis=1).max() < 0.05
    start = ReaxFF(cho, convention="consistent").evaluate(
        atoms.positions, None, False, atoms.get_chemical_symbols())
    assert final.get_potential_energy() < start.energy * EV - 0.1
    frames = read(tmp_path / "t.extxyz", ":")
    assert len(frames) == steps + 1  # the start and one frame per step
    np.testing.assert_allclose(frames[0].positions, atoms.positions, atol=1e-7)
    np.testing.assert_allclose(frames[-1].positions, final.positions, atol=1e-7)
    assert frames[0].get_potential_energy() == pytest.approx(start.energy * EV, abs=1e-6)
    assert files(tmp_path) == ["in.xyz", "out.extxyz", "t.extxyz"]


def test_fire_and_lbfgs_find_the_same_minimum(tmp_path, cho, capsys):
    atoms = molecule("CH3OH")
    atoms.rattle(0.05, seed=2)
    write(tmp_path / "in.xyz", atoms)
    energies = []
    for optimizer in ("fire", "lbfgs"):
        out = tmp_path / f"{optimizer}.extxyz"
        code, _, _ = run(capsys, tmp_path / "in.xyz", "--ffield", cho, "-o", out, "--fmax",
                         "1e-4", "--optimizer", optimizer, "--no-progress")
        assert code == 0
        energies.append(read(out).get_potential_energy())
    assert energies[0] == pytest.approx(energies[1], abs=1e-7)


def test_not_converged_writes_the_last_structure_and_exits_1(tmp_path, cho, capsys):
    write(tmp_path / "in.xyz", molecule("CH3CH2OH"))
    code, out, err = run(capsys, tmp_path / "in.xyz", "--ffield", cho, "-o",
                         tmp_path / "out.extxyz", "--steps", "3", "--fmax", "1e-6",
                         "--no-progress")
    assert code == 1
    assert "NOT converged after 3 steps" in out
    assert err.startswith("reaxgrad minimize: warning: not converged after 3 steps")
    final = read(tmp_path / "out.extxyz")
    assert final.info["minimize_converged"] is False and final.info["minimize_steps"] == 3


def test_relax_cell_reaches_the_pressure(tmp_path, cho, capsys):
    atoms = bulk("C", "diamond", a=3.60)
    atoms.rattle(0.03, seed=4)
    write(tmp_path / "c.extxyz", atoms)
    volumes = {}
    fmax = 0.02
    for gpa in (0.0, 50.0):
        out = tmp_path / f"p{gpa:g}.extxyz"
        code, text, _ = run(capsys, tmp_path / "c.extxyz", "--ffield", cho, "-o", out,
                            "--relax-cell", "--pressure", gpa, "--fmax", fmax, "--no-progress")
        assert code == 0 and "enthalpy" in text and "stress" in text
        final = read(out)
        volumes[gpa] = final.get_volume()
        stress = final.get_stress(voigt=False)  # eV/Å^3, ASE's sign: -pressure at equilibrium
        # the cell rows of the generalized force are ~ V (stress + p) / N < fmax
        tolerance = 2 * fmax * len(final) / final.get_volume()
        np.testing.assert_allclose(stress, -gpa * units.GPa * np.eye(3), atol=tolerance)
        assert np.linalg.norm(final.get_forces(), axis=1).max() < fmax
    assert volumes[50.0] < volumes[0.0]  # diamond is very stiff here (~400 GPa at a = 3.61 Å)


# ----------------------------------------------------------------------------- bad input

BAD = {  # name: (input file text, input name, extra options, words in the message)
    "nan coordinate": ("3\n\nO 0 0 0\nH 0.96 nan 0\nH -0.24 0.93 0\n", "bad.xyz", [],
                       ["bad.xyz line 4: position: atom 1 (H)"]),
    "unknown element": ("3\n\nO 0 0 0\nH 0.96 0 0\nXe -0.24 0.93 0\n", "xe.xyz", [],
                        ["xe.xyz: element(s) Xe not in the force field"]),
    "missing input": (None, "missing.xyz", [], ["missing.xyz: no such file"]),
    "molecule with --relax-cell": ("3\n\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n", "w.xyz",
                                   ["--relax-cell"], ["--relax-cell needs a cell periodic"]),
    "unknown output format": ("3\n\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n", "w.xyz",
                              ["-o", "{tmp}/out/relaxed.nonsense"],
                              ["relaxed.nonsense: --output: ASE cannot write"]),
    "single-frame trajectory": ("3\n\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n", "w.xyz",
                                ["--trajectory", "{tmp}/out/POSCAR"],
                                ["POSCAR: --trajectory: the format 'vasp' holds one"]),
    "negative fmax": ("3\n\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n", "w.xyz",
                      ["--fmax", "-1"], ["--fmax must be positive"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_named_error_status_2_nothing_written(tmp_path, cho, capsys, case):
    text, name, extra, words = BAD[case]
    if text is not None:
        (tmp_path / name).write_text(text)
    extra = [e.format(tmp=tmp_path) for e in extra]
    argv = [tmp_path / name, "--ffield", cho, "--trajectory", tmp_path / "out" / "t.extxyz",
            "-o", tmp_path / "out" / "relaxed.extxyz", *extra]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("reaxgrad minimize: error: ") and err.count("\n") == 1
    for word in words:
        assert word in err
    assert not (tmp_path / "out").exists()


def test_nan_force_field_value_named_error(tmp_path, cho, capsys):
    lines = Path(cho).read_text().splitlines(keepends=True)
    k = next(i for i, line in enumerate(lines) if line.split()[:1] == ["H"])
    words = lines[k].split()
    words[4] = "nan"  # H's r_vdw, which LAMMPS and the model read
    lines[k] = " " + "  ".join(words) + "\n"
    bad = tmp_path / "ffield.bad"
    bad.write_text("".join(lines))
    write(tmp_path / "w.xyz", molecule("H2O"))
    code, _, err = run(capsys, tmp_path / "w.xyz", "--ffield", bad, "-o",
                       tmp_path / "out.extxyz")
    assert code == 2
    assert err == (f"reaxgrad minimize: error: {bad} line {k + 1}: expected 8 numbers for "
                   "atom 'H' (line 1 of 4), got 'nan' as value 4 (r_vdw)\n")
    assert files(tmp_path) == ["ffield.bad", "w.xyz"]


def test_bad_input_through_the_installed_command_has_no_traceback(tmp_path, cho):
    (tmp_path / "bad.xyz").write_text("2\n\nC 0 0 0\nO nan 0 1.1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "reaxgrad.cli", "minimize", "bad.xyz", "--ffield", cho, "-o",
         "out.extxyz"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("reaxgrad minimize: error: bad.xyz line 4: position: atom 1 (O) has "
                           "a non-finite position (nan, 0.0, 1.1)\n")
    assert files(tmp_path) == ["bad.xyz"]


# ----------------------------------------------------------------------------- LAMMPS


def _minimize_lammps_convention(tmp_path, capsys, cho, atoms, optimizer):
    """Our minimum (kcal/mol, positions) with LAMMPS's forces, to fmax 1e-5 eV/Å."""
    write(tmp_path / "start.extxyz", atoms)
    code, out, _ = run(capsys, tmp_path / "start.extxyz", "--ffield", cho, "-o",
                       tmp_path / "min.extxyz", "--convention", "lammps", "--fmax", "1e-5",
                       "--optimizer", optimizer, "--steps", "5000", "--no-progress")
    assert code == 0, out
    final = read(tmp_path / "min.extxyz")
    return final.get_potential_energy() / EV, final.positions


def test_molecule_minimum_equals_lammps_fire(tmp_path, capsys, cho, lo):
    atoms = molecule("CH3CH2OH")
    ref = lo.minimize_reaxff(atoms, cho, min_style="fire", etol=0.0, ftol=1e-8,
                             maxiter=10000, maxeval=100000, qeq_tolerance=1e-10)
    assert ref["fmax"] < 1e-5  # LAMMPS's own minimum is tight (kcal/mol/Å)
    energy, positions = _minimize_lammps_convention(tmp_path, capsys, cho, atoms, "fire")
    assert energy == pytest.approx(ref["energy"], abs=1e-4)
    # the same geometry up to a rigid motion (free molecules drift and turn differently)
    def distances(x):
        return np.linalg.norm(x[:, None] - x[None], axis=-1)

    np.testing.assert_allclose(distances(positions), distances(ref["positions"]), atol=1e-3)


@pytest.mark.parametrize("name", ["water_box", "water_box_triclinic"])
def test_periodic_minimum_equals_lammps_fire(tmp_path, capsys, cho, lo, name):
    """Liquid water in an orthorhombic and in a triclinic cell. ReaxFF's energy jumps by up to
    ~5e-3 kcal/mol where a pair crosses a bond-order or hydrogen-bond cutoff, so nearby minima
    of these glassy systems differ by such jumps, and a minimizer started far away may stop on
    the other side of one. LAMMPS needs 20,000-30,000 FIRE steps from the built structures
    (minutes); their minima are stored (tests/data, provenance in the files). Here LAMMPS's
    FIRE, continued from the stored minimum, must stay there, and our minimizer, started
    0.002 Å away (rattled), must reach the same minimum."""
    stored = read(DATA / f"{name}_lammps_min.extxyz")
    ref = lo.minimize_reaxff(stored, cho, min_style="fire", etol=0.0, ftol=1e-8, maxiter=200,
                             maxeval=100000, qeq_tolerance=1e-10)
    assert ref["fmax"] < 1e-4
    assert ref["energy"] == pytest.approx(lo.run_reaxff(stored, cho)["energy"], abs=1e-5)
    start = stored.copy()
    start.rattle(0.002, seed=1)
    energy, positions = _minimize_lammps_convention(tmp_path, capsys, cho, start, "lbfgs")
    assert energy == pytest.approx(ref["energy"], abs=1e-4)
    shift = find_mic(positions - ref["positions"], stored.cell, stored.pbc)[0]
    assert np.linalg.norm(shift, axis=1).max() < 5e-3


def test_ctrl_c_exits_130_and_leaves_no_file(tmp_path, cho):
    import signal
    import time

    write(tmp_path / "in.xyz", molecule("CH3CH2OH"))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "reaxgrad.cli", "minimize", "in.xyz", "--ffield", cho, "-o",
         "out/min.extxyz", "--trajectory", "out/t.extxyz", "--fmax", "1e-12", "--steps",
         "1000000", "--optimizer", "fire", "--no-progress"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (out.exists() and any(out.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.2)  # until the trajectory's temporary file exists: the run is under way
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and stdout == ""
    assert stderr == "reaxgrad minimize: interrupted\n"
    assert files(out) == []  # neither the output nor a partial trajectory
