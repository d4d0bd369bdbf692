"""`reaxgrad fit` / `reaxgrad evaluate` end to end on the demo problem: known parameters
recovered, the report files' contracts, a run killed with SIGKILL and resumed with --restart
ends with the same ffield_best as an uninterrupted run, bad input gives named errors."""
import json
import os
import signal
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

from reaxgrad.cli import main
from reaxgrad.forcefields.ffield import read_ffield
from reaxgrad.forcefields.params_file import map_params, param_values


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory, cho_ffield):
    from reaxgrad.fit_demo import prepare_demo

    out = tmp_path_factory.mktemp("demo")
    args = Namespace(out_folder=str(out), num_steps=2)
    prepare_demo(args)
    return {k: getattr(args, k) for k in ("init_FF", "params", "geo", "train_file")}


def _flags(inputs, out, *extra):
    return ["--init_FF", inputs["init_FF"], "--params", inputs["params"], "--geo",
            inputs["geo"], "--train_file", inputs["train_file"], "--out_folder", str(out),
            "--no-progress", *extra]


def test_fit_recovers_the_perturbed_parameters(demo_inputs, tmp_path, capsys):
    assert main(["fit", *_flags(demo_inputs, tmp_path, "--num_steps", "1")]) == 0
    truth = {tuple(map(int, line.split()[:3])): float(line.split()[3]) for line in
             (Path(demo_inputs["params"]).parent / "true_values.txt").read_text().splitlines()}
    best = read_ffield(tmp_path / "ffield_best")
    params = map_params(best, demo_inputs["params"])
    got = param_values(best, params)
    want = np.array([truth[p.key] for p in params])
    start = param_values(read_ffield(demo_inputs["init_FF"]), params)
    assert np.abs(start - want).max() > 0.01 * np.abs(want).min()  # really perturbed
    np.testing.assert_allclose(got, want, rtol=2e-4)
    report = json.loads((tmp_path / "report.json").read_text())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert report["loss"] < 1e-3 * summary["loss_per_iteration"][0]
    assert summary["compiles"]["loss_and_grad"] == 1
    for name in ("report.txt", "loss.png", "parity_ENERGY.png", "parity_FORCE.png",
                 "checkpoint.json"):
        assert (tmp_path / name).stat().st_size > 0, name


def test_report_json_contract(demo_inputs, tmp_path):
    assert main(["evaluate", *_flags(demo_inputs, tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report) >= {"loss", "categories", "items"}
    items = report["items"]
    keys = {"category", "component", "text", "line", "weight", "target", "prediction", "error"}
    assert all(set(r) == keys for r in items)
    lines = [r["line"] for r in items]
    assert lines == sorted(lines)  # trainset order
    forces = [r for r in items if r["category"] == "FORCE"]
    assert [r["component"] for r in forces[:3]] == ["x", "y", "z"]
    assert all(r["component"] is None for r in items if r["category"] != "FORCE")
    for r in items:
        assert r["error"] == pytest.approx(((r["target"] - r["prediction"]) / r["weight"]) ** 2)
    assert report["loss"] == pytest.approx(sum(r["error"] for r in items))
    assert report["loss"] == pytest.approx(sum(report["categories"].values()))
    text = (tmp_path / "report.txt").read_text().splitlines()
    assert text[0].split()[:2] == ["Item", "Text"] and "Cum. Sum." in text[0]
    assert text[2].startswith("ENERGY: ")
    assert not (tmp_path / "ffield_best").exists()  # evaluate writes no force field


def _run(flags, **kw):
    return subprocess.Popen([sys.executable, "-m", "reaxgrad.cli", "fit", *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def test_killed_fit_resumes_to_the_same_result(demo_inputs, tmp_path):
    extra = ("--num_steps", "4", "--num_trials", "2", "--init_FF_type", "educated",
             "--seed", "3")
    whole = tmp_path / "whole"
    assert _run(_flags(demo_inputs, whole, *extra)).wait(timeout=600) == 0
    killed = tmp_path / "killed"
    proc = _run(_flags(demo_inputs, killed, *extra))
    checkpoint = killed / "checkpoint.json"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if checkpoint.exists():
            try:
                state = json.loads(checkpoint.read_text())["state"]
            except (json.JSONDecodeError, KeyError):
                continue
            if len(state["history"]) >= 3:
                os.kill(proc.pid, signal.SIGKILL)
                break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "ffield_best").exists()
    assert _run(_flags(demo_inputs, killed, *extra, "--restart")).wait(timeout=600) == 0
    assert (killed / "ffield_best").read_text() == (whole / "ffield_best").read_text()
    a = json.loads((whole / "summary.json").read_text())["loss_per_iteration"]
    b = json.loads((killed / "summary.json").read_text())["loss_per_iteration"]
    assert a == b and len(a) == 10


@pytest.mark.parametrize("edit, message", [
    (("train_file", "ENERGY\n 1.0 + nosuch/1 3.0\nENDENERGY\n"), "nosuch"),
    (("params", "2 1 1 0.01 nan 2.0\n"), "line 1"),
    (("geo", "BIOGRF 200\nDESCRP H2O\nHETATM 1 O 0 0 nan\nEND\n"), "line 3"),
])
def test_bad_input_is_a_named_error(demo_inputs, tmp_path, capsys, edit, message):
    key, text = edit
    bad = tmp_path / f"bad_{key}"
    bad.write_text(text)
    inputs = dict(demo_inputs, **{key: str(bad)})
    assert main(["evaluate", *_flags(inputs, tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "reaxgrad evaluate: error:" in err and str(bad) in err and message in err
    assert "Traceback" not in err


def test_sigint_writes_the_best_force_field_and_exits_cleanly(demo_inputs, tmp_path):
    out = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-m", "reaxgrad.cli", "fit",
                             *_flags(demo_inputs, out, "--num_steps", "30", "--num_trials", "3",
                                     "--no-sensitivity")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    checkpoint = out / "checkpoint.json"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not checkpoint.exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert (out / "ffield_best").stat().st_size > 0
    report = json.loads((out / "report.json").read_text())
    state = json.loads(checkpoint.read_text())["state"]
    assert report["loss"] <= state["history"][0]["true_loss"]


def test_demo_command_shows_the_recovered_parameters(tmp_path, capsys, cho_ffield):
    assert main(["fit", "--demo", "--out", str(tmp_path), "--no-progress",
                 "--no-sensitivity"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[out.splitlines().index(
        next(x for x in out.splitlines() if x.startswith("parameter"))) + 1:]]
    assert len(rows) == 5
    for row in rows:
        start, fitted, true = (float(v) for v in row[3:6])
        assert abs(fitted - true) <= 2e-4 * abs(true) < abs(start - true)
