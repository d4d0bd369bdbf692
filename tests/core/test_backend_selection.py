"""Which executor jit uses: the automatic choice (fused with a working C compiler, else the
interpreter with a one-line notice), the environment variable, an explicit backend=, and what
`reaxgrad info` reports."""
import os
import subprocess
import sys

import numpy as np
import pytest

import reaxgrad.core as rg
import reaxgrad.core.numpy as jnp
from reaxgrad.core import executors
from reaxgrad.core.executors import fused
from reaxgrad.core.fusion import runtime_c

needs_cc = pytest.mark.skipif(not runtime_c.available(), reason="no C compiler")


@needs_cc
def test_automatic_choice_is_fused_with_a_compiler(monkeypatch):
    monkeypatch.delenv(executors.ENV_VAR, raising=False)
    assert executors.default_backend() == "fused"
    assert executors.resolve_backend(None) == "fused"
    assert executors.resolve_backend("auto") == "fused"
    monkeypatch.setenv(executors.ENV_VAR, "interpreter")
    assert executors.resolve_backend(None) == "interpreter"
    assert executors.resolve_backend("fused") == "fused"  # an explicit name wins


def test_without_a_compiler_the_interpreter_runs_and_says_so(monkeypatch, capsys):
    monkeypatch.delenv(executors.ENV_VAR, raising=False)
    monkeypatch.setattr(runtime_c, "available", lambda: False)
    monkeypatch.setattr(fused, "_said", set())
    assert executors.default_backend() == "interpreter"
    assert executors.default_backend() == "interpreter"
    err = capsys.readouterr().err
    assert err.count("no C compiler found") == 1 and len(err.strip().splitlines()) == 1


@needs_cc
def test_automatic_jit_runs_generated_kernels(monkeypatch):
    monkeypatch.delenv(executors.ENV_VAR, raising=False)

    def f(x):
        return jnp.sum(jnp.tanh(x) * x ** 2)

    x = np.linspace(-2.0, 2.0, 1001)
    g = rg.jit(rg.grad(f))
    out = np.asarray(g(x))
    assert g.backend == "fused"
    entry = next(iter(g._cache.values()))
    assert hasattr(entry.run, "plan")  # the fused executor's runner, not the interpreter's
    np.testing.assert_allclose(out, np.tanh(x) * 2 * x + x ** 2 / np.cosh(x) ** 2,
                               rtol=1e-13, atol=1e-15)


@needs_cc
def test_info_reports_the_automatic_fused_backend():
    env = {k: v for k, v in os.environ.items() if k != executors.ENV_VAR}
    out = subprocess.run([sys.executable, "-m", "reaxgrad.cli", "info"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "jit executor: fused (automatic)" in out.stdout
