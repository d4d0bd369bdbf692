"""Training items of a ReaxFF fit (what ``trainset.in`` says), shared by the readers in
``datasets/`` and the loss in ``optimize/``, and :func:`read_trainset`, the reader of
``trainset.in``.

One :class:`TrainItem` per line of the file (a per-structure FORCES line becomes one item per
atom). Categories: ENERGY CHARGE HEATFO DISTANCE ANGLE TORSION RMSG CELL FORCE.

The file format, with JAX-ReaxFF's semantics (``jaxreaxff/helper.py: read_train_set``):
sections ``CHARGE``, ``HEATFO``, ``GEOMETRY``, ``CELL PARAMETERS``, ``ENERGY``, ``FORCES``,
each closed by ``END<SECTION>`` (keywords in any case, blanks inside them ignored); ``#`` and
``!`` start comments.  Lines:

* CHARGE ``name weight atom charge``; HEATFO ``name weight value``;
* GEOMETRY ``name weight a1 a2 target`` (distance), ``a1 a2 a3`` (angle), ``a1 a2 a3 a4``
  (torsion) or ``name weight target`` (RMSG);
* CELL PARAMETERS ``name weight a|b|c|alpha|beta|gamma value``;
* ENERGY ``weight (+|- name /n)... target``: ``/`` is split off as JAX-ReaxFF does, so
  ``name/2`` and ``name /2`` are the same, while the sign is a word of its own (names may
  hold ``-`` and ``.``); the factor of each term is +1/n or -1/n;
* FORCES ``name weight atom fx fy fz`` (the consecutive lines of one structure must give each
  of its atoms once), ``name weight fx1 fy1 fz1 ... fxN fyN fzN`` (every atom on one line) or
  ``name weight value`` (RMSG); forces in kcal/mol/Å as written.

Anything else, a non-positive or non-finite weight, a non-finite target or an atom index
outside the structure raises :class:`TrainsetError` naming the file, the line and the field.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from reaxgrad.errors import InputFileError

CATEGORIES = ("ENERGY", "CHARGE", "HEATFO", "DISTANCE", "ANGLE", "TORSION", "RMSG", "CELL",
              "FORCE")
CELL_PARAMETERS = ("a", "b", "c", "alpha", "beta", "gamma")


@dataclass(frozen=True)
class TrainItem:
    """One target (or three, for a per-atom force) of a training set.

    category: one of CATEGORIES. weight: the divisor of the error, > 0.
    targets: (value,) or, for FORCE, (fx, fy, fz) in kcal/mol/Å.
    structures: the geo names it refers to (ENERGY: every term; else one).
    factors: ENERGY: +1/n or -1/n per structure; else (1.0,).
    atoms: 0-based atom indices (CHARGE 1, DISTANCE 2, ANGLE 3, TORSION 4, FORCE 1; else ()).
    cell_parameter: CELL only: a b c alpha beta gamma.
    path, line, text: where it was read (text: the line as written, stripped).
    """

    category: str
    weight: float
    targets: tuple[float, ...]
    structures: tuple[str, ...]
    factors: tuple[float, ...] = (1.0,)
    atoms: tuple[int, ...] = ()
    cell_parameter: str | None = None
    path: str = ""
    line: int = 0
    text: str = ""


@dataclass
class TrainingSet:
    """The items of one file, in file order."""

    items: list[TrainItem] = field(default_factory=list)
    path: str = ""

    def structure_names(self) -> list[str]:
        """Every structure the items refer to, in first-use order."""
        seen: dict[str, None] = {}
        for item in self.items:
            for name in item.structures:
                seen.setdefault(name, None)
        return list(seen)


class TrainsetError(InputFileError):
    """A malformed ``trainset.in``: the message names the file, the line and the field."""


class TrainsetWarning(UserWarning):
    """An item dropped by ``read_trainset(..., strict=False)``: its structure is not in the geo
    file (JAX-ReaxFF drops such items without a word)."""


SECTIONS = ("CHARGE", "HEATFO", "GEOMETRY", "CELL PARAMETERS", "ENERGY", "FORCES")
_KEYS = {s.replace(" ", ""): s for s in SECTIONS}  # "CELLPARAMETERS" -> "CELL PARAMETERS"
_KEYWORD_LINE = re.compile(r"[A-Za-z][A-Za-z \t]*\Z")
_INTEGER = re.compile(r"[+-]?\d+\Z")
_GEOMETRY = {3: "RMSG", 5: "DISTANCE", 6: "ANGLE", 7: "TORSION"}
_USAGE = {
    "CHARGE": "name weight atom charge",
    "HEATFO": "name weight heat_of_formation",
    "GEOMETRY": "name weight [a1 a2 [a3 [a4]]] target",
    "CELL PARAMETERS": "name weight a|b|c|alpha|beta|gamma value",
    "ENERGY": "weight +|- name /n [+|- name /n ...] target",
    "FORCES": "name weight atom fx fy fz, name weight fx1 fy1 fz1 ... fxN fyN fzN, "
              "or name weight rmsg",
}


def read_trainset(path, structures=None, strict: bool = True) -> TrainingSet:
    """Read a ReaxFF ``trainset.in`` (JAX-ReaxFF's semantics; see the module docstring).

    ``structures``: optional mapping geo name -> number of atoms; when given, every structure
    name and atom index is checked against it.  Raises :class:`TrainsetError`.  With
    ``strict=False`` an item naming a structure absent from ``structures`` is dropped with a
    :class:`TrainsetWarning` (JAX-ReaxFF's ``filter_data`` drops it silently) instead.
    """
    reader = _Reader(path, structures, strict)
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    lineno = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        reader.feed(lineno, raw)
    reader.finish(lineno)
    return TrainingSet(reader.items, str(path))


class _Line:
    """One data line of a section: its words and checked conversions of them."""

    def __init__(self, reader: _Reader, lineno: int, raw: str, data: str):
        self.reader, self.lineno, self.text = reader, lineno, raw.strip()
        self.section = reader.section
        self.words = data.split()
        self.missing: list[str] = []  # structures absent from the geo file

    def error(self, message: str) -> TrainsetError:
        return TrainsetError(self.reader.path, self.lineno, f"{self.section}: {message}")

    def shape_error(self) -> TrainsetError:
        n = len(self.words)
        return self.error(f"{n} field{'s' * (n != 1)}, expected '{_USAGE[self.section]}'")

    def number(self, word: str, field: str) -> float:
        try:
            value = float(word)
        except ValueError:
            raise self.error(f"{field} {word!r} is not a number") from None
        if not math.isfinite(value):
            raise self.error(f"{field} is {word!r}, expected a finite number")
        return value

    def weight(self, word: str) -> float:
        value = self.number(word, "weight")
        if value <= 0.0:
            raise self.error(f"weight {word!r} must be positive (it divides the error)")
        return value

    def structure(self, name: str) -> str:
        sizes = self.reader.sizes
        if sizes is not None and name not in sizes:
            self.missing.append(name)
        return name

    def atom(self, word: str, name: str, field: str = "atom") -> int:
        if not _INTEGER.match(word):
            raise self.error(f"{field} {word!r} is not an integer atom index")
        index = int(word)
        n = self.reader.size(name)
        if index < 1 or (n is not None and index > n):
            limit = f"1..{n}" if n is not None else ">= 1"
            where = "" if field == "atom" else f"{field}: "
            raise self.error(f"{where}atom {index} of structure {name!r} is outside {limit}")
        return index - 1

    def item(self, category: str, weight: float, targets, structures, **kw) -> TrainItem:
        return TrainItem(category, weight, tuple(targets), tuple(structures), path=str(
            self.reader.path), line=self.lineno, text=self.text, **kw)


class _Reader:
    """The state of a file being read: the open section and the current FORCES block."""

    def __init__(self, path, structures, strict: bool = True):
        self.path, self.strict = str(path), strict
        self.sizes = None if structures is None else {str(k): int(v)
                                                      for k, v in dict(structures).items()}
        self.items: list[TrainItem] = []
        self.section: str | None = None
        self.opened = 0
        self.block: _ForceBlock | None = None
        self.force_lines: dict[tuple[str, int], int] = {}

    def size(self, name: str) -> int | None:
        """The number of atoms of a structure, None when unknown."""
        return None if self.sizes is None else self.sizes.get(name)

    def feed(self, lineno: int, raw: str) -> None:
        data = re.split(r"[#!]", raw, maxsplit=1)[0].strip()
        if not data:
            return
        if _KEYWORD_LINE.match(data):
            self.keyword(lineno, data)
            return
        if self.section is None:
            raise TrainsetError(self.path, lineno, f"{data.split()[0]!r}: line outside any "
                                f"section (expected one of {', '.join(SECTIONS)})")
        line = _Line(self, lineno, raw, data)
        items = self.forces(line) if self.section == "FORCES" else _PARSERS[self.section](line)
        if not line.missing:
            self.items.extend(items)
        elif self.strict:
            raise line.error(f"structure {line.missing[0]!r} is not in the geo file")
        else:
            warnings.warn(f"{self.path} line {lineno}: {self.section}: structure "
                          f"{line.missing[0]!r} is not in the geo file: item dropped",
                          TrainsetWarning, stacklevel=3)

    def keyword(self, lineno: int, data: str) -> None:
        key = "".join(data.split()).upper()
        if key in _KEYS:
            if self.section is not None:
                raise TrainsetError(self.path, lineno, f"section {_KEYS[key]} starts while "
                                    f"{self.section} (line {self.opened}) is still open: "
                                    f"missing END{self.section}")
            self.section, self.opened = _KEYS[key], lineno
        elif key.startswith("END") and key[3:] in _KEYS:
            if self.section != _KEYS[key[3:]]:
                where = (f"the open section is {self.section} (line {self.opened})"
                         if self.section else "no section is open")
                raise TrainsetError(self.path, lineno, f"{data!r} closes {_KEYS[key[3:]]} "
                                    f"but {where}")
            self.close_block()
            self.section = None
        else:
            raise TrainsetError(self.path, lineno, f"unknown section keyword {data!r} "
                                f"(expected one of {', '.join(SECTIONS)} or its END line)")

    def finish(self, lineno: int) -> None:
        if self.section is not None:
            raise TrainsetError(self.path, self.opened, f"section {self.section} is never "
                                f"closed (no END{self.section.replace(' ', '')} before the end "
                                f"of the file, line {lineno})")

    def forces(self, line: _Line) -> list[TrainItem]:
        words, n = line.words, len(line.words)
        if n == 3 or n == 6 or (n >= 5 and (n - 2) % 3 == 0):
            name = line.structure(words[0])
            weight = line.weight(words[1])
        else:
            raise line.shape_error()
        if n == 3:
            self.close_block()
            return [line.item("RMSG", weight, [line.number(words[2], "RMSG target")], [name])]
        if n == 6:
            atom = line.atom(words[2], name)
            if self.block is None or self.block.name != name:
                self.close_block()
                self.block = _ForceBlock(name, line.lineno)
            self.block.atoms.append(atom)
            rows = [(atom, words[3:6])]
        else:
            self.close_block()
            count = (n - 2) // 3
            size = self.size(name)
            if size is not None and count != size:
                raise line.error(f"{count} force vectors for structure {name!r}, which has "
                                 f"{size} atoms")
            rows = [(k, words[2 + 3 * k: 5 + 3 * k]) for k in range(count)]
        items = []
        for atom, xyz in rows:
            seen = self.force_lines.setdefault((name, atom), line.lineno)
            if seen != line.lineno:
                raise line.error(f"the force on atom {atom + 1} of {name!r} is already given "
                                 f"on line {seen}")
            force = [line.number(w, f"f{c} of atom {atom + 1}") for w, c in zip(xyz, "xyz")]
            items.append(line.item("FORCE", weight, force, [name], atoms=(atom,)))
        return items

    def close_block(self) -> None:
        """Check that the per-atom FORCES lines just read cover their structure once each."""
        block, self.block = self.block, None
        if block is None:
            return
        n = self.size(block.name) or max(block.atoms) + 1
        missing = sorted(set(range(n)) - set(block.atoms))
        if missing:
            shown = ", ".join(str(k + 1) for k in missing[:10]) + (" ..." * (len(missing) > 10))
            raise TrainsetError(self.path, block.lineno, f"FORCES: the per-atom forces of "
                                f"{block.name!r} from this line on give {len(block.atoms)} of "
                                f"its {n} atoms; missing atom(s) {shown}")


class _ForceBlock:
    """Consecutive per-atom FORCES lines of one structure."""

    def __init__(self, name: str, lineno: int):
        self.name, self.lineno = name, lineno
        self.atoms: list[int] = []


def _charge(line: _Line) -> list[TrainItem]:
    if len(line.words) != 4:
        raise line.shape_error()
    name_w, weight_w, atom_w, charge_w = line.words
    name = line.structure(name_w)
    weight = line.weight(weight_w)
    atom = line.atom(atom_w, name)
    charge = line.number(charge_w, "charge")
    return [line.item("CHARGE", weight, [charge], [name], atoms=(atom,))]


def _heatfo(line: _Line) -> list[TrainItem]:
    if len(line.words) != 3:
        raise line.shape_error()
    name, weight = line.structure(line.words[0]), line.weight(line.words[1])
    return [line.item("HEATFO", weight, [line.number(line.words[2], "heat of formation")],
                      [name])]


def _geometry(line: _Line) -> list[TrainItem]:
    words = line.words
    category = _GEOMETRY.get(len(words))
    if category is None:
        raise line.shape_error()
    name, weight = line.structure(words[0]), line.weight(words[1])
    atoms = tuple(line.atom(w, name, f"a{k + 1}") for k, w in enumerate(words[2:-1]))
    if len(set(atoms)) != len(atoms):
        raise line.error(f"{category.lower()} {' '.join(words[2:-1])} repeats an atom")
    target = line.number(words[-1], f"{category.lower()} target")
    return [line.item(category, weight, [target], [name], atoms=atoms)]


def _cell(line: _Line) -> list[TrainItem]:
    if len(line.words) != 4:
        raise line.shape_error()
    name, weight = line.structure(line.words[0]), line.weight(line.words[1])
    parameter = line.words[2].lower()
    if parameter not in CELL_PARAMETERS:
        raise line.error(f"cell parameter {line.words[2]!r} is not one of "
                         f"{' '.join(CELL_PARAMETERS)}")
    value = line.number(line.words[3], f"cell {parameter}")
    return [line.item("CELL", weight, [value], [name], cell_parameter=parameter)]


def _energy(line: _Line) -> list[TrainItem]:
    """``weight (+|- name /n)... target``, tokenised as JAX-ReaxFF does (``/`` -> `` / ``)."""
    words = " ".join(line.words).replace("/", " / ").split()
    if len(words) < 3:
        raise line.shape_error()
    if words[-2] == "/":
        raise line.error(f"no target energy after the last term {' '.join(words[-4:])!r}")
    weight = line.weight(words[0])
    names, factors = [], []
    terms = words[1:-1]
    for start in range(0, len(terms), 4):
        term = f"term {start // 4 + 1}"
        sign, name, slash, divisor = (terms[start: start + 4] + [None] * 4)[:4]
        if sign not in ("+", "-"):
            raise line.error(f"{term}: expected '+' or '-' as a separate word, got {sign!r}")
        if name is None or name in ("+", "-", "/"):
            raise line.error(f"{term}: expected a structure name after {sign!r}")
        if slash != "/" or divisor is None:
            raise line.error(f"{term}: expected '/n' after {name!r}")
        n = line.number(divisor, f"{term}: divisor of {name!r}")
        if n <= 0.0:
            raise line.error(f"{term}: divisor {divisor!r} of {name!r} must be positive")
        names.append(line.structure(name))
        factors.append(1.0 / n if sign == "+" else -1.0 / n)
    target = line.number(words[-1], "target energy")
    return [line.item("ENERGY", weight, [target], names, factors=tuple(factors))]


_PARSERS = {"CHARGE": _charge, "HEATFO": _heatfo, "GEOMETRY": _geometry,
            "CELL PARAMETERS": _cell, "ENERGY": _energy}


__all__ = ["CATEGORIES", "CELL_PARAMETERS", "TrainItem", "TrainingSet", "TrainsetError",
           "TrainsetWarning", "read_trainset"]
