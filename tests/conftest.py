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
        "--jit-backend", default=None,
        help="run every jit on this executor (interpreter, fused): sets REAXGRAD_JIT_BACKEND "
             "before the tests import reaxgrad, so the suites run on each executor in turn")


def pytest_configure(config):
    backend = config.getoption("--jit-backend")
    if backend:
        os.environ["REAXGRAD_JIT_BACKEND"] = backend


def pytest_report_header(config):
    from reaxgrad.core.executors import resolve_backend

    return f"reaxgrad jit backend: {resolve_backend(None)}"


@pytest.fixture(scope="session")
def jaxreaxff_data():
    """The JAX-ReaxFF training sets (cobalt, disulfide, silica)."""
    if not JAXREAXFF_DATA.is_dir():
        pytest.skip(f"{JAXREAXFF_DATA} is absent")
    return JAXREAXFF_DATA
