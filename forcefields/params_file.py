"""The ReaxFF ``params`` file: which force-field parameters a fit may move, and their bounds.

Each line reads ``section entry number step lower upper [! comment]`` (``#`` starts a comment
line).  The convention, shared by the standalone ReaxFF program and JAX-ReaxFF:

* ``section``: 1 general, 2 atoms, 3 bonds, 4 off-diagonal, 5 angles, 6 torsions, 7 hbonds;
* ``entry``: the 1-based position of the record within its section, in file order (for
  section 1 the general-parameter index; ``number`` is then 1);
* ``number``: the 1-based position of the value within the record, counted across its lines
  (atoms: 1-8 on the symbol line, 9-16, 17-24, 25-32; bonds: 1-8 then 9-16).

:func:`map_params` resolves every line to the ffield value it edits (``Param.record``) and to
the table entries of :func:`~reaxgrad.forcefields.ffield.to_params` that value feeds
(``Param.targets``: leaf name, index, scale).  One value may feed several entries: a bond or
off-diagonal value both (i, j) and (j, i), an angle (i, j, k) and (k, j, i), a torsion wildcard
every quadruple it covers.  Values LAMMPS never reads, and entries overridden by later ones,
have no targets.  Table entries that are mixed from atom values (``pair_*``, ``nlp_opt``) are
not targets: :func:`scatter_params` recomputes them with ``ffield_tables.derive``.

The masks (which off-diagonal values apply, which angles count) are fixed by the starting
ffield, as in JAX-ReaxFF; a fit that moves such a value across its threshold changes what
LAMMPS would do with the written file.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reaxgrad.errors import InputFileError

from .ffield import SECTIONS, ForceField, section_layout
from .ffield_tables import (
    ATOM_FIELDS,
    ATOM_SCALE,
    LIGHT_ATOM_MASS,
    SECTION_FIELDS,
    build_tables,
    derive,
)


class ParamsFileError(InputFileError):
    """A malformed or inconsistent params file."""


class ParamsFileWarning(UserWarning):
    """A params line read as JAX-ReaxFF reads it, though it is not as it should be (bounds
    written upper first, which JAX-ReaxFF swaps)."""


@dataclass(frozen=True)
class ParamLine:
    """One line of a params file, as written (bounds sorted so that lower <= upper)."""

    section: int
    entry: int
    number: int
    step: float
    lower: float
    upper: float
    comment: str = ""
    lineno: int = 0


@dataclass(frozen=True)
class Target:
    """A table entry fed by a parameter: ``tables[leaf][index] = scale * value``."""

    leaf: str
    index: tuple[int, ...]
    scale: float = 1.0


@dataclass(frozen=True)
class Param:
    """A parameter resolved against a force field.

    ``record`` = (ffield section name, record index, value index): ``ff.section(name)[i]
    .values[k]`` is the raw value.  ``targets`` lists the ``to_params`` entries it sets.
    """

    key: tuple[int, int, int]
    record: tuple[str, int, int]
    targets: tuple[Target, ...]
    lower: float = -np.inf
    upper: float = np.inf
    step: float = 0.0
    comment: str = ""

    def value(self, ff: ForceField) -> float:
        name, i, k = self.record
        return ff.section(name)[i].value(k)


_INT = re.compile(r"[+-]?\d+\Z")


def read_params(path, strict: bool = False) -> list[ParamLine]:
    """Parse a params file.  Blank lines and lines starting with ``#`` are skipped; text after
    ``!`` or ``#`` is a comment.  Raises :class:`ParamsFileError` on malformed lines and on
    NaN/Inf step or bounds.  A lower bound above the upper one is swapped, as JAX-ReaxFF does,
    with a :class:`ParamsFileWarning` naming the line; with ``strict=True`` it is an error."""
    out = []
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    for lineno, line in enumerate(text.splitlines(), start=1):
        data, _, comment = line.partition("!")
        data = data.split("#", 1)[0]
        words = data.split()
        if not words:
            continue
        if len(words) < 6:
            raise ParamsFileError(
                path,
                lineno,
                f"expected 'section entry number step lower upper', got {line.strip()!r}",
            )
        names = ("section", "entry", "parameter number")
        for word, name in zip(words[:3], names):
            if not _INT.match(word):
                raise ParamsFileError(path, lineno, f"expected an integer {name}, got {word!r}")
        numbers = []
        for word, name in zip(words[3:6], ("step", "lower bound", "upper bound")):
            try:
                numbers.append(float(word))
            except ValueError:
                raise ParamsFileError(
                    path, lineno, f"expected a number for the {name}, got {word!r}"
                ) from None
            if not math.isfinite(numbers[-1]):
                raise ParamsFileError(
                    path, lineno, f"the {name} is {word!r}, expected a finite number"
                )
        section, entry, number = (int(w) for w in words[:3])
        step, lo, hi = numbers
        if lo > hi:
            message = (f"lower bound {words[4]} is above upper bound {words[5]} "
                       f"(parameter {section} {entry} {number})")
            if strict:
                raise ParamsFileError(path, lineno, message)
            warnings.warn(f"{path} line {lineno}: {message}: swapped, as JAX-ReaxFF does",
                          ParamsFileWarning, stacklevel=2)
        out.append(
            ParamLine(
                section, entry, number, step, min(lo, hi), max(lo, hi), comment.strip(), lineno
            )
        )
    return out


def map_params(ff: ForceField, params) -> list[Param]:
    """Resolve params-file lines (a path or ``read_params`` output) against ``ff``."""
    path = params if isinstance(params, (str, Path)) else "<params>"
    lines = read_params(params) if isinstance(params, (str, Path)) else list(params)
    resolver = _Resolver(ff)
    out, first_line = [], {}
    for line in lines:
        key = (line.section, line.entry, line.number)
        if key in first_line:
            raise ParamsFileError(
                path, line.lineno, f"parameter {key} is already listed on line {first_line[key]}"
            )
        first_line[key] = line.lineno
        try:
            record, targets = resolver.locate(*key)
        except (KeyError, IndexError) as err:
            raise ParamsFileError(path, line.lineno, err.args[0]) from None
        out.append(Param(key, record, targets, line.lower, line.upper, line.step, line.comment))
    return out


def all_params(ff: ForceField) -> list[Param]:
    """Every value of every record of ``ff`` as a :class:`Param` (unbounded)."""
    resolver = _Resolver(ff)
    out = []
    for s, name in enumerate(SECTIONS, start=1):
        width = sum(len(spec.kinds) for spec in section_layout(name, ff.lg))
        for e, rec in enumerate(ff.section(name), start=1):
            for number in range(1, min(width, max(len(rec.values), 1)) + 1):
                record, targets = resolver.locate(s, e, number)
                out.append(Param((s, e, number), record, targets))
    return out


def param_values(ff: ForceField, params: list[Param]) -> np.ndarray:
    """The current raw values of ``params`` in ``ff``."""
    return np.array([p.value(ff) for p in params], dtype=np.float64)


def apply_params(ff: ForceField, params: list[Param], values) -> ForceField:
    """A copy of ``ff`` with ``params`` set to ``values`` (raw ffield units), ready to write."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(params),):
        raise ValueError(f"expected {len(params)} values, got shape {values.shape}")
    new = ff.copy()
    for param, value in zip(params, values):
        name, i, k = param.record
        new.section(name)[i].set_value(k, float(value))
    return new


def scatter_params(tables: dict, params: list[Param], values) -> dict:
    """``tables`` (from ``to_params``) with ``params`` set to ``values`` and the derived tables
    recomputed: the same result as ``to_params(apply_params(ff, params, values))`` as long as no
    value crosses a threshold that decides a mask."""
    values = np.asarray(values, dtype=np.float64)
    out = dict(tables)
    for leaf, (index, which, scale) in scatter_plan(params).items():
        table = out[leaf] = np.array(out[leaf], copy=True)
        table[index] = scale * values[which]
    with np.errstate(invalid="ignore", divide="ignore"):
        out.update(derive(out))
    return out


def scatter_plan(
    params: list[Param],
) -> dict[str, tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]]:
    """Per leaf: (index arrays, parameter position, scale), so that
    ``table[index] = scale * values[position]`` applies every target at once (the form a
    traced ``.at[index].set(...)`` wants)."""
    grouped: dict[str, tuple[list, list, list]] = {}
    for n, param in enumerate(params):
        for t in param.targets:
            idx, which, scale = grouped.setdefault(t.leaf, ([], [], []))
            idx.append(t.index)
            which.append(n)
            scale.append(t.scale)
    plan = {}
    for leaf, (idx, which, scale) in grouped.items():
        index = tuple(np.array(col, dtype=np.int64) for col in zip(*idx))
        plan[leaf] = (index, np.array(which, dtype=np.int64), np.array(scale))
    return plan


class _Resolver:
    """Finds the record value and the table entries of (section, entry, number)."""

    def __init__(self, ff: ForceField):
        self.ff = ff
        self.tables, self.owners = build_tables(ff)

    def locate(self, section: int, entry: int, number: int):
        if not 1 <= section <= len(SECTIONS):
            raise KeyError(f"section {section} does not exist (1 general ... 7 hydrogen bonds)")
        name = SECTIONS[section - 1]
        records = self.ff.section(name)
        if not 1 <= entry <= len(records):
            raise IndexError(f"{name} entry {entry} does not exist (the ffield has {len(records)})")
        width = sum(len(spec.kinds) for spec in section_layout(name, self.ff.lg))
        if name == "general":
            width = 1
        if not 1 <= number <= width:
            raise IndexError(f"{name} parameter number {number} is outside 1..{width}")
        e, k = entry - 1, number - 1
        return (name, e, k), tuple(self._targets(name, e, k))

    def _targets(self, name: str, e: int, k: int):
        if name == "general":
            yield Target("gp", (e,))
            return
        if name == "atoms":
            yield from self._atom_targets(e, k)
            return
        for leaf, idx in SECTION_FIELDS[name]:
            if idx != k:
                continue
            family = leaf if name == "offdiagonal" else name
            for index in np.argwhere(self.owners[family] == e):
                yield Target(leaf, tuple(int(i) for i in index))

    def _atom_targets(self, e: int, k: int):
        light = self.tables["mass"][e] < LIGHT_ATOM_MASS
        for leaf, idx in ATOM_FIELDS:
            if idx != k or (leaf in ("lgcij", "lgre") and not self.ff.lg):
                continue
            if leaf == "valency_val" and light:
                continue  # LAMMPS replaces it by valency_boc
            yield Target(leaf, (e,), ATOM_SCALE.get(leaf, 1.0))
            if leaf == "valency_boc" and light:
                yield Target("valency_val", (e,))


__all__ = [
    "Param",
    "ParamLine",
    "ParamsFileError",
    "ParamsFileWarning",
    "Target",
    "all_params",
    "apply_params",
    "map_params",
    "param_values",
    "read_params",
    "scatter_params",
    "scatter_plan",
]
