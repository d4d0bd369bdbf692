"""ReaxFF energy terms except charges and Coulomb: one traced function over (positions, cell,
params, lists), returning the per-term energies under LAMMPS's names (kcal/mol)."""

from __future__ import annotations

import reaxgrad.core.numpy as jnp

from .bond_order import bond_orders
from .bonds import bond_energy
from .hbond import hbond_energy
from .lone_pair import lone_pair_energy
from .over_under import over_under_energy
from .torsion import torsion_energies
from .valence import valence_energies
from .vdw import vdw_energy

BONDED_TERMS = ("ebond", "eatom", "elp", "emol", "ev", "epen", "ecoa", "ehb", "et", "eco", "ew")


def bonded_energy_terms(positions, cell, params, lists) -> dict:
    """{ebond, eatom, elp, emol (0), ev, epen, ecoa, ehb, et, eco, ew}: every term of
    ``compute pair reaxff`` but Coulomb (ep), the charge self-energy (eqeq) and efi.

    cell: (3, 3) lattice vectors as rows (any value, e.g. zeros, without periodicity);
    lists: from :func:`reaxgrad.forcefields.reaxff.lists.build_lists` for nearby positions.
    """
    if cell is None:
        cell = jnp.zeros((3, 3))
    bo = bond_orders(positions, cell, params, lists)
    ev, epen, ecoa = valence_energies(bo, params, lists)
    et, eco = torsion_energies(bo, params, lists)
    return {
        "ebond": bond_energy(bo, params, lists),
        "eatom": over_under_energy(bo, params, lists),
        "elp": lone_pair_energy(bo, params, lists),
        "emol": jnp.zeros(()),
        "ev": ev,
        "epen": epen,
        "ecoa": ecoa,
        "ehb": hbond_energy(bo, positions, cell, params, lists),
        "et": et,
        "eco": eco,
        "ew": vdw_energy(positions, cell, params, lists),
    }


def bonded_energy(positions, cell, params, lists):
    """Sum of :func:`bonded_energy_terms` (kcal/mol)."""
    terms = bonded_energy_terms(positions, cell, params, lists)
    total = terms["ebond"]
    for name in BONDED_TERMS[1:]:
        total = total + terms[name]
    return total
