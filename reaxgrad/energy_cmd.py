"""`reaxgrad energy STRUCTURE --ffield F`: total and per-term ReaxFF energies, charges and
forces of one structure (any format ASE reads, or a BGF `geo` file), as a table or JSON.
Bad input: `reaxgrad energy: error: <message naming file, line, field>`, exit status 2."""
from __future__ import annotations

import json

import numpy as np

from .inputs import (  # noqa: F401 - read_structure is re-exported for older imports
    check_elements,
    load_model,
    read_structure,
    run_command,
    total_charge,
)

TERM_LABELS = {
    "ebond": "bond", "eatom": "over/under-coordination", "elp": "lone pair",
    "emol": "molecular", "ev": "valence angle", "epen": "penalty", "ecoa": "coalition",
    "ehb": "hydrogen bond", "et": "torsion", "eco": "4-body conjugation",
    "ew": "van der Waals", "ep": "Coulomb", "efi": "electric field", "eqeq": "charge self",
}


def run_energy(args) -> int:
    return run_command("energy", energy, args)


def single_point(model, atoms, *, charge=None, source="structure"):
    """``model``'s result for ``atoms`` (kcal/mol, kcal/mol/Å, e): total charge ``charge``,
    else the structure's own; the initial charges are the fixed ones of charge method none.
    Shared with `reaxgrad batch energy`."""
    return model.evaluate(atoms.positions, atoms.cell.array, atoms.pbc,
                          atoms.get_chemical_symbols(), total_charge=total_charge(atoms, charge),
                          charges=atoms.get_initial_charges(), source=str(source))


def energy(args) -> int:
    from reaxgrad.forcefields.reaxff.model import TERMS

    atoms = read_structure(args.structure, args.index)
    model = load_model(args.ffield, charge_method=args.charge_method,
                       convention=args.convention)
    check_elements(model, atoms, args.structure)
    symbols = atoms.get_chemical_symbols()
    res = single_point(model, atoms, charge=args.charge, source=args.structure)
    if args.json:
        out = {
            "structure": str(args.structure), "ffield": str(args.ffield),
            "units": {"energy": "kcal/mol", "forces": "kcal/mol/A", "charges": "e",
                      "stress": "kcal/mol/A^3"},
            "charge_method": args.charge_method, "convention": args.convention,
            "energy": res.energy, "energy_terms": res.terms,
            "symbols": symbols, "charges": np.asarray(res.charges).tolist(),
            "forces": np.asarray(res.forces).tolist(),
            "stress": None if res.stress is None else np.asarray(res.stress).tolist(),
        }
        print(json.dumps(out, indent=2))
        return 0
    from ase import units

    ev = units.kcal / units.mol
    print(f"{atoms.get_chemical_formula()} ({len(atoms)} atoms) with {args.ffield}, "
          f"charges: {args.charge_method} ({args.convention} convention)")
    print(f"total energy {res.energy:16.6f} kcal/mol {res.energy * ev:16.6f} eV")
    print("\nterm   energy (kcal/mol)   description")
    for k in TERMS:
        print(f"{k:6s} {res.terms[k]:18.6f}   {TERM_LABELS[k]}")
    print("\n  #  el    charge (e)        Fx          Fy          Fz   (kcal/mol/A)")
    for n, (s, q, f) in enumerate(zip(symbols, res.charges, res.forces)):
        print(f"{n:3d}  {s:2s} {q:12.6f} {f[0]:11.5f} {f[1]:11.5f} {f[2]:11.5f}")
    if res.stress is not None:
        print("\nstress (kcal/mol/A^3):")
        for row in res.stress:
            print("  " + " ".join(f"{v:12.6e}" for v in row))
    return 0


def add_parser(sub):
    p = sub.add_parser("energy", help="ReaxFF energy, per-term table, charges and forces")
    p.add_argument("structure", help="structure file (BGF geo, xyz, extxyz, cif, POSCAR, ...)")
    p.add_argument("--ffield", required=True, help="ReaxFF force-field file")
    p.add_argument("--index", type=int, default=0, help="structure index in the file")
    add_options(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=run_energy)


def add_options(p):
    """The options of a single point (also those of `reaxgrad batch energy`)."""
    p.add_argument("--charge-method", default="qeq", choices=["qeq", "eem", "acks2", "none"])
    p.add_argument("--convention", default="lammps", choices=["lammps", "consistent"])
    p.add_argument("--charge", type=float, default=None, help="total charge (default: "
                   "the structure's own, e.g. a geo file's MOLCHARGE, else 0)")
