"""`reaxgrad batch` on a real LocalCluster of worker processes: results equal serial single
points and `reaxgrad minimize`, failed structures are recorded and the batch goes on, a
worker or the driver killed with SIGKILL mid-batch loses and duplicates nothing, and a
database of another batch is refused. Chunks (several structures per Dask task) give the
results of one structure per task, record a failing structure on its own, and are written
whole or not at all."""
import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase import units
from ase.build import molecule
from ase.db import connect
from ase.io import read, write

from reaxgrad.cli import main

EV = units.kcal / units.mol  # eV per kcal/mol
MD = ["--timestep", "0.25", "--steps", "100", "--temperature", "300", "--seed", "7",
      "--interval", "50"]


def molecules(names, seed=0):
    out = []
    for k, name in enumerate(names):
        a = molecule(name)
        a.rattle(0.05, seed=seed + k)
        out.append(a)
    return out


def rows(db):
    """{source_index: row}, asserting that no source_index appears twice."""
    found = {}
    for row in connect(db).select():
        assert row.source_index not in found, f"source_index {row.source_index} twice"
        found[row.source_index] = row
    return found


def count_rows(db):
    return connect(db).count() if Path(db).exists() else 0


def batch(capsys, *argv):
    code = main(["batch", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_energy_rows_equal_serial_single_points_and_failures_are_recorded(tmp_path, cho,
                                                                           capsys):
    from reaxgrad.forcefields.reaxff.model import ReaxFF

    good = molecules(["CH4", "H2O", "CH3OH", "CH3CH2OH"])
    write(tmp_path / "a.extxyz", good)
    nan = molecule("CH4")
    nan.positions[1, 0] = np.nan
    gold = molecule("CH4")
    gold[0].symbol = "Au"
    write(tmp_path / "b.extxyz", [nan, gold, good[0]])
    with connect(tmp_path / "in.db") as src:  # an ASE database as an input too
        for a in molecules(["C2H6", "H2O"], seed=10):
            src.write(a)
    inputs = [tmp_path / "a.extxyz", tmp_path / "b.extxyz", tmp_path / "in.db"]
    out = tmp_path / "out.db"
    code, stdout, err = batch(capsys, "energy", *inputs, "--ffield", cho, "--db", out,
                              "--workers", "2", "--no-progress")
    assert code == 1  # some structures failed
    assert "9 structures" in stdout and "7 done, 2 failed" in stdout
    assert "structure 5 (" in err and "non-finite position" in err and "Au" in err
    found = rows(out)
    assert sorted(found) == list(range(9))
    structures = read(inputs[0], ":") + read(inputs[1], ":") + read(inputs[2], ":")
    sources = [(str(p), k) for p, n in zip(inputs, (4, 3, 2)) for k in range(n)]
    model = ReaxFF(cho, convention="lammps")  # reaxgrad energy's defaults: qeq, lammps
    for i, row in found.items():
        assert (row.source, row.source_frame, row.task) == (*sources[i], "energy")
        if i in (4, 5):
            assert row.status == "failed"
            continue
        assert row.status == "done" and "error" not in row
        atoms = structures[i]
        ref = model.evaluate(atoms.positions, atoms.cell.array, atoms.pbc,
                             atoms.get_chemical_symbols())
        assert abs(row.energy_kcal_mol - ref.energy) <= 1e-10
        assert abs(row.energy / EV - ref.energy) <= 1e-10
        np.testing.assert_allclose(row.forces / EV, ref.forces, rtol=0, atol=1e-10)
        np.testing.assert_allclose(row.charges, ref.charges, rtol=0, atol=1e-10)
        np.testing.assert_array_equal(row.positions, atoms.positions)
        assert row.data.energy_terms["ebond"] == pytest.approx(ref.terms["ebond"], abs=1e-10)
        assert row.wall_time > 0 and row.worker
    assert "non-finite position" in found[4].error and "line" in found[4].error
    assert "Au" in found[5].error and "not in the force field" in found[5].error
    # rerunning the same command skips everything; another command is refused
    code, stdout, _ = batch(capsys, "energy", *inputs, "--ffield", cho, "--db", out,
                            "--workers", "2", "--no-progress")
    assert code == 1 and "9 skipped" in stdout and len(rows(out)) == 9
    code, _, err = batch(capsys, "energy", *inputs, "--ffield", cho, "--db", out,
                         "--convention", "consistent", "--no-progress")
    assert code == 2 and "different batch" in err and "--convention" in err
    assert "Traceback" not in err


def test_chunked_rows_equal_unchunked_and_serial_and_failures_stay_per_structure(tmp_path,
                                                                                 cho, capsys):
    from reaxgrad.forcefields.reaxff.model import ReaxFF

    good = molecules(["CH4", "H2O", "CH3OH", "CH3CH2OH", "C2H6", "H2CO", "C2H4", "HCOOH"])
    nan = molecule("CH4")
    nan.positions[1, 0] = np.nan
    gold = molecule("CH4")
    gold[0].symbol = "Au"
    structures = good[:2] + [nan] + good[2:5] + [gold] + good[5:]  # 10: bad ones at 2 and 6
    write(tmp_path / "in.extxyz", structures)
    structures = read(tmp_path / "in.extxyz", ":")
    found = {}
    for chunk in ("1", "4"):  # chunks [0-3] [4-7] [8-9]: a failure inside two of them
        db = tmp_path / f"chunk{chunk}.db"
        code, stdout, err = batch(capsys, "energy", tmp_path / "in.extxyz", "--ffield", cho,
                                  "--db", db, "--workers", "1", "--chunk", chunk,
                                  "--no-progress")
        assert code == 1 and "8 done, 2 failed" in stdout, stdout + err
        found[chunk] = rows(db)
        assert sorted(found[chunk]) == list(range(10))
    model = ReaxFF(cho, convention="lammps")
    walls = set()
    for i in range(10):
        one, four = found["1"][i], found["4"][i]
        assert one.status == four.status == ("failed" if i in (2, 6) else "done")
        assert four.wall_time > 0 and four.source_frame == i
        walls.add(four.wall_time)
        if i in (2, 6):
            assert one.error == four.error
            continue
        atoms = structures[i]
        ref = model.evaluate(atoms.positions, atoms.cell.array, atoms.pbc,
                             atoms.get_chemical_symbols())
        for row in (one, four):
            assert abs(row.energy_kcal_mol - ref.energy) <= 1e-10
            np.testing.assert_allclose(row.forces / EV, ref.forces, rtol=0, atol=1e-10)
            np.testing.assert_allclose(row.charges, ref.charges, rtol=0, atol=1e-10)
        assert four.data.energy_terms == pytest.approx(one.data.energy_terms, abs=1e-10)
    assert len(walls) == 10  # each structure timed on its own
    assert "non-finite position" in found["4"][2].error
    assert "Au" in found["4"][6].error


def test_chunked_relaxations_equal_one_per_task(tmp_path, cho, capsys):
    write(tmp_path / "in.xyz", molecules(["CH3OH", "H2O", "CH4", "CH3OH"], seed=3))
    found = {}
    for chunk in ("1", "3"):
        db = tmp_path / f"chunk{chunk}.db"
        code, stdout, _ = batch(capsys, "minimize", tmp_path / "in.xyz", "--ffield", cho,
                                "--db", db, "--workers", "1", "--chunk", chunk,
                                "--no-progress")
        assert code == 0, stdout
        found[chunk] = rows(db)
    for i in range(4):
        one, three = found["1"][i], found["3"][i]
        assert one.opt_steps == three.opt_steps and three.converged
        assert abs(one.energy_kcal_mol - three.energy_kcal_mol) <= 1e-10
        np.testing.assert_allclose(three.positions, one.positions, rtol=0, atol=1e-10)
        np.testing.assert_allclose(three.charges, one.charges, rtol=0, atol=1e-10)


def _raise_for_frame_1(job, forcefield, atoms):
    if job.frame == 1:
        raise RuntimeError("breaks the whole task")
    from reaxgrad import batch_cmd

    return batch_cmd._real_run_task(job, forcefield, atoms)


def test_a_chunk_failing_as_a_whole_is_retried_one_structure_per_task(tmp_path, cho, capsys,
                                                                       monkeypatch):
    """What escapes the per-structure guard (or kills the worker past the retries) fails the
    whole task: its structures are then resubmitted one per task, so only the culprit is
    recorded as failed. A thread worker in this process sees the patched function."""
    from distributed import LocalCluster

    from reaxgrad import batch_cmd

    monkeypatch.setattr(batch_cmd, "_real_run_task", batch_cmd.run_task, raising=False)
    monkeypatch.setattr(batch_cmd, "run_task", _raise_for_frame_1)
    write(tmp_path / "in.xyz", molecules(["CH4", "H2O", "CH3OH", "H2O"]))
    db = tmp_path / "out.db"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        code, stdout, err = batch(capsys, "energy", tmp_path / "in.xyz", "--ffield", cho,
                                  "--db", db, "--chunk", "3", "--scheduler-address",
                                  cluster.scheduler_address, "--no-progress")
    assert code == 1 and "3 done, 1 failed" in stdout, stdout + err
    found = rows(db)
    assert [found[i].status for i in range(4)] == ["done", "failed", "done", "done"]
    assert "RuntimeError: breaks the whole task" in found[1].error


def test_automatic_chunk_size():
    from reaxgrad.batch_cmd import CHUNK_MAX, ChunkSizer

    assert ChunkSizer(5, 2).size(1000) == 5 and ChunkSizer(5, 2).size(3) == 3
    auto = ChunkSizer(None, 2)
    assert auto.size(1000) == 1  # nothing known yet: a structure could take hours
    auto.observe([0.0013] * 10)  # single points of small molecules
    assert auto.size(1000) == 63 and auto.size(5000) == CHUNK_MAX
    assert auto.size(160) == 10 and auto.size(5) == 1
    auto.observe([0.5] * 64)  # 0.5 s each: ~2 s per chunk
    assert auto.size(1000) == 4
    auto.observe([30.0] * 64)
    assert auto.size(1000) == 1


def test_bad_input_exits_2_before_any_work(tmp_path, cho, capsys):
    write(tmp_path / "a.xyz", molecules(["H2O"]))
    out = tmp_path / "out.db"
    code, _, err = batch(capsys, "energy", tmp_path / "a.xyz", "--ffield",
                         tmp_path / "missing.ff", "--db", out)
    assert code == 2 and "missing.ff" in err and "no such force-field file" in err
    code, _, err = batch(capsys, "energy", tmp_path / "nope.xyz", "--ffield", cho, "--db", out)
    assert code == 2 and "nope.xyz" in err and "no such file" in err
    code, _, err = batch(capsys, "minimize", tmp_path / "a.xyz", "--ffield", cho, "--db", out,
                         "--fmax", "-1")
    assert code == 2 and "--fmax" in err
    code, _, err = batch(capsys, "energy", tmp_path / "a.xyz", "--ffield", cho, "--db", out,
                         "--workers", "2", "--cluster", "slurm")
    assert code == 2 and "--workers" in err
    assert not out.exists() and "Traceback" not in err


def test_minimize_task_agrees_with_reaxgrad_minimize(tmp_path, cho, capsys):
    write(tmp_path / "in.xyz", molecules(["CH3OH"], seed=3))
    assert main(["minimize", str(tmp_path / "in.xyz"), "--ffield", cho, "-o",
                 str(tmp_path / "min.extxyz"), "--no-progress"]) == 0
    ref = read(tmp_path / "min.extxyz")
    code, stdout, _ = batch(capsys, "minimize", tmp_path / "in.xyz", "--ffield", cho, "--db",
                            tmp_path / "out.db", "--workers", "1", "--no-progress")
    assert code == 0, stdout
    (row,) = rows(tmp_path / "out.db").values()
    assert row.status == "done" and row.converged
    assert row.opt_steps == ref.info["minimize_steps"] and row.opt_steps > 5
    assert row.energy == pytest.approx(ref.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(row.positions, ref.positions, atol=1e-6)
    np.testing.assert_allclose(row.forces, ref.get_forces(), atol=1e-6)
    np.testing.assert_allclose(row.charges, ref.get_charges(), atol=1e-6)


def test_md_task_ends_where_reaxgrad_md_ends(tmp_path, cho, capsys):
    write(tmp_path / "in.xyz", molecules(["CH3OH"], seed=4))
    options = ["--timestep", "0.25", "--steps", "20", "--temperature", "300", "--seed", "3",
               "--ensemble", "langevin"]
    assert main(["md", str(tmp_path / "in.xyz"), "--ffield", cho, *options, "--interval", "10",
                 "--trajectory", str(tmp_path / "t.extxyz"), "--quiet"]) == 0
    last = read(tmp_path / "t.extxyz", -1)
    code, stdout, _ = batch(capsys, "md", tmp_path / "in.xyz", "--ffield", cho, "--db",
                            tmp_path / "out.db", *options, "--interval", "10", "--workers", "1",
                            "--no-progress")
    assert code == 0, stdout
    (row,) = rows(tmp_path / "out.db").values()
    assert row.md_steps == 20 and row.md_time == pytest.approx(5.0)
    np.testing.assert_allclose(row.positions, last.positions, atol=1e-6)
    np.testing.assert_allclose(row.momenta, last.get_momenta(), atol=1e-6)
    assert row.energy == pytest.approx(last.get_potential_energy(), abs=1e-7)
    np.testing.assert_allclose(row.forces, last.get_forces(), atol=1e-6)
    thermo = row.data.thermo
    assert thermo[:, 0].tolist() == [0, 10, 20]
    assert thermo[-1, 3] == pytest.approx(row.energy_kcal_mol, abs=1e-9)
    assert thermo[-1, 2] == pytest.approx(row.temperature)


# ----------------------------------------------------------------------------- kills

KINDS = ["CH4", "H2O", "CH3OH"]
REPEATS = 4  # 12 structures of 3 kinds: each MD ~1 s, so a kill lands mid-batch


def md_inputs(tmp_path):
    write(tmp_path / "in.extxyz", molecules(KINDS) * REPEATS)
    return tmp_path / "in.extxyz", read(tmp_path / "in.extxyz", ":")


def md_reference(cho, structures):
    """Final energy and positions of each kind's MD run, computed here serially."""
    from reaxgrad.batch_cmd import run_structure
    from reaxgrad.inputs import load_model

    args = argparse.ArgumentParser()
    from reaxgrad.md_cmd import add_options

    add_options(args)
    args.add_argument("--interval", type=int)
    options = vars(args.parse_args(MD))
    model = load_model(cho, convention="consistent")
    out = []
    for atoms in structures[:len(KINDS)]:
        model._guess = None
        res = run_structure("md", options, model, atoms, source="reference")
        out.append((res["keys"]["energy_kcal_mol"], res["atoms"].positions))
    return out


def check_md_rows(db, n, reference):
    found = rows(db)
    assert sorted(found) == list(range(n))
    for i, row in found.items():
        assert row.status == "done" and row.md_steps == 100
        energy, positions = reference[i % len(KINDS)]
        assert row.energy_kcal_mol == pytest.approx(energy, rel=1e-9, abs=1e-8)
        np.testing.assert_allclose(row.positions, positions, atol=1e-7)


def wait_for_rows(db, n, proc, timeout=180):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if count_rows(db) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"the batch ended early: {proc.communicate()}")
        time.sleep(0.05)
    pytest.fail("no rows appeared")


def batch_command(inp, cho, db, *extra):
    return [sys.executable, "-m", "reaxgrad.cli", "batch", "md", str(inp), "--ffield", cho,
            "--db", str(db), *MD, "--no-progress", *extra]


def test_worker_killed_mid_batch_loses_nothing(tmp_path, cho):
    from reaxgrad.cluster import open_client

    inp, structures = md_inputs(tmp_path)
    db = tmp_path / "out.db"
    with open_client(argparse.Namespace(workers=2)) as client:
        # two structures per task: the killed worker's chunk is recomputed elsewhere
        proc = subprocess.Popen(batch_command(inp, cho, db, "--chunk", "2",
                                              "--scheduler-address",
                                              client.scheduler.address),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_rows(db, 2, proc)
            pids = sorted(client.run(os.getpid).values())
            os.kill(pids[0], signal.SIGKILL)
            at_kill = count_rows(db)
            assert proc.poll() is None and at_kill < len(structures), "killed too late"
            stdout, stderr = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, stderr
        client.wait_for_workers(2, timeout=60)
        assert pids[0] not in client.run(os.getpid).values()  # the nanny started a new one
    assert f"{len(structures)} done, 0 failed" in stdout
    check_md_rows(db, len(structures), md_reference(cho, structures))


def kill_driver_after_rows(command, db, rows_written) -> int:
    """Run the batch driver, SIGKILL it once `rows_written` rows are in the database, and
    return how many rows it left. It runs in its own session, so that its orphaned worker
    processes are removed with the process group."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        wait_for_rows(db, rows_written, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
    return count_rows(db)


def test_driver_killed_mid_batch_then_rerun_gives_every_row_once(tmp_path, cho, capsys):
    inp, structures = md_inputs(tmp_path)
    db = tmp_path / "out.db"
    command = batch_command(inp, cho, db, "--workers", "2")
    partial = kill_driver_after_rows(command, db, 2)
    assert 2 <= partial < len(structures), "killed too late"
    rows(db)  # what is there is whole and unique
    code = main(command[3:])
    stdout = capsys.readouterr().out
    assert code == 0
    assert f"{len(structures) - partial} done, 0 failed, {partial} skipped" in stdout
    check_md_rows(db, len(structures), md_reference(cho, structures))


def test_driver_killed_mid_batch_with_chunks_then_rerun_gives_every_row_once(tmp_path, cho,
                                                                              capsys):
    """Chunks of 3: the kill leaves whole chunks (one transaction each); the rerun, chunked
    automatically, recomputes only the missing structures."""
    inp, structures = md_inputs(tmp_path)
    db = tmp_path / "out.db"
    command = batch_command(inp, cho, db, "--workers", "2", "--chunk", "3")
    partial = kill_driver_after_rows(command, db, 3)
    assert 3 <= partial < len(structures), "killed too late"
    assert partial % 3 == 0, f"{partial} rows: a chunk written in part"
    chunks = {}
    for i in rows(db):
        chunks.setdefault(i // 3, []).append(i)
    assert all(len(v) == 3 for v in chunks.values()), chunks
    code = main(command[3:-2])  # without --chunk: re-chunked automatically
    stdout = capsys.readouterr().out
    assert code == 0
    assert f"{len(structures) - partial} done, 0 failed, {partial} skipped" in stdout
    check_md_rows(db, len(structures), md_reference(cho, structures))


def test_a_new_sqlite_database_appears_whole(tmp_path):
    """The database file appears only once ASE's tables and version row are in it (made
    beside it and renamed), so a reader polling it, or a rerun after a kill during its
    creation, never meets a half-made file."""
    from reaxgrad.batch_cmd import connect_db

    path = tmp_path / "new.db"
    connect_db(path)
    assert path.exists()
    assert connect(path).count() == 0 and connect(path).metadata == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.db"]
