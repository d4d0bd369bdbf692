"""Shared fixtures: the public JAX-ReaxFF training sets beside the checkout (never copied
into the repository; `REAXGRAD_JAXREAXFF_DATA` may point elsewhere)."""
import os
from pathlib import Path

import pytest

JAXREAXFF_DATA = Path(
    os.environ.get("REAXGRAD_JAXREAXFF_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "jaxreaxff"
)


@pytest.fixture(scope="session")
def jaxreaxff_data():
    """The JAX-ReaxFF training sets (cobalt, disulfide, silica)."""
    if not JAXREAXFF_DATA.is_dir():
        pytest.skip(f"{JAXREAXFF_DATA} is absent")
    return JAXREAXFF_DATA
