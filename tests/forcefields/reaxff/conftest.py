"""Fixtures for the ReaxFF term tests: LAMMPS runs at zero charges (which removes Coulomb and
the charge self-energy). Helpers shared by the tests are in ``reaxff_cases.py``."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def lammps_zero_charges(lammps_oracle):
    """``run(atoms, ffield) -> dict``: the LAMMPS oracle at fixed zero charges."""

    def run(atoms, ffield):
        return lammps_oracle.run_reaxff(atoms, ffield, None, charges=np.zeros(len(atoms)))

    return run
