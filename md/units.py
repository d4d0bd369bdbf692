"""LAMMPS `units real` constants (kcal/mol, Å, fs, g/mol, K, atm) and conversions to ASE.

MD state lives in these units so that trajectories compare with LAMMPS's to the last digits:
velocities in Å/fs, masses in g/mol, forces in kcal/mol/Å, pressure in atm.
"""
from __future__ import annotations

from ase import units as _ase

FTM2V = 1.0 / 48.88821291 / 48.88821291  # (kcal/mol/Å)/(g/mol) -> Å/fs^2
MVV2E = 48.88821291 * 48.88821291  # (g/mol)(Å/fs)^2 -> kcal/mol
BOLTZ = 0.0019872067  # kcal/mol/K
NKTV2P = 68568.415  # kcal/mol/Å^3 -> atm

KCAL_MOL = _ase.kcal / _ase.mol  # eV per kcal/mol
ASE_VELOCITY = 1.0 / _ase.fs  # ASE velocity units per Å/fs


def velocities_from_ase(momenta, masses):
    """ASE momenta (amu·Å/ASE-time) -> velocities in Å/fs."""
    return momenta / masses[:, None] / ASE_VELOCITY


def momenta_to_ase(velocities, masses):
    """Velocities in Å/fs -> ASE momenta."""
    return velocities * masses[..., :, None] * ASE_VELOCITY
