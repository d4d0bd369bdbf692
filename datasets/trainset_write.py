"""Write ``trainset.in`` from :class:`~reaxgrad.datasets.trainset.TrainItem` lists.

Sections come in the standard order CHARGE, HEATFO, GEOMETRY (DISTANCE, ANGLE, TORSION and
RMSG items), CELL PARAMETERS, ENERGY, FORCES; items keep their relative order inside a
section, and empty sections are left out.  One line per item::

    CHARGE           name weight atom charge
    HEATFO           name weight value
    GEOMETRY         name weight atom1 atom2 [atom3 [atom4]] value  (RMSG: name weight value)
    CELL PARAMETERS  name weight a|b|c|alpha|beta|gamma value
    ENERGY           weight +|- name/n ... value      (factor +-1/n per structure)
    FORCES           name weight atom fx fy fz

Atoms are written 1-based.  Numbers are written with Python's shortest round-trip ``repr``, so
reading the file back gives the same floats; an ENERGY divisor n = 1/|factor| is written as an
integer when it is one (else as a float, exact to the last bit only for some factors).
The file is written atomically.
"""
from __future__ import annotations

from .geo_write import write_text_atomically
from .trainset import CATEGORIES, CELL_PARAMETERS, TrainItem

SECTIONS = (
    ("CHARGE", ("CHARGE",)),
    ("HEATFO", ("HEATFO",)),
    ("GEOMETRY", ("DISTANCE", "ANGLE", "TORSION", "RMSG")),
    ("CELL PARAMETERS", ("CELL",)),
    ("ENERGY", ("ENERGY",)),
    ("FORCES", ("FORCE",)),
)
_GEOMETRY_ATOMS = {"DISTANCE": 2, "ANGLE": 3, "TORSION": 4, "RMSG": 0}


def trainset_text(items) -> str:
    """The text of a ``trainset.in`` holding ``items`` (a list or a TrainingSet)."""
    items = list(getattr(items, "items", items))
    for item in items:
        if item.category not in CATEGORIES:
            raise ValueError(f"unknown training item category {item.category!r}")
    out = []
    for section, categories in SECTIONS:
        lines = [item_line(item) for item in items if item.category in categories]
        if lines:
            out += [section, *lines, f"END{section}"]
    return "\n".join(out) + "\n" if out else ""


def write_trainset(path, items) -> None:
    """Write ``items`` as a ``trainset.in`` file at ``path``, atomically."""
    write_text_atomically(path, trainset_text(items))


def item_line(item: TrainItem) -> str:
    """The ``trainset.in`` line of one item (without its section header)."""
    if not item.weight > 0:
        raise ValueError(f"{item.category} item of {item.structures}: weight must be > 0, "
                         f"got {item.weight!r}")
    weight = _num(item.weight)
    if item.category == "ENERGY":
        return f"{weight} {_energy_terms(item)} {_num(item.targets[0])}"
    name = _name(item.structures[0])
    atoms = " ".join(str(i + 1) for i in item.atoms)
    values = " ".join(_num(v) for v in item.targets)
    if item.category == "CHARGE":
        _expect_atoms(item, 1)
    elif item.category == "FORCE":
        _expect_atoms(item, 1)
        if len(item.targets) != 3:
            raise ValueError(f"FORCE item of {name} needs 3 targets, got {item.targets}")
    elif item.category in _GEOMETRY_ATOMS:
        _expect_atoms(item, _GEOMETRY_ATOMS[item.category])
    elif item.category == "CELL":
        if item.cell_parameter not in CELL_PARAMETERS:
            raise ValueError(f"CELL item of {name}: unknown cell parameter "
                             f"{item.cell_parameter!r}")
        atoms = item.cell_parameter
    return " ".join(word for word in (name, weight, atoms, values) if word)


def _energy_terms(item: TrainItem) -> str:
    if not item.structures or len(item.structures) != len(item.factors):
        raise ValueError(f"ENERGY item needs one factor per structure, got {item.structures} "
                         f"and {item.factors}")
    terms = []
    for name, factor in zip(item.structures, item.factors):
        if factor == 0:
            raise ValueError(f"ENERGY item: factor of {name} is zero")
        divisor = 1.0 / abs(factor)
        rounded = round(divisor)
        divisor_text = str(rounded) if abs(divisor - rounded) <= 1e-9 * divisor else _num(divisor)
        terms.append(f"{'+' if factor > 0 else '-'} {_name(name)}/{divisor_text}")
    return " ".join(terms)


def _expect_atoms(item: TrainItem, n: int) -> None:
    if len(item.atoms) != n:
        raise ValueError(f"{item.category} item of {item.structures[0]} needs {n} atoms, "
                         f"got {item.atoms}")


def _name(name: str) -> str:
    if not name or len(str(name).split()) != 1 or "/" in name:
        raise ValueError(f"structure name {name!r} is not a trainset word")
    return str(name)


def _num(value) -> str:
    return repr(float(value))


__all__ = ["SECTIONS", "item_line", "trainset_text", "write_trainset"]
