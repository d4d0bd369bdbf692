"""ASE calculator for ReaxFF: energy, free_energy, forces, stress (periodic cells) and
charges, plus the per-term energies in `results["energy_terms"]` (eV, LAMMPS term names).
Compiled functions are reused between calls (jit caches keyed on list capacities)."""
from __future__ import annotations

import numpy as np
from ase import units
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from reaxgrad.forcefields.reaxff.model import ReaxFF

KCAL_MOL = units.kcal / units.mol  # eV per kcal/mol


class ReaxFFCalculator(Calculator):
    """ReaxFFCalculator(ffield=path_or_ForceField, charge_method="qeq"|"eem"|"acks2"|None,
    convention="lammps"|"consistent", control=None, charge=None).

    The total charge is `charge` if given, else `atoms.info["charge"]` if set (a geo file's
    MOLCHARGE), else 0 -- never the sum of the initial charges.  charge_method=None keeps the
    charges given by `atoms.get_initial_charges()`. Energies in eV, forces in eV/Å, stress in
    eV/Å^3 (ASE conventions).
    """

    implemented_properties = ("energy", "free_energy", "forces", "stress", "charges")
    default_parameters = {"charge_method": "qeq", "convention": "lammps", "control": None,
                          "charge": None}

    def __init__(self, ffield, charge_method="qeq", convention="lammps", control=None,
                 charge=None, **kwargs):
        super().__init__(charge_method=charge_method, convention=convention, control=control,
                         charge=charge, **kwargs)
        self.model = ReaxFF(ffield, charge_method=charge_method, convention=convention,
                            control=control)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if "stress" in properties and not atoms.pbc.all():
            raise PropertyNotImplementedError("stress needs a cell periodic in all directions")
        q0 = atoms.get_initial_charges()
        charge = self.parameters.get("charge")
        total = float(atoms.info.get("charge", 0.0) if charge is None else charge)
        res = self.model.evaluate(atoms.positions, atoms.cell.array, atoms.pbc,
                                  atoms.get_chemical_symbols(), total_charge=total, charges=q0,
                                  source=atoms.get_chemical_formula())
        self.results["energy"] = res.energy * KCAL_MOL
        self.results["free_energy"] = res.energy * KCAL_MOL
        self.results["forces"] = res.forces * KCAL_MOL
        self.results["charges"] = np.asarray(res.charges)
        self.results["energy_terms"] = {k: v * KCAL_MOL for k, v in res.terms.items()}
        if res.stress is not None:
            s = res.stress * KCAL_MOL
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2],
                                               s[0, 1]])
