"""ASE calculator for ReaxFF: energy, free_energy, forces, stress (periodic cells) and
charges, plus the per-term energies in `results["energy_terms"]` (eV, LAMMPS term names),
and the exact Hessian (`get_hessian`). Compiled functions are reused between calls (jit
caches keyed on list capacities).

The calculator keeps ASE's contract:

- `set(...)` validates its keywords and values, returns the changed ones and discards the
  results; a change of a model setting (force field, charge method, convention, control,
  solver) rebuilds the ReaxFF model at the next calculation.
- `check_state` also reports a change of the structure's total charge
  (`atoms.info["charge"]`) and, with ``charge_method=None``, of the initial charges.
- `todict()` holds everything needed to rebuild the calculator, the force field's text
  included: ``ReaxFFCalculator(**calc.todict())`` gives the same numbers even where the
  ffield file no longer exists (ASE databases and trajectories store these parameters).
"""
from __future__ import annotations

import difflib
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from ase import units
from ase.calculators.calculator import Calculator, PropertyNotImplementedError

from reaxgrad.forcefields.ffield import FFieldError, ForceField, format_ffield, read_ffield
from reaxgrad.forcefields.reaxff.model import TERMS, ReaxFF

KCAL_MOL = units.kcal / units.mol  # eV per kcal/mol

CHARGE_METHODS = ("qeq", "eem", "acks2", None)
CONVENTIONS = ("consistent", "lammps")
SOLVERS = ("auto", "direct", "cg")
# settings the ReaxFF model is built from: changing one rebuilds it
MODEL_KEYS = frozenset({"ffield_text", "charge_method", "convention", "control", "solver"})
PARAMETERS = ("ffield", "ffield_text", "charge_method", "convention", "control", "charge",
              "solver")


def _bad_keywords(names, where: str) -> TypeError:
    names = sorted(names)
    hints = []
    for name in names:
        close = difflib.get_close_matches(name, PARAMETERS, n=1)
        if close:
            hints.append(f"{name!r} (did you mean {close[0]!r}?)")
        else:
            hints.append(repr(name))
    return TypeError(f"{where}: unknown keyword(s) {', '.join(hints)}; accepted: "
                     f"{', '.join(PARAMETERS)}")


def _check_values(p: dict) -> None:
    """Raise ValueError/TypeError naming the parameter for an invalid value in `p`."""
    if "charge_method" in p and p["charge_method"] not in CHARGE_METHODS:
        raise ValueError(f"charge_method must be one of 'qeq', 'eem', 'acks2' or None, got "
                         f"{p['charge_method']!r}")
    if "convention" in p and p["convention"] not in CONVENTIONS:
        raise ValueError(f"convention must be 'consistent' or 'lammps', got "
                         f"{p['convention']!r}")
    if "solver" in p and p["solver"] not in SOLVERS:
        raise ValueError(f"solver must be 'auto', 'direct' or 'cg', got {p['solver']!r}")
    if p.get("solver") == "cg" and p.get("charge_method") == "acks2":
        raise ValueError("solver='cg' solves QEq/EEM only; ACKS2 needs solver='direct' or "
                         "'auto'")
    if "control" in p and p["control"] is not None:
        if not isinstance(p["control"], Mapping):
            raise TypeError(f"control must be a dict of ReaxFF control keywords or None, got "
                            f"{type(p['control']).__name__}")
        from reaxgrad.forcefields.reaxff.lists import _settings

        _settings(dict(p["control"]))  # ValueError naming unknown control keywords
    if "charge" in p and p["charge"] is not None:
        charge = p["charge"]
        if isinstance(charge, bool) or not isinstance(charge, (int, float, np.number)) \
                or not math.isfinite(float(charge)):
            raise ValueError(f"charge (the total charge) must be a finite number or None, got "
                             f"{charge!r}")


def _parse_ffield_text(text: str, label: str | None) -> ForceField:
    """A ForceField from the text of an ffield file (`label`: the path it came from)."""
    if not isinstance(text, str):
        raise TypeError(f"ffield_text must be the text of an ffield file (str), got "
                        f"{type(text).__name__}")
    name = Path(label).name if label else "ffield"
    with tempfile.TemporaryDirectory(prefix="reaxgrad-ffield-") as tmp:
        path = Path(tmp) / (name or "ffield")
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            ff = read_ffield(path)
        except FFieldError as exc:
            message = str(exc).split(": ", 1)[-1]
            where = f"ffield_text ({label})" if label else "ffield_text"
            raise ValueError(f"{where} line {exc.lineno}: {message}") from None
    ff.path = label
    return ff


class ReaxFFCalculator(Calculator):
    """ReaxFFCalculator(ffield, charge_method="qeq", convention="consistent", control=None,
    charge=None, *, ffield_text=None, solver="auto").

    ffield: a path to an ffield file, or a `ForceField`. The force field's text is kept in
    the parameter ``ffield_text`` (and ``ffield`` keeps the path, or None), so that
    ``ReaxFFCalculator(**calc.todict())`` rebuilds the same calculator; given both,
    ``ffield_text`` is the force field and ``ffield`` only names where it came from.

    charge_method: "qeq" | "eem" (the same equations) | "acks2" | None (keep the charges
    `atoms.get_initial_charges()`). convention: "consistent" (default: the charges minimise
    the reported energy, forces and stress are its exact derivatives, MD conserves energy) or
    "lammps" (LAMMPS's constants; energies, charges, forces and stress equal LAMMPS's, whose
    forces are taken at the charges held fixed). control: ReaxFF control keywords
    (``nbrhood_cutoff``, ``hbond_cutoff``, ``thb_cutoff``, ...). solver: the charge solve,
    "auto" (dense up to 1,000 atoms, then sparse CG), "direct" or "cg".

    The total charge is `charge` if given, else `atoms.info["charge"]` if set (a geo file's
    MOLCHARGE), else 0 -- never the sum of the initial charges. Energies in eV, forces in eV/Å,
    stress in eV/Å^3 (ASE conventions); `get_hessian(atoms)` in eV/Å^2. An empty structure
    has energy 0, forces of shape (0, 3) and charges of shape (0,).
    """

    implemented_properties = ("energy", "free_energy", "forces", "stress", "charges")
    default_parameters = {"ffield": None, "ffield_text": None, "charge_method": "qeq",
                          "convention": "consistent", "control": None, "charge": None,
                          "solver": "auto"}

    def __init__(self, ffield=None, charge_method="qeq", convention="consistent", control=None,
                 charge=None, *, ffield_text=None, solver="auto", atoms=None, label=None,
                 directory=".", **kwargs):
        if kwargs:
            raise _bad_keywords(kwargs, "ReaxFFCalculator()")
        if ffield is None and ffield_text is None:
            raise TypeError("ReaxFFCalculator() needs a force field: ffield=<path or "
                            "ForceField> (or ffield_text=<the file's text>)")
        self._model: ReaxFF | None = None
        self._ff: ForceField | None = None
        super().__init__(label=label, atoms=atoms, directory=directory, ffield=ffield,
                         ffield_text=ffield_text, charge_method=charge_method,
                         convention=convention, control=control, charge=charge, solver=solver)

    # ---- parameters

    def set(self, **kwargs):
        """Change parameters (validated); returns the changed ones and, if any changed,
        discards the results. A model setting changed rebuilds the model lazily."""
        if "parameters" in kwargs:  # ASE: read parameters from a file, then apply kwargs
            from ase.calculators.calculator import Parameters

            params = Parameters.read(kwargs.pop("parameters"))
            params.update(kwargs)
            kwargs = dict(params)
        unknown = set(kwargs) - set(PARAMETERS)
        if unknown:
            raise _bad_keywords(unknown, "ReaxFFCalculator.set()")
        merged = {**self.parameters, **kwargs}
        _check_values(merged)
        ff = None
        if "ffield" in kwargs or "ffield_text" in kwargs:
            ff, kwargs = self._resolve_ffield(kwargs)
        changed = super().set(**kwargs)
        if ff is not None and ("ffield_text" in changed or self._ff is None):
            self._ff = ff
        if changed:
            self.reset()
            if MODEL_KEYS & set(changed):
                self._model = None
        return changed

    def _resolve_ffield(self, kwargs):
        """(ForceField, kwargs with ffield = path label or None and ffield_text = text)."""
        kwargs = dict(kwargs)
        given = kwargs.get("ffield", self.parameters.get("ffield"))
        text = kwargs.get("ffield_text")
        if isinstance(given, ForceField):
            if text is not None:
                raise ValueError("give the force field once: ffield=<ForceField> or "
                                 "ffield_text=<text>, not both")
            ff = given.copy()
            label = given.path
            text = format_ffield(ff)
        elif text is not None:
            if "ffield" not in kwargs:
                given = None  # new text: the old path no longer says where it came from
            if given is not None and not isinstance(given, (str, os.PathLike)):
                raise TypeError(f"ffield must be a path or a ForceField, got "
                                f"{type(given).__name__}")
            label = None if given is None else os.fspath(given)
            ff = _parse_ffield_text(text, label)
        elif isinstance(given, (str, os.PathLike)):
            label = os.fspath(given)
            ff = read_ffield(label)  # OSError / FFieldError naming the file
            text = format_ffield(ff)
        elif given is None:
            raise TypeError("ffield=None: a ReaxFFCalculator needs a force field (a path, a "
                            "ForceField, or ffield_text=<the file's text>)")
        else:
            raise TypeError(f"ffield must be a path or a ForceField, got "
                            f"{type(given).__name__}")
        kwargs["ffield"], kwargs["ffield_text"] = label, text
        return ff, kwargs

    @property
    def force_field(self) -> ForceField:
        """The force field in use (a copy is kept: later edits of a given one do not leak)."""
        if self._ff is None:
            self._ff = _parse_ffield_text(self.parameters["ffield_text"],
                                          self.parameters.get("ffield"))
        return self._ff

    @property
    def model(self) -> ReaxFF:
        """The ReaxFF model for the current parameters (built on first use, rebuilt after
        `set` changed a model setting)."""
        if self._model is None:
            p = self.parameters
            self._model = ReaxFF(self.force_field, charge_method=p["charge_method"],
                                 convention=p["convention"], control=p["control"],
                                 solver=p["solver"])
        return self._model

    # ---- state

    def total_charge(self, atoms) -> float:
        """The total charge used for `atoms`: the `charge` parameter, else
        atoms.info["charge"], else 0."""
        charge = self.parameters.get("charge")
        if charge is not None:
            return float(charge)
        value = atoms.info.get("charge", 0.0)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f'atoms.info["charge"] must be a number (the total charge), got '
                             f"{value!r}") from None
        if not math.isfinite(value):
            raise ValueError(f'atoms.info["charge"] must be finite, got {value!r}')
        return value

    def check_state(self, atoms, tol=1e-15):
        """ASE's system changes, plus "charge" when the total charge differs; initial
        charges count only when charge_method is None (they are the charges then)."""
        if self.atoms is None:
            return super().check_state(atoms, tol)
        ignored = {"initial_magmoms"}
        if self.parameters.get("charge_method") is not None:
            ignored.add("initial_charges")
        from ase.calculators.calculator import compare_atoms

        changes = compare_atoms(self.atoms, atoms, tol=tol, excluded_properties=ignored)
        if self.total_charge(self.atoms) != self.total_charge(atoms):
            changes.append("charge")
        return changes

    # ---- results

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        from ase.calculators.calculator import all_changes

        super().calculate(atoms, properties,
                          all_changes if system_changes is None else system_changes)
        atoms = self.atoms
        want_stress = "stress" in properties
        if want_stress and not atoms.pbc.all():
            raise PropertyNotImplementedError("stress needs a cell periodic in all directions")
        _check_finite(atoms)
        total = self.total_charge(atoms)
        if len(atoms) == 0:
            self._empty(atoms, want_stress)
            return
        res = self._trajectory(atoms, total).result(atoms.positions, atoms.cell.array)
        self.results["energy"] = res.energy * KCAL_MOL
        self.results["free_energy"] = res.energy * KCAL_MOL
        self.results["forces"] = res.forces * KCAL_MOL
        self.results["charges"] = np.asarray(res.charges)
        self.results["energy_terms"] = {k: v * KCAL_MOL for k, v in res.terms.items()}
        if res.stress is not None:
            s = res.stress * KCAL_MOL
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2],
                                               s[0, 1]])
        elif want_stress:
            raise PropertyNotImplementedError("stress needs a periodic cell of non-zero "
                                              "volume")

    def _trajectory(self, atoms, total):
        """A TrajectoryForces for this model and system: successive calls that only move the
        atoms or strain the cell (optimizers, MD, NEB, phonons) reuse its interaction lists
        (Verlet skin) instead of rebuilding them every call."""
        from reaxgrad.md.forces import TrajectoryForces

        model = self.model
        q0 = np.asarray(atoms.get_initial_charges()) if model.charge_method is None else None
        key = (id(model), tuple(atoms.numbers), tuple(atoms.pbc), total,
               None if q0 is None else q0.tobytes())
        cached = getattr(self, "_traj_cache", None)
        if cached is None or cached[0] != key or cached[1].model is not model:
            forces = TrajectoryForces(model, atoms.get_chemical_symbols(), atoms.pbc,
                                      total_charge=total, charges=q0,
                                      source=atoms.get_chemical_formula())
            self._traj_cache = cached = (key, forces)
        return cached[1]

    def _empty(self, atoms, want_stress):
        """No atoms: energy 0 (as ASE's own calculators), empty forces and charges."""
        self.results.update(energy=0.0, free_energy=0.0, forces=np.zeros((0, 3)),
                            charges=np.zeros(0), energy_terms=dict.fromkeys(TERMS, 0.0))
        if atoms.pbc.all() and abs(atoms.cell.volume) > 0:
            self.results["stress"] = np.zeros(6)
        elif want_stress:
            raise PropertyNotImplementedError("stress needs a periodic cell of non-zero "
                                              "volume")

    def get_hessian(self, atoms=None) -> np.ndarray:
        """The exact Hessian d²E/dx² (3N, 3N) in eV/Å^2 (rows and columns in the order atom
        0 x, y, z, atom 1 x, ...), from the engine's second derivatives; see
        `reaxgrad.md.vibrations.hessian` for what it means in the "lammps" convention."""
        from reaxgrad.md.vibrations import hessian

        if atoms is None:
            atoms = self.atoms
            if atoms is None:
                raise ValueError("get_hessian() needs atoms (none calculated yet)")
        return hessian(self, atoms)


def _check_finite(atoms) -> None:
    bad = np.flatnonzero(~np.isfinite(atoms.positions).all(axis=1))
    if len(bad):
        raise ValueError(f"atom {int(bad[0])} ({atoms[int(bad[0])].symbol}) has a non-finite "
                         f"position {atoms.positions[bad[0]].tolist()}")
    if not np.isfinite(atoms.cell.array).all():
        raise ValueError(f"the cell is not finite: {atoms.cell.array.tolist()}")
