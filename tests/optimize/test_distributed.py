"""Distributed fitting on a real LocalCluster of 2 worker processes (reaxgrad.cluster): the loss,
its gradient and the reports equal the serial ones bit for bit, an in-loop relaxation on the
workers equals the serial one, a worker killed with SIGKILL in the middle of an evaluation
costs nothing, and a 2-step `reaxgrad fit --workers 2` writes the serial ffield_best.

The problem has two clusters (small molecules; a 144-atom water cluster) and ENERGY items
that subtract structures of different clusters, so the loss is not a sum over clusters."""
import json
import os
import signal
import threading
import time
from argparse import Namespace

import numpy as np
import pytest

pytest.importorskip("distributed")

from reaxgrad.cli import main  # noqa: E402
from reaxgrad.cluster import open_client  # noqa: E402
from reaxgrad.forcefields.ffield import read_ffield, write_ffield  # noqa: E402
from reaxgrad.forcefields.params_file import ParamLine, map_params, param_values  # noqa: E402
from reaxgrad.optimize.data import load_problem_inputs  # noqa: E402
from reaxgrad.optimize.distributed import DaskExecutor  # noqa: E402
from reaxgrad.optimize.parameters import ParameterMap  # noqa: E402
from reaxgrad.optimize.problem import FitProblem  # noqa: E402
from reaxgrad.optimize.relax import Relaxer  # noqa: E402

MOLECULES = ("H2O", "CH4", "C2H6", "CH3OH", "C2H4", "H2CO", "CO2", "HCOOH", "CH3CH2OH", "C2H2",
             "CH3CHO", "H2")
RELAXED = ("H2O", "CH3OH", "water48")
# (section, atom symbols, parameter number, factor of the start): bond r_s and De_s, atom r_s
FITTED = ((3, ("C", "H"), 1, 1.05), (3, ("O", "H"), 1, 0.95), (3, ("C", "O"), 1, 1.04),
          (2, ("C",), 1, 1.02), (2, ("O",), 1, 0.98))


def _water_cluster(shape=(4, 4, 3), spacing=3.1, seed=0):
    """48 randomly turned water molecules on a grid: 144 atoms, a cluster of its own."""
    from ase import Atoms
    from ase.build import molecule

    rng = np.random.default_rng(seed)
    positions, symbols = [], []
    for i, j, k in np.ndindex(*shape):
        w = molecule("H2O")
        w.rotate(rng.uniform(0, 360), rng.normal(size=3))
        positions.append(w.positions + spacing * np.array([i, j, k]))
        symbols += w.get_chemical_symbols()
    return Atoms(symbols, positions=np.concatenate(positions))


def _atoms():
    from ase.build import molecule

    out = []
    for name in MOLECULES:
        out.append(molecule(name))
        out[-1].info["name"] = name
    for name in ("CH4", "H2O", "CH3OH", "C2H6"):
        a = molecule(name)
        a.positions[1] = a.positions[0] + 1.2 * (a.positions[1] - a.positions[0])
        a.info["name"] = f"{name}_s120"
        out.append(a)
    water = _water_cluster()
    water.info["name"] = "water48"
    out.append(water)
    for a in out:
        a.center(vacuum=5.0)
        a.info["relax_steps"] = 40 if a.info["name"] in RELAXED else 0
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, cho_ffield):
    """geo, trainset.in, params and a perturbed ffield; targets from the shipped ffield."""
    from reaxgrad.datasets.geo_write import write_geo
    from reaxgrad.datasets.trainset import TrainItem
    from reaxgrad.datasets.trainset_write import write_trainset
    from reaxgrad.fit_demo import _record_index
    from reaxgrad.optimize.data import structures_from_atoms

    folder = tmp_path_factory.mktemp("distributed_inputs")
    truth = read_ffield(cho_ffield)
    atoms = _atoms()
    write_geo(folder / "geo", atoms)
    keys = [(s, _record_index(truth, s, sym), n) for s, sym, n, _ in FITTED]
    lines = [ParamLine(*k, 0.001, -1e9, 1e9) for k in keys]
    true_values = param_values(truth, map_params(truth, lines))
    (folder / "params").write_text("".join(
        f"{k[0]} {k[1]} {k[2]} 0.001 {0.8 * v:.6f} {1.2 * v:.6f}\n"
        for k, v in zip(keys, true_values)))
    structures = structures_from_atoms(atoms, truth)
    probe = FitProblem(ParameterMap(truth, lines), structures, {"train": []})
    energy, charges, forces = (np.asarray(a) for a in probe._outputs(
        true_values, True, *probe._args()))
    slot, start = probe.layout.structure_slot, probe.layout.atom_start
    index = {s.name: k for k, s in enumerate(structures)}
    e = {s.name: float(energy[slot[k]]) for k, s in enumerate(structures)}
    items = [TrainItem("ENERGY", 2.0, (e["water48"] / 48 - e["H2O"],), ("water48", "H2O"),
                       (1.0 / 48, -1.0)),  # across the two clusters
             TrainItem("ENERGY", 1.0, (e["water48"] / 48 - e["CH3OH"] + 10.0,),
                       ("water48", "CH3OH"), (1.0 / 48, -1.0))]
    for name in MOLECULES:
        items.append(TrainItem("ENERGY", 5.0, (e[name],), (name,), (1.0,)))
    for name in ("CH4", "H2O", "CH3OH", "C2H6"):
        items.append(TrainItem("ENERGY", 1.0, (e[f"{name}_s120"] - e[name],),
                               (f"{name}_s120", name), (1.0, -1.0)))
    for name in ("CH3OH_s120", "C2H6", "water48"):  # FORCES: every atom of a structure
        k = index[name]
        for atom in range(structures[k].n_atoms):
            f = forces[start[k] + atom]
            items.append(TrainItem("FORCE", 2.0, tuple(float(x) for x in f), (name,),
                                   atoms=(atom,)))
    for name in ("H2O", "water48", "CH3CH2OH"):
        items.append(TrainItem("CHARGE", 0.05, (float(charges[start[index[name]]]),), (name,),
                               atoms=(0,)))
    items.append(TrainItem("DISTANCE", 0.02, (0.97,), ("H2O",), atoms=(0, 1)))
    write_trainset(folder / "trainset.in", items)
    pmap = ParameterMap(truth, str(folder / "params"))
    write_ffield(pmap.forcefield(pmap.initial * np.array([f[3] for f in FITTED])),
                 folder / "ffield_start")
    return {"init_FF": str(folder / "ffield_start"), "params": str(folder / "params"),
            "geo": str(folder / "geo"), "train_file": str(folder / "trainset.in")}


def _problem(inputs):
    ff = read_ffield(inputs["init_FF"])
    structures, sets = load_problem_inputs(ff, inputs["geo"], inputs["train_file"])
    return FitProblem(ParameterMap(ff, inputs["params"]), structures, sets)


@pytest.fixture(scope="module")
def client():
    with open_client(Namespace(workers=2)) as c:
        c.wait_for_workers(2, timeout=120)
        yield c


@pytest.fixture(scope="module")
def serial(inputs):
    """Serial loss, gradient, evaluation at a θ off the start, from a fresh problem."""
    problem = _problem(inputs)
    theta = problem.pmap.initial * 1.01
    loss, grad = problem.loss_and_grad(theta)
    return theta, loss, grad, problem.evaluate(theta)


def _distributed(inputs, client):
    problem = _problem(inputs)
    problem.executor = DaskExecutor(client, problem)
    return problem


def test_loss_gradient_and_evaluation_on_two_workers_equal_serial(inputs, client, serial):
    theta, loss, grad, evaluation = serial
    problem = _distributed(inputs, client)
    try:
        assert len(problem.clusters) == 2
        energy = problem.tables["train"]["ENERGY"]
        owner = {k: c for c, members in enumerate(problem.clusters) for k in members}
        assert any(len({owner[problem.names[s]] for s in it.structures}) == 2
                   for it in energy.items)  # the loss couples the clusters
        got_loss, got_grad = problem.loss_and_grad(theta)
        assert abs(got_loss - loss) <= 1e-9 * abs(loss)
        assert got_loss == loss and np.array_equal(got_grad, grad)  # bit for bit
        assert np.count_nonzero(grad) == len(grad)
        got = problem.evaluate(theta)["train"]
        assert got.loss == evaluation["train"].loss
        for cat, pred in evaluation["train"].predictions.items():
            assert np.array_equal(got.predictions[cat], pred), cat
        workers = {info["worker"] for info in problem.cluster_info}
        assert len(workers) == 2 and None not in workers  # one cluster on each worker
        assert problem.compile_counts()["loss_and_grad"] == 1
    finally:
        problem.executor.close()


def test_vjp_without_residuals_recomputes_the_same_gradient(inputs):
    problem = _problem(inputs)
    theta = problem.pmap.initial.copy()
    request = problem.requests()[1]
    local = problem.local
    outputs = local.forward(request, theta)["outputs"]
    cotangents = [np.linspace(-1.0, 1.0, o.size).reshape(o.shape) for o in outputs]
    kept = local.vjp(request, theta, cotangents)  # uses the forward pass's residuals
    again = local.vjp(request, theta, cotangents)  # residuals freed: forward pass reruns
    assert not kept["recomputed"] and again["recomputed"]
    assert np.array_equal(kept["grad"], again["grad"])
    assert np.abs(kept["grad"]).max() > 0


def test_worker_killed_during_an_evaluation_costs_no_result(inputs, client, serial):
    theta, loss, grad, _ = serial
    problem = _distributed(inputs, client)  # a new fit: workers build and trace (seconds)
    pids = client.run(os.getpid)
    box = {}
    thread = threading.Thread(
        target=lambda: box.setdefault("result", problem.loss_and_grad(theta)))
    try:
        thread.start()
        victim, deadline = None, time.time() + 120
        while victim is None and time.time() < deadline and thread.is_alive():
            busy = [w for w, keys in client.processing().items() if keys]
            victim = busy[0] if busy else None
            time.sleep(0.01)
        assert victim is not None, "no task was seen running"
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(timeout=600)
        got_loss, got_grad = box["result"]
        assert got_loss == loss and np.array_equal(got_grad, grad)
    finally:
        problem.executor.close()
        client.wait_for_workers(2, timeout=120)  # the nanny restarts the killed worker


@pytest.mark.parametrize("method", ["sd", "fire"])
def test_relaxation_on_workers_equals_serial(inputs, client, method):
    results = []
    for distributed in (False, True):
        problem = _problem(inputs)
        if distributed:
            problem.executor = DaskExecutor(client, problem)
        relaxer = Relaxer(problem)
        theta = problem.pmap.initial
        try:
            if method == "sd":
                measure = relaxer.steepest_descent(theta, 30, 1e-3, 0.5)
            else:
                measure = relaxer.minimize(theta, 30, 0.5, "fire")
        finally:
            problem.executor.close()
        results.append((measure, [p.copy() for p in problem.positions]))
    (serial_measure, serial_x), (dist_measure, dist_x) = results
    assert serial_measure == dist_measure
    moved = [k for k, (a, b) in enumerate(zip(serial_x, _problem(inputs).positions))
             if not np.array_equal(a, b)]
    assert len(moved) == len(RELAXED)  # every flagged structure moved, nothing else
    for a, b in zip(serial_x, dist_x):
        assert np.array_equal(a, b)


def _flags(inputs, out, *extra):
    return ["--init_FF", inputs["init_FF"], "--params", inputs["params"], "--geo",
            inputs["geo"], "--train_file", inputs["train_file"], "--out_folder", str(out),
            "--no-progress", *extra]


def test_cli_evaluate_and_fit_on_two_workers_equal_serial(inputs, tmp_path):
    fit = ("--num_steps", "2", "--num_e_minim_steps", "20", "--e_minim_LR", "1e-3",
           "--seed", "1", "--no-sensitivity")
    for command, extra in (("evaluate", ()), ("fit", fit)):
        for where, workers in (("serial", ()), ("workers", ("--workers", "2"))):
            assert main([command, *_flags(inputs, tmp_path / command / where, *extra,
                                          *workers)]) == 0
        serial_out, dist_out = tmp_path / command / "serial", tmp_path / command / "workers"
        a = json.loads((serial_out / "report.json").read_text())
        b = json.loads((dist_out / "report.json").read_text())
        assert a == b
        summary = json.loads((dist_out / "summary.json").read_text())
        assert summary["workers"] == 2
        assert json.loads((serial_out / "summary.json").read_text())["workers"] == 0
    summaries = [json.loads((tmp_path / "fit" / w / "summary.json").read_text())
                 for w in ("serial", "workers")]
    assert summaries[0]["loss_per_iteration"] == summaries[1]["loss_per_iteration"]
    assert len(summaries[0]["loss_per_iteration"]) == 3
    best = (tmp_path / "fit" / "serial" / "ffield_best").read_text()
    assert best == (tmp_path / "fit" / "workers" / "ffield_best").read_text()
    assert best != open(inputs["init_FF"]).read()  # the fit moved the parameters


def test_driver_killed_mid_fit_resumes_on_workers(inputs, tmp_path):
    """SIGKILL of `reaxgrad fit --workers 2` after two outer iterations, then --restart on
    two new workers: the ffield_best and the losses of an uninterrupted serial run."""
    import subprocess
    import sys

    import psutil

    extra = ("--num_steps", "3", "--seed", "2", "--no-sensitivity")
    whole = tmp_path / "whole"
    assert main(["fit", *_flags(inputs, whole, *extra)]) == 0
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "reaxgrad.cli", "fit", *_flags(inputs, killed, *extra),
               "--workers", "2"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint, deadline, started = killed / "checkpoint.json", time.time() + 600, []
    while time.time() < deadline and proc.poll() is None:
        started = psutil.Process(proc.pid).children(recursive=True) or started
        try:
            history = json.loads(checkpoint.read_text())["state"]["history"]
        except (OSError, json.JSONDecodeError, KeyError):
            history = []
        if len(history) >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the fit ended before it could be killed"
    assert started, "no worker process was seen"
    _, alive = psutil.wait_procs(started, timeout=60)  # its workers go with it
    for p in alive:
        p.kill()
    assert not alive, "worker processes outlived their driver"
    assert not (killed / "ffield_best").exists()
    assert main(["fit", *_flags(inputs, killed, *extra, "--workers", "2", "--restart")]) == 0
    assert (killed / "ffield_best").read_text() == (whole / "ffield_best").read_text()
    a = json.loads((whole / "summary.json").read_text())["loss_per_iteration"]
    b = json.loads((killed / "summary.json").read_text())["loss_per_iteration"]
    assert a == b and len(a) == 4
