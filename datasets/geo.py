"""Read ReaxFF ``geo`` files: BGF blocks (BIOGRF/XTLGRF ... END), one structure each.

Each block becomes an :class:`ase.Atoms`:

* ``info["name"]`` from ``DESCRP`` (the name ``trainset.in`` refers to);
* positions from ``HETATM``/``ATOM`` lines, read by the columns of the block's ``FORMAT ATOM``
  line (the standard BGF one by default), falling back to blank-separated words for hand-written
  lines; ``arrays["reax_types"]`` keeps the atom names as written (they select ffield atom
  types, as in JAX-ReaxFF), the chemical symbols are derived from them (an exact two-letter
  symbol, else the first letter: ``C1`` is carbon; ``X`` is ReaxFF's dummy atom; any other
  name is an error, and so is a name outside ``elements`` when the force field's are given);
* the charge column, when present, is kept as ``arrays["bgf_charges"]`` and nothing else: it
  is neither the initial charges nor the structure's charge (structures are neutral unless
  ``MOLCHARGE`` says otherwise, as in JAX-ReaxFF);
* ``CRYSTX a b c alpha beta gamma`` gives the cell in the ReaxFF/BGF convention, which is not
  ASE's ``cellpar_to_cell``: **c** lies along z, **b** in the yz plane, and **a** completes the
  frame (as in ReaxFF's ``vlist`` and JAX-ReaxFF's ``orthogonalization_matrix``).  HETATM
  coordinates are Cartesian in that frame, so they are used as they are; ``pbc`` is set only
  with ``CRYSTX``;
* ``info["relax_steps"]``, JAX-ReaxFF's energy-minimisation budget: 99999 (minimise) unless a
  ``RUTYPE`` line says otherwise: ``SINGLE POINT`` -> 0, ``NORMAL RUN`` -> 99999, ``MAXIT n``
  -> n (0 when n < 5); other run types (``CELL OPT``, ``ENDPO``, ``MAXMOV``, ``NO CELL OPT``)
  change nothing; of several ``RUTYPE`` lines, the last that applies wins;
* kept in ``info`` when present: ``bgf_header``, ``remarks``, ``rutype`` (raw lines),
  ``crystx``, ``molcharge`` [(first, last, charge), 0-based inclusive] and ``charge`` (their
  sum), ``bond_restraints``/``angle_restraints``/``torsion_restraints`` (dicts with 0-based
  ``atoms``), ``bgf_energy``, and every other keyword line verbatim under ``keywords``
  (e.g. fixed-atom or cell-change directives of other ReaxFF versions).

Malformed input raises :class:`GeoError` (a ``ValueError``) naming the file, line and field:
an unreadable line, an unknown atom name, a non-finite or overflowed (``*****``) number, a
``BIOGRF``/``XTLGRF``/``DESCRP`` in a block that already has atoms (a missing ``END``), a
degenerate ``CRYSTX`` cell, a ``DESCRP`` name used twice, restraint atoms or ``MOLCHARGE``
ranges outside the structure.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from reaxgrad.errors import InputFileError

DEFAULT_ATOM_FORMAT = "(a6,1x,i5,1x,a5,1x,a3,1x,a1,1x,a5,3f10.5,1x,a5,i3,i2,1x,f8.5)"
_ATOM_FIELDS = ("record", "serial", "name", "residue", "chain", "residue_number",
                "x", "y", "z", "force_field_type", "n_bonds", "n_lone_pairs", "charge")  # fmt: skip
_FORMAT_ITEM = re.compile(r"\s*(\d*)\s*([aAiIfFeEdDxX])\s*(\d*)(?:\.\d+)?\s*\Z")
_RESTRAINT_ATOMS = {"BOND": 2, "ANGLE": 3, "TORSION": 4}
_IGNORED = {"CONECT", "ORDER", "UNIT"}
_BLOCK_STARTS = ("BIOGRF", "XTLGRF", "DESCRP")
_INTEGER = re.compile(r"[+-]?\d+\Z")
DUMMY = "X"  # ReaxFF's dummy atom type: a valid atom name that is no element
FULL_MINIMISATION = 99999  # JAX-ReaxFF's relax_steps for "minimise to convergence"


class GeoError(InputFileError):
    """A malformed geo file."""


def reaxff_cell(
    a: float, b: float, c: float, alpha: float, beta: float, gamma: float
) -> np.ndarray:
    """Cell vectors (rows) for BGF/ReaxFF cell parameters: c along z, b in the yz plane."""
    ca, cb, cg = (_cos_deg(t) for t in (alpha, beta, gamma))
    sa, sb = (math.sin(math.radians(t)) for t in (alpha, beta))
    cos_phi = min(1.0, max(-1.0, (cg - ca * cb) / (sa * sb)))
    sin_phi = math.sqrt(1.0 - cos_phi * cos_phi)
    return np.array(
        [[a * sb * sin_phi, a * sb * cos_phi, a * cb], [0.0, b * sa, b * ca], [0.0, 0.0, c]]
    )


def _cos_deg(angle: float) -> float:
    return 0.0 if angle == 90.0 else math.cos(math.radians(angle))


def _fortran_columns(fmt: str) -> dict[str, tuple[int, int]] | None:
    """Column ranges of the BGF atom fields in a Fortran format like DEFAULT_ATOM_FORMAT."""
    body = fmt.strip()
    if not (body.startswith("(") and body.endswith(")")):
        return None
    columns, pos = [], 0
    for item in body[1:-1].split(","):
        match = _FORMAT_ITEM.match(item)
        if not match:
            return None
        repeat, kind, width = match.groups()
        if kind in "xX":
            pos += int(repeat or width or 1)
            continue
        if not width:
            return None
        for _ in range(int(repeat or 1)):
            columns.append((pos, pos + int(width)))
            pos += int(width)
    return dict(zip(_ATOM_FIELDS, columns))


def _symbol(name: str) -> str | None:
    """The chemical symbol an atom name stands for: an exact two-letter symbol ("Co", "Si"),
    else its first letter ("C1", "OW", "HW"); ``X`` for ReaxFF's dummy; None otherwise."""
    if name == DUMMY:
        return DUMMY
    letters = re.match(r"[A-Za-z]+", name)
    if not letters:
        return None
    word = letters.group()
    word = word.capitalize() if word[0].islower() else word
    for candidate in (word[:2], word[:1]):
        if candidate in chemical_symbols[1:]:
            return candidate
    return None


class _Block:
    """The state of one BGF block while it is being read."""

    def __init__(self, lineno: int):
        self.lineno = lineno
        self.info: dict = {"relax_steps": FULL_MINIMISATION}
        self.names: list[str] = []
        self.symbols: list[str] = []
        self.positions: list[tuple[float, float, float]] = []
        self.charges: list[float | None] = []
        self.cell = None
        self.columns = _fortran_columns(DEFAULT_ATOM_FORMAT)
        self.atom_refs: list[tuple[int, str, tuple[int, ...]]] = []  # checked at the END

    def atoms(self, path, lineno: int) -> Atoms:
        name = self.info.get("name", "")
        if not self.names:
            raise GeoError(
                path, lineno, f"structure {name!r} (from line {self.lineno}) has no atoms"
            )
        n = len(self.names)
        for ref_line, what, indices in self.atom_refs:
            bad = [i + 1 for i in indices if not 0 <= i < n]
            if bad:
                raise GeoError(path, ref_line, f"{what}: atom {bad[0]} is outside structure "
                               f"{name!r}, which has {n} atoms")
        atoms = Atoms(self.symbols, positions=np.array(self.positions, dtype=np.float64))
        if self.cell is not None:
            atoms.set_cell(self.cell)
            atoms.set_pbc(True)
        atoms.new_array("reax_types", np.array(self.names, dtype=str))
        if all(q is not None for q in self.charges):
            atoms.new_array("bgf_charges", np.array(self.charges, dtype=np.float64))
        atoms.info.update(self.info)
        return atoms


def read_geo(path, elements=None) -> list[Atoms]:
    """Read every BGF block of a ReaxFF geo file, in file order.

    ``elements``: the force field's atom types (e.g. ``ForceField.elements``); when given,
    every atom name must be one of them (JAX-ReaxFF maps atom names straight to ffield types).
    """
    out: list[Atoms] = []
    names: dict[str, int] = {}
    allowed = None if elements is None else set(elements)
    block: _Block | None = None
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    lineno = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword = stripped.split()[0].upper()
        if keyword == "END":
            if block is not None:
                out.append(block.atoms(path, lineno))
            block = None
            continue
        if keyword in _BLOCK_STARTS and block is not None and block.names:
            raise GeoError(path, lineno, f"{keyword} inside structure "
                           f"{block.info.get('name', '')!r} (from line {block.lineno}), which "
                           f"already has {len(block.names)} atoms: missing END before it")
        if block is None:
            block = _Block(lineno)
        if keyword == "DESCRP":
            name = stripped[len(keyword):].split()
            if name and name[0] in names:
                raise GeoError(path, lineno, f"DESCRP {name[0]!r} is already the name of the "
                               f"structure on line {names[name[0]]}")
            if name:
                names[name[0]] = lineno
        _read_keyword_line(path, lineno, line, keyword, block)
        if keyword in ("HETATM", "ATOM"):
            _check_atom_name(path, lineno, block, allowed)
    if block is not None and (block.names or block.info.keys() - {"relax_steps"}):
        out.append(block.atoms(path, lineno))  # last block without END: accepted
    return out


def _check_atom_name(path, lineno: int, block: _Block, allowed) -> None:
    name, serial = block.names[-1], len(block.names)
    if allowed is not None and name not in allowed:
        raise GeoError(path, lineno, f"atom {serial}: atom name {name!r} is not an atom type of "
                       f"the force field ({' '.join(sorted(allowed))})")
    symbol = _symbol(name)
    if symbol is None:
        raise GeoError(path, lineno, f"atom {serial}: atom name {name!r} is not a chemical "
                       f"element (nor {DUMMY!r}, ReaxFF's dummy)")
    block.symbols.append(symbol)


def _read_keyword_line(path, lineno: int, line: str, keyword: str, block: _Block) -> None:
    rest = line.strip()[len(keyword) :].strip()
    if keyword in ("HETATM", "ATOM"):
        _read_atom(path, lineno, line, block)
    elif keyword in ("BIOGRF", "XTLGRF"):
        block.info["bgf_header"] = line.strip()
    elif keyword == "DESCRP":
        block.info["name"] = rest.split()[0] if rest else ""
    elif keyword == "REMARK":
        block.info.setdefault("remarks", []).append(rest)
    elif keyword == "RUTYPE":
        _read_rutype(path, lineno, rest.split("#", 1)[0].strip(), block.info)
    elif keyword == "CRYSTX":
        values = _numbers(path, lineno, rest, 6, "CRYSTX", "a b c alpha beta gamma")
        _check_cell(path, lineno, values)
        block.info["crystx"] = tuple(values)
        block.cell = reaxff_cell(*values)
    elif keyword == "FORMAT":
        words = rest.split(None, 1)
        if words and words[0].upper() == "ATOM" and len(words) > 1:
            columns = _fortran_columns(words[1])
            if columns is None or not {"name", "x", "y", "z"} <= columns.keys():
                raise GeoError(path, lineno, f"cannot read the FORMAT ATOM line {words[1]!r}")
            block.columns = columns
    elif keyword == "MOLCHARGE":
        first, last, charge = _numbers(path, lineno, rest, 3, "MOLCHARGE", "first last charge")
        first, last = (_index(path, lineno, v, f"MOLCHARGE {w}")
                       for v, w in ((first, "first"), (last, "last")))
        if first > last:
            raise GeoError(path, lineno, f"MOLCHARGE first atom {first + 1} is after the last "
                           f"{last + 1}")
        block.atom_refs.append((lineno, "MOLCHARGE", (first, last)))
        block.info.setdefault("molcharge", []).append((first, last, charge))
        block.info["charge"] = sum(q for _, _, q in block.info["molcharge"])
    elif keyword in _RESTRAINT_ATOMS and rest.upper().startswith("RESTRAINT"):
        _read_restraint(path, lineno, keyword, rest[len("RESTRAINT") :], block)
    elif keyword == "ENERGY":
        block.info["bgf_energy"] = _numbers(path, lineno, rest, 1, "ENERGY", "energy")[0]
    elif keyword not in _IGNORED:
        block.info.setdefault("keywords", []).append(line.strip())


def _numbers(path, lineno: int, text: str, n: int, keyword: str, fields: str) -> list[float]:
    words = text.split("#", 1)[0].split()
    overflow = [w for w in words[:n] if "*" in w]
    if overflow:
        raise GeoError(path, lineno, f"{keyword}: overflowed field {overflow[0]!r} (the value "
                       f"did not fit its column)")
    try:
        if len(words) < n:
            raise ValueError
        values = [float(w) for w in words[:n]]
    except ValueError:
        raise GeoError(path, lineno, f"expected {keyword} {fields}, got {text.strip()!r}") from None
    for value, name in zip(values, fields.split()):
        if not math.isfinite(value):
            raise GeoError(path, lineno, f"{keyword} {name} is {value}, expected a finite number")
    return values


def _index(path, lineno: int, value: float, field: str) -> int:
    """A 0-based atom index from a 1-based number read as a float."""
    if value != int(value):
        raise GeoError(path, lineno, f"{field}: {value} is not an atom number")
    if value < 1:
        raise GeoError(path, lineno, f"{field}: atom {int(value)} is below 1")
    return int(value) - 1


def _check_cell(path, lineno: int, values: list[float]) -> None:
    for value, name in zip(values[:3], ("a", "b", "c")):
        if value <= 0.0:
            raise GeoError(path, lineno, f"CRYSTX {name} = {value} must be positive")
    for value, name in zip(values[3:], ("alpha", "beta", "gamma")):
        if not 0.0 < value < 180.0:
            raise GeoError(path, lineno, f"CRYSTX {name} = {value} must lie between 0 and 180")
    ca, cb, cg = (math.cos(math.radians(t)) for t in values[3:])
    if 1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg < 1e-10:  # (V / abc)^2
        raise GeoError(path, lineno, "CRYSTX angles alpha beta gamma = "
                       f"{values[3]} {values[4]} {values[5]} make a flat cell (no volume)")


def _read_rutype(path, lineno: int, text: str, info: dict) -> None:
    """JAX-ReaxFF's reading: SINGLE -> 0, NORMAL RUN -> full, MAXIT n -> n (0 if n < 5)."""
    info.setdefault("rutype", []).append(text)
    upper = text.upper()
    if "SINGLE" in upper:
        info["relax_steps"] = 0
    elif "NORMAL RUN" in upper:
        info["relax_steps"] = FULL_MINIMISATION
    elif "MAXIT" in upper:
        words = upper.split("MAXIT", 1)[1].split()
        if not words or not _INTEGER.match(words[0]):
            raise GeoError(path, lineno, f"RUTYPE MAXIT: expected an integer number of "
                           f"iterations, got {text!r}")
        steps = int(words[0])
        info["relax_steps"] = steps if steps >= 5 else 0


def _read_restraint(path, lineno: int, kind: str, text: str, block: _Block) -> None:
    n_atoms = _RESTRAINT_ATOMS[kind]
    fields = " ".join(f"atom{i + 1}" for i in range(n_atoms)) + " target force1 force2"
    values = _numbers(path, lineno, text, n_atoms + 3, f"{kind} RESTRAINT", fields)
    extra = text.split("#", 1)[0].split()[n_atoms + 3 :]
    atoms = tuple(_index(path, lineno, v, f"{kind} RESTRAINT atom{k + 1}")
                  for k, v in enumerate(values[:n_atoms]))
    block.atom_refs.append((lineno, f"{kind} RESTRAINT", atoms))
    restraint = {
        "atoms": atoms,
        "target": values[n_atoms],
        "force1": values[n_atoms + 1],
        "force2": values[n_atoms + 2],
    }
    try:
        restraint.update(zip(("rate", "start", "end"), (float(w) for w in extra[:3])))
    except ValueError:
        pass
    block.info.setdefault(f"{kind.lower()}_restraints", []).append(restraint)


def _read_atom(path, lineno: int, line: str, block: _Block) -> None:
    """Words when the line has exactly the 10 standard ones (immune to shifted columns), else
    the FORMAT columns (numbers that touch, residue fields), else any 6+ words."""
    serial = len(block.names) + 1
    overflow = re.search(r"\*{2,}", line)
    if overflow:
        raise GeoError(path, lineno, f"atom {serial}: overflowed field {overflow.group()!r} "
                       f"(a number did not fit its column), got {line.strip()!r}")
    words = _atom_by_words(line) if len(line.split()) == 10 else None
    parsed = words or _atom_by_columns(line, block.columns) or _atom_by_words(line)
    if parsed is None:
        raise GeoError(
            path, lineno, f"expected an atom name and x, y, z coordinates for atom {serial}, "
            f"got {line.strip()!r}"
        )  # fmt: skip
    name, xyz, charge = parsed
    for value, axis in zip(xyz, "xyz"):
        if not math.isfinite(value):
            raise GeoError(path, lineno, f"atom {serial}: coordinate {axis} is {value}, "
                           f"expected a finite number")
    if charge is not None and not math.isfinite(charge):
        raise GeoError(path, lineno, f"atom {serial}: charge is {charge}, expected a finite "
                       f"number")
    block.names.append(name)
    block.positions.append(xyz)
    block.charges.append(charge)


def _atom_by_columns(line: str, columns):
    try:
        field = {key: line[a:b] for key, (a, b) in columns.items()}
        name = field["name"].strip()
        xyz = tuple(float(field[k]) for k in ("x", "y", "z"))
    except (ValueError, KeyError):
        return None
    if not name:
        return None
    charge = field.get("charge", "").strip()
    try:
        return name, xyz, float(charge) if charge else None
    except ValueError:
        return name, xyz, None


def _atom_by_words(line: str):
    words = line.split()
    try:
        xyz = tuple(float(w) for w in words[3:6])
    except ValueError:
        return None
    if len(xyz) < 3:
        return None
    charge = None
    if len(words) >= 10:
        try:
            charge = float(words[9])
        except ValueError:
            charge = None
    return words[2], xyz, charge


__all__ = ["DEFAULT_ATOM_FORMAT", "DUMMY", "FULL_MINIMISATION", "GeoError", "read_geo",
           "reaxff_cell"]
