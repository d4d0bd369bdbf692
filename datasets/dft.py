"""DFT training data from extxyz files and ASE databases: structures and ReaxFF training items.

:func:`read_dft` reads anything ``ase.io.read(path, index=":")`` reads, and ``ase.db`` files
(key-value pairs and data come back in ``info``), and returns ``(structures, items)``: the
structures for a ``geo`` file (``info["name"]``) and :class:`TrainItem` targets for
``trainset.in``.  Units: energies eV -> kcal/mol, forces eV/Å -> kcal/mol/Å (``ase.units``).

Values: energies and forces from the calculator results (``SinglePointCalculator``, as ASE's
extxyz reader and ``ase.db`` attach them), or from the ``info``/``arrays`` keys named by
``energy_key``/``forces_key``; charges (CHARGE items) only when ``charges_key`` names them;
the total charge (geo ``MOLCHARGE``) from ``info[total_charge_key]``.  Stress is not used:
``trainset.in`` has no stress category (CELL PARAMETERS are relaxed-cell targets).

Energy references.  A ReaxFF ENERGY item is a signed combination of *structure* energies, and
DFT total energies have an arbitrary zero, so every item states what an energy is relative to.
``reference`` chooses it for every structure; ``info["energy_reference"]`` overrides it for one:

* ``"min"`` (default): relative to the lowest-energy structure of the same composition and total
  charge, ``+ s/1 - ref/1`` (what a scan, a set of conformers or MD snapshots needs); the
  reference itself, and a composition with one structure, get no ENERGY item;
* ``"structure:<name or index>"``: relative to that structure, ``+ s/1 - ref/1``; every
  structure must have its composition (else use ``"min"`` or ``"elements"``);
* ``"elements"``: ``+ s/1`` with target ``E_s - sum_i E_el(i)``, ``element_energies`` giving
  E_el in eV (e.g. DFT isolated atoms); with isolated-atom references this is the atomization
  energy, which a ReaxFF energy (zero for separated atoms) approximates;
* ``"absolute"``: ``+ s/1`` with target ``E_s`` (data already on the ReaxFF scale);
* ``"none"``: no ENERGY item.

Weights (the accuracies that divide each error) come from ``energy_weight``, ``force_weight``
and ``charge_weight``, overridden per structure by ``info["energy_weight"]`` etc. (per atom by
an ``arrays`` entry of that name for forces and charges).  Periodic structures are rotated into
the ReaxFF cell frame (:func:`reaxff_orientation`), forces with them, so the FORCE targets match
the geo file that :func:`write_geo` writes.

Names: ``info["name"]`` when present, else ``<file stem>_<index>``; characters other than
letters, digits, ``_ . -`` become ``_``, and repeats get ``_2``, ``_3``... in reading order.
Bad data raises :class:`DatasetError` naming the file, the structure index and the field:
missing energies, forces or charges where they are asked for, NaN or infinite values,
non-finite positions or cells, atoms without an element (except ReaxFF's dummy ``X`` where
``arrays["reax_types"]`` says so, as in structures that came from a geo file).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator

from reaxgrad.errors import InputFileError

from .geo_write import reaxff_orientation
from .trainset import TrainItem

EV_TO_KCAL = units.mol / units.kcal
_SECTION_WORDS = {"CHARGE", "HEATFO", "GEOMETRY", "CELL", "ENERGY", "FORCES"}
_KEYWORDS = ("min", "absolute", "elements", "none")


class DatasetError(InputFileError):
    """Bad DFT data: ``path``, ``index`` (structure, 0-based; None for the whole file) and
    ``field`` say where."""

    def __init__(self, path, index: int | None, field: str, message: str, name: str = ""):
        self.path, self.lineno, self.index, self.field = str(path), 0, index, field
        where = "" if index is None else f"structure {index}{f' ({name})' if name else ''}: "
        ValueError.__init__(self, f"{path}: {where}{field}: {message}")


def load_frames(path) -> list[Atoms]:
    """Every structure of an extxyz (or other ASE-readable) file or an ASE database."""
    from ase.io import read
    from ase.io.formats import filetype

    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, None, "file", "no such file")
    try:
        if path.suffix.lower() in (".db", ".aselmdb") or filetype(str(path)) in ("db", "json"):
            return _load_database(path)
        return list(read(str(path), index=":"))
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - ASE raises many types for unreadable files
        raise DatasetError(path, None, "file", f"cannot read: {exc}") from None


def _load_database(path: Path) -> list[Atoms]:
    from ase.db import connect

    frames = []
    with connect(path) as db:
        for row in db.select():
            atoms = row.toatoms()
            atoms.info.update(row.key_value_pairs)
            for key, value in row.data.items():
                if np.ndim(value) >= 1 and len(value) == len(atoms):
                    atoms.new_array(key, np.asarray(value))
                else:
                    atoms.info[key] = value
            frames.append(atoms)
    return frames


def read_dft(
    paths,
    *,
    reference: str = "min",
    element_energies: dict[str, float] | None = None,
    forces: bool = True,
    energy_key: str | None = None,
    forces_key: str | None = None,
    charges_key: str | None = None,
    total_charge_key: str | None = "charge",
    energy_weight: float = 1.0,
    force_weight: float = 1.0,
    charge_weight: float = 0.1,
    allow_missing: bool = False,
) -> tuple[list[Atoms], list[TrainItem]]:
    """Structures (ReaxFF frame, unique names, energies/forces in eV on a
    SinglePointCalculator) and training items (kcal/mol, Å, e) from one or more files.

    ``forces``: FORCE items for every structure; ``charges_key``: CHARGE items from that
    per-atom entry.  A structure without them is an error, unless ``allow_missing``: then it
    gets no such items.  Energies are needed wherever a reference asks for them."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    _parse_reference(reference, "reference", None)
    for element, value in (element_energies or {}).items():
        if not math.isfinite(float(value)):
            raise ValueError(f"element_energies: {element}: not a finite energy: {value!r}")
    records = []
    for path in paths:
        for index, atoms in enumerate(load_frames(path)):
            records.append(_Record(path, index, atoms))
    if not records:
        raise DatasetError(paths[0] if paths else "", None, "file", "no structures")
    _assign_names(records)
    by_name = {r.name: r for r in records}
    originals = Counter(str(r.atoms.info.get("name", "")) for r in records)
    for r in records:
        r.mode = _parse_reference(r.atoms.info.get("energy_reference", reference),
                                  "energy_reference", r)
        r.ref = _resolve(r.mode, r, records, by_name, originals)
    needed = {id(r) for r in records if r.mode[0] != "none"}
    needed |= {id(r.ref) for r in records if r.ref is not None}
    structures, items = [], []
    for r in records:
        r.read(energy_key if id(r) in needed else False, forces_key if forces else False,
               charges_key, total_charge_key, allow_missing)
        structures.append(r.structure(energy_key, forces_key, charges_key))
    _check_references(records, element_energies)
    lowest = {}
    for r in records:
        if r.mode[0] == "min" and (r.composition not in lowest
                                   or r.energy < lowest[r.composition].energy):
            lowest[r.composition] = r
    for r in records:
        r.ref = lowest[r.composition] if r.mode[0] == "min" else r.ref
        items += _energy_items(r, element_energies, energy_weight)
    for r in records:
        items += _atom_items(r, "FORCE", r.forces, force_weight) if forces else []
        items += _atom_items(r, "CHARGE", r.charges, charge_weight) if charges_key else []
    return structures, items


class _Record:
    """One input structure while it is converted."""

    def __init__(self, path, index: int, atoms: Atoms):
        self.path, self.index, self.atoms = path, index, atoms
        self.name = ""
        self.mode: tuple[str, str | None] = ("none", None)
        self.ref: _Record | None = None
        self.energy = self.forces = self.charges = None
        self.total_charge, self.composition = 0.0, None
        self.rotation = np.eye(3)

    def error(self, field: str, message: str) -> DatasetError:
        return DatasetError(self.path, self.index, field, message, self.name)

    def read(self, energy_key, forces_key, charges_key, total_charge_key,
             allow_missing: bool) -> None:
        """Check the structure and take its values; a key of False means "not needed", None
        the calculator's value."""
        atoms = self.atoms
        types = atoms.arrays.get("reax_types")
        dummy = (types == "X") if types is not None else np.zeros(len(atoms), bool)
        unknown = np.flatnonzero((atoms.numbers <= 0) & ~dummy)
        if unknown.size:
            raise self.error("symbols", f"unknown element (X) at atom {int(unknown[0])} (only "
                             "ReaxFF's dummy atom type, reax_types 'X', may have no element)")
        if not np.isfinite(atoms.positions).all():
            raise self.error("positions", "non-finite coordinates")
        if atoms.pbc.any() and not np.isfinite(atoms.cell.array).all():
            raise self.error("cell", "non-finite cell")
        if energy_key is not False:
            value = _lookup(atoms, energy_key or "energy", per_atom=False)
            if value is None:
                raise self.error(energy_key or "energy", "missing energy")
            self.energy = self._finite(energy_key or "energy", value, ())
        if forces_key is not False:
            value = _lookup(atoms, forces_key or "forces", per_atom=True)
            if value is None and not allow_missing:
                raise self.error(forces_key or "forces", "missing forces")
            if value is not None:
                self.forces = self._finite(forces_key or "forces", value, (len(atoms), 3))
        if charges_key:
            value = _lookup(atoms, charges_key, per_atom=True)
            if value is None and not allow_missing:
                raise self.error(charges_key, "missing charges")
            if value is not None:
                self.charges = self._finite(charges_key, value, (len(atoms),))
        self.total_charge = 0.0
        if total_charge_key and atoms.info.get(total_charge_key) is not None:
            self.total_charge = float(self._finite(total_charge_key,
                                                   atoms.info[total_charge_key], ()))
        self.composition = (tuple(sorted(Counter(atoms.get_chemical_symbols()).items())),
                            self.total_charge)

    def _finite(self, field: str, value, shape):
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise self.error(field, f"not a number: {value!r}") from None
        if array.shape != shape:
            raise self.error(field, f"expected shape {shape}, got {array.shape}")
        if not np.isfinite(array).all():
            raise self.error(field, "NaN or infinite value")
        return array

    def structure(self, *keys) -> Atoms:
        """The output structure, rotated into the ReaxFF frame, with its values on a
        SinglePointCalculator (and the info/arrays entries they came from removed)."""
        try:
            out, self.rotation = reaxff_orientation(self.atoms)
        except ValueError as exc:
            raise self.error("cell", str(exc)) from None
        for key in filter(None, keys):
            out.info.pop(key, None)
            if key in out.arrays and key not in ("numbers", "positions"):
                del out.arrays[key]
        out.info["name"] = self.name
        out.info["charge"] = self.total_charge
        if self.forces is not None:
            self.forces = self.forces @ self.rotation
        results = {"energy": None if self.energy is None else float(self.energy),
                   "forces": self.forces, "charges": self.charges}
        out.calc = SinglePointCalculator(out, **results)
        return out


def _lookup(atoms: Atoms, key: str, per_atom: bool):
    """A value from info/arrays (the user's key), else from the calculator's results."""
    store = atoms.arrays if per_atom else atoms.info
    if key in store:
        return store[key]
    if per_atom and key in atoms.info:  # ase.db data
        return atoms.info[key]
    calc = atoms.calc
    if calc is not None and key in getattr(calc, "results", {}):
        return calc.results[key]
    return None


def sanitize_name(name: str) -> str:
    """A structure name usable as one trainset word (and not a section keyword)."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(name).strip())
    if name.startswith("-"):
        name = "_" + name[1:]
    upper = name.upper()
    if upper in _SECTION_WORDS or upper.removeprefix("END") in _SECTION_WORDS:
        name = "s_" + name
    return name


def _assign_names(records: list[_Record]) -> None:
    taken: set[str] = set()
    for r in records:
        raw = r.atoms.info.get("name")
        base = sanitize_name(raw) if raw not in (None, "") else ""
        base = base or sanitize_name(f"{Path(r.path).stem}_{r.index}")
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        r.name = name


def _parse_reference(value, field: str, record) -> tuple[str, str | None]:
    text = str(value).strip()
    if text in _KEYWORDS:
        return (text, None)
    if text.startswith("structure:") and text[len("structure:"):].strip():
        return ("structure", text[len("structure:"):].strip())
    message = (f"expected one of {', '.join(_KEYWORDS)} or structure:<name or index>, "
               f"got {text!r}")
    if record is None:
        raise ValueError(f"{field}: {message}")
    raise record.error(field, message)


def _resolve(mode, r: _Record, records, by_name, originals) -> _Record | None:
    if mode[0] != "structure":
        return None
    target = mode[1]
    if target in by_name:
        return by_name[target]
    matches = [x for x in records if str(x.atoms.info.get("name", "")) == target]
    if len(matches) == 1 and originals[target] == 1:
        return matches[0]
    if re.fullmatch(r"-?\d+", target) and -len(records) <= int(target) < len(records):
        return records[int(target)]
    raise r.error("energy_reference", f"no structure named {target!r}")


def _check_references(records, element_energies) -> None:
    for r in records:
        if r.mode[0] == "structure" and "energy_reference" not in r.atoms.info \
                and r.ref.composition != r.composition:
            raise r.error("energy_reference", f"{_formula(r)} is not the composition of the "
                          f"reference {r.ref.name} ({_formula(r.ref)}); use reference='min' "
                          "or 'elements'")
        if r.mode[0] == "elements":
            missing = sorted(set(r.atoms.get_chemical_symbols()) - set(element_energies or {}))
            if missing:
                raise r.error("element_energies", f"no reference energy for {missing}")


def _formula(r: _Record) -> str:
    charge = f", charge {r.total_charge:g}" if r.total_charge else ""
    return r.atoms.get_chemical_formula() + charge


def _weight(r: _Record, key: str, default: float, n: int | None = None):
    value = r.atoms.arrays.get(key) if n is not None else None
    value = r.atoms.info.get(key, default) if value is None else value
    weights = r._finite(key, value, (n,) if n is not None and np.ndim(value) else ())
    if (weights <= 0).any():
        raise r.error(key, f"weights must be > 0, got {value!r}")
    return np.broadcast_to(weights, (n,)) if n is not None else float(weights)


def _energy_items(r: _Record, element_energies, default_weight) -> list[TrainItem]:
    mode, ref = r.mode[0], r.ref
    if mode == "none":
        return []
    weight = _weight(r, "energy_weight", default_weight)
    if mode in ("absolute", "elements"):
        offset = 0.0 if mode == "absolute" else math.fsum(
            element_energies[s] for s in r.atoms.get_chemical_symbols())
        target = (float(r.energy) - offset) * EV_TO_KCAL
        return [TrainItem("ENERGY", weight, (target,), (r.name,), (1.0,))]
    if ref is r:
        return []
    target = (float(r.energy) - float(ref.energy)) * EV_TO_KCAL
    return [TrainItem("ENERGY", weight, (target,), (r.name, ref.name), (1.0, -1.0))]


def _atom_items(r: _Record, category: str, values, default_weight) -> list[TrainItem]:
    if values is None:
        return []
    key = "force_weight" if category == "FORCE" else "charge_weight"
    weights = _weight(r, key, default_weight, len(r.atoms))
    scale = EV_TO_KCAL if category == "FORCE" else 1.0
    return [TrainItem(category, float(w), tuple(float(v) * scale for v in np.atleast_1d(row)),
                      (r.name,), (1.0,), atoms=(i,))
            for i, (w, row) in enumerate(zip(weights, values))]


__all__ = ["EV_TO_KCAL", "DatasetError", "load_frames", "read_dft", "sanitize_name"]
