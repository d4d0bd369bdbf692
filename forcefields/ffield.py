"""Read and write ReaxFF ``ffield`` files.

The reader accepts what LAMMPS ``pair_style reaxff`` accepts and reads each value from the
column LAMMPS reads it from, so that the tables built by :func:`to_params` are the ones LAMMPS
uses.  Its rules, which files in the wild exercise:

* the first non-blank line is a free-text header (it must not look like the
  "N ! Number of general parameters" line);
* data lines are split on blanks; blank lines between data lines are skipped, while the
  comment lines after the atom count (3) and after the bond count (1) are taken as they come;
* only the leading columns LAMMPS reads must be numbers; anything after them (``! comments``,
  unused columns) is kept as text.  Numbers that touch (``-1.2345-10.0000``, as fixed-column
  Fortran output can produce) are rejected, as LAMMPS rejects them;
* the file may end early from the off-diagonal section on (old files often have no
  hydrogen-bond section): the missing part is empty, as in LAMMPS;
* the ``lg`` dispersion variant (a fifth line per atom, a seventh off-diagonal value) is
  detected from the layout, or forced with ``read_ffield(path, lg=True/False)``.

Records keep their source lines, so writing an unchanged force field reproduces them, and any
edited record is rewritten with every value exact (``write_ffield`` then ``read_ffield`` gives the
same floats).  The parameter tables (``to_params``) are built in
:mod:`reaxgrad.forcefields.ffield_tables`.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from reaxgrad.errors import InputFileError

SECTIONS = ("general", "atoms", "bonds", "offdiagonal", "angles", "torsions", "hbonds")

_TOKEN = re.compile(r"[^ \t\r\n\f]+")  # LAMMPS separates words on " \t\r\n\f"
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\d*\.?\d+)([eE][+-]?\d+)?\Z")  # LAMMPS utils::is_double
_TOUCHING = re.compile(r"\d\.?\d*[+-]\d")
_HEADER_LOOKS_LIKE_COUNT = re.compile(r"\s*[0-9]+\s+!.*general parameters")


class FFieldError(InputFileError):
    """A malformed ffield file."""


@dataclass(frozen=True)
class LineLayout:
    """The columns of one physical line of a record.

    ``kinds`` has one letter per value: ``r`` read and checked by LAMMPS, ``u`` required to be
    present but never read (kept as text, NaN if not a number), ``o`` optional and unread.
    """

    n_types: int
    kinds: str
    symbol: bool = False
    type_width: int = 3
    lead: str = ""

    @property
    def min_columns(self) -> int:
        return self.symbol + self.n_types + sum(k != "o" for k in self.kinds)


_V8 = "rrrrrrrr"
LAYOUTS = {
    "general": (LineLayout(0, "r"),),
    "atoms": (
        LineLayout(0, _V8, symbol=True),
        LineLayout(0, "rrrrurrr", lead="   "),
        LineLayout(0, "rrurrrru", lead="   "),
        LineLayout(0, "rrurrrrr", lead="   "),
    ),
    "bonds": (LineLayout(2, _V8), LineLayout(0, "rrrurrro", lead="      ")),
    "offdiagonal": (LineLayout(2, "rrrrrro"),),
    "angles": (LineLayout(3, "rrrrrrr"),),
    "torsions": (LineLayout(4, "rrrrroo"),),
    "hbonds": (LineLayout(3, "rrrr"),),
}
LG_ATOM_LINE = LineLayout(0, "rr", lead="   ")
LG_OFFDIAGONAL = (LineLayout(2, "rrrrrrr"),)

_DEFAULT_TEXT = {
    "general": (" 39       ! Number of general parameters", []),
    "atoms": (
        "  0    ! Nr of atoms; cov.r; valency;a.m;Rvdw;Evdw;gammaEEM;cov.r2;#",
        [
            "            alfa;gammavdW;valency;Eunder;Eover;chiEEM;etaEEM;n.u.",
            "            cov r3;Elp;Heat inc.;n.u.;n.u.;n.u.;n.u.",
            "            ov/un;val1;n.u.;val3,vval4",
        ],
    ),
    "bonds": (
        "  0      ! Nr of bonds; Edis1;LPpen;n.u.;pbe1;pbo5;13corr;pbo6",
        ["                         pbe2;pbo3;pbo4;n.u.;pbo1;pbo2;ovcorr"],
    ),
    "offdiagonal": ("  0    ! Nr of off-diagonal terms; Ediss;Ro;gamma;rsigma;rpi;rpi2", []),
    "angles": ("  0    ! Nr of angles;at1;at2;at3;Thetao,o;ka;kb;pv1;pv2", []),
    "torsions": ("  0    ! Nr of torsions;at1;at2;at3;at4;;V1;V2;V3;V2(BO);vconj;n.u;n", []),
    "hbonds": ("  0    ! Nr of hydrogen bonds;at1;at2;at3;Rhb;Dehb;vhb1", []),
}
_N_COMMENT_LINES = {"atoms": 3, "bonds": 1}


def section_layout(section: str, lg: bool) -> tuple[LineLayout, ...]:
    """The line layouts of one record of ``section`` (lg files have longer atoms/off-diagonals)."""
    if lg and section == "atoms":
        return LAYOUTS["atoms"] + (LG_ATOM_LINE,)
    if lg and section == "offdiagonal":
        return LG_OFFDIAGONAL
    return LAYOUTS[section]


@dataclass
class Record:
    """One entry of a section: type indices as in the file (1-based, 0 = torsion wildcard),
    its values (concatenated over its lines, so value ``k`` is params-file parameter ``k+1``),
    the atom symbol for atoms, and the text it was read from."""

    types: tuple[int, ...] = ()
    values: list[float] = field(default_factory=list)
    symbol: str = ""
    lineno: int = 0
    lines: list[str] = field(default_factory=list, repr=False)
    tokens: list[str] = field(default_factory=list, repr=False)
    tails: list[str] = field(default_factory=list, repr=False)
    origin: tuple | None = field(default=None, repr=False, compare=False)

    def value(self, k: int, default: float = 0.0) -> float:
        """Value ``k`` (0-based), or ``default`` when that optional column is absent."""
        return self.values[k] if k < len(self.values) else default

    def set_value(self, k: int, value: float) -> None:
        """Set value ``k``, padding absent optional columns with zeros."""
        while len(self.values) <= k:
            self.values.append(0.0)
        self.values[k] = float(value)

    def unchanged(self) -> bool:
        """Whether the record still holds exactly what its source lines say."""
        if self.origin is None or not self.lines:
            return False
        symbol, types, values = self.origin
        return (
            symbol == self.symbol
            and types == tuple(self.types)
            and len(values) == len(self.values)
            and all(_same(a, b) for a, b in zip(values, self.values))
        )


@dataclass
class ForceField:
    """A parsed ffield: header, one list of records per section, and the count/comment lines.

    ``missing`` names the sections the file ended before (LAMMPS treats them as empty).
    """

    header: str = "Reactive force field"
    general: list[Record] = field(default_factory=list)
    atoms: list[Record] = field(default_factory=list)
    bonds: list[Record] = field(default_factory=list)
    offdiagonal: list[Record] = field(default_factory=list)
    angles: list[Record] = field(default_factory=list)
    torsions: list[Record] = field(default_factory=list)
    hbonds: list[Record] = field(default_factory=list)
    lg: bool = False
    texts: dict[str, tuple[str, list[str]]] = field(default_factory=dict, repr=False)
    missing: tuple[str, ...] = ()
    path: str | None = None

    @property
    def elements(self) -> list[str]:
        """Atom-type symbols in file order (type index ``i`` is ``elements[i]``)."""
        return [a.symbol for a in self.atoms]

    @property
    def n_types(self) -> int:
        return len(self.atoms)

    def section(self, name: str) -> list[Record]:
        """The record list of a section by name (see ``SECTIONS``)."""
        if name not in SECTIONS:
            raise KeyError(f"unknown ffield section {name!r}; expected one of {SECTIONS}")
        return getattr(self, name)

    def copy(self) -> ForceField:
        return copy.deepcopy(self)

    def to_params(self):
        """Parameter tables indexed by atom type; see ``ffield_tables.to_params``."""
        return to_params(self)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _is_float(token: str) -> bool:
    return bool(_FLOAT.match(token))


# ----------------------------------------------------------------------------- reading


class _EndOfFile(Exception):
    pass


class _Lines:
    """The file as LAMMPS's TextFileReader sees it: data lines skip blanks, comment lines don't."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.i = 0

    def data(self) -> tuple[int, str]:
        while self.i < len(self.lines):
            self.i += 1
            if _TOKEN.search(self.lines[self.i - 1]):
                return self.i, self.lines[self.i - 1]
        raise _EndOfFile

    def raw(self) -> str:
        if self.i >= len(self.lines):
            raise _EndOfFile
        self.i += 1
        return self.lines[self.i - 1]

    def peek_data(self) -> str | None:
        for line in self.lines[self.i :]:
            if _TOKEN.search(line):
                return line
        return None


def _touching_hint(token: str) -> str:
    return " (numbers written without a space between them?)" if _TOUCHING.search(token) else ""


def parameter_name(section: str, index: int) -> str | None:
    """The parameter-table name (see :mod:`ffield_tables`) of value ``index`` (0-based, over
    the whole record) of a ``section`` record, or None when the model never reads it (the lg
    names ``lgcij``, ``lgre``, ``off_lgcij`` are read only from lg force fields)."""
    from .ffield_tables import SECTION_FIELDS  # deferred: ffield_tables imports this module

    for name, k in SECTION_FIELDS.get(section, ()):
        if k == index:
            return name
    return None


def _named(section, index) -> str:
    """`` (name)`` for error messages about value ``index`` of a ``section`` record."""
    name = parameter_name(section, index) if section else None
    return f" ({name})" if name else ""


def _parse_line(path, lineno: int, line: str, spec: LineLayout, what: str,
                section: str | None = None, offset: int = 0):
    """Split one record line into (symbol, types, values, value tokens, tail text).

    ``section`` and ``offset`` (the record's values on earlier lines) name the parameter in
    error messages. Values LAMMPS reads must be finite numbers."""
    words = list(_TOKEN.finditer(line))
    need = spec.min_columns
    n_values = sum(k != "o" for k in spec.kinds)
    numbers = "a number" if n_values == 1 else f"{n_values} numbers"
    if len(words) < need:
        parts = (["a symbol"] if spec.symbol else []) + (
            [f"{spec.n_types} type indices"] if spec.n_types else []
        )
        hints = {_touching_hint(w.group()) for w in words} - {""}
        raise FFieldError(
            path, lineno, f"expected {' and '.join(parts + [numbers])} for {what}, "
            f"found {len(words)} columns" + "".join(hints),
        )  # fmt: skip
    pos = 0
    symbol = ""
    if spec.symbol:
        symbol = words[0].group()
        pos = 1
    types = []
    for _ in range(spec.n_types):
        token = words[pos].group()
        if not _INT.match(token):
            raise FFieldError(
                path, lineno, f"expected an integer type index for {what}, got {token!r}"
            )
        types.append(int(token))
        pos += 1
    values, tokens = [], []
    end = words[pos - 1].end() if pos else 0
    for k, kind in enumerate(spec.kinds):
        if pos >= len(words):
            break
        token = words[pos].group()
        if kind == "r" and not _is_float(token):
            raise FFieldError(
                path,
                lineno,
                f"expected {numbers} for {what}, got {token!r} as value {k + 1}"
                + _named(section, offset + k)
                + _touching_hint(token),
            )
        if kind == "r" and not math.isfinite(float(token)):
            raise FFieldError(
                path, lineno, f"value {k + 1}{_named(section, offset + k)} "
                f"of {what} is {token!r}, which is not a finite number",
            )  # fmt: skip
        if kind == "o" and not _is_float(token):
            break
        values.append(float(token) if _is_float(token) else math.nan)
        tokens.append(token)
        end = words[pos].end()
        pos += 1
    return symbol, tuple(types), values, tokens, line[end:].rstrip("\r\n")


def _read_record(path, stream: _Lines, layout, what_of, section=None, offset=0) -> Record:
    rec = Record()
    for n, spec in enumerate(layout):
        lineno, line = stream.data()
        if n == 0:
            rec.lineno = lineno
            first = _TOKEN.search(line)
            if spec.symbol and first and not _is_float(first.group()):
                rec.symbol = first.group()  # so that messages about this line name the atom
        where = what_of(rec) + (f" (line {n + 1} of {len(layout)})" if len(layout) > 1 else "")
        symbol, types, values, tokens, tail = _parse_line(
            path, lineno, line, spec, where, section, offset + len(rec.values)
        )
        if spec.symbol:
            rec.symbol = symbol
        if spec.n_types:
            rec.types = types
        rec.values += values
        rec.tokens += tokens
        rec.tails.append(tail)
        rec.lines.append(line)
    rec.origin = (rec.symbol, rec.types, tuple(rec.values))
    return rec


def _describe(section: str, index: int):
    """A callable naming record ``index`` of ``section`` for error messages."""
    names = {
        "general": "general parameter",
        "bonds": "bond",
        "offdiagonal": "off-diagonal term",
        "angles": "angle",
        "torsions": "torsion",
        "hbonds": "hydrogen bond",
    }

    def what(rec: Record) -> str:
        if section == "atoms":
            return f"atom {rec.symbol!r}" if rec.symbol else f"atom type {index + 1}"
        if section == "general":
            return f"general parameter {index + 1}"
        if rec.types:
            return f"{names[section]} {'-'.join(map(str, rec.types))}"
        return f"{names[section]} {index + 1}"

    return what


def _check_types(path, section: str, rec: Record, what: str) -> None:
    """LAMMPS's index checks: every index >= 1, except torsion end atoms (0 = wildcard)."""
    for pos, t in enumerate(rec.types):
        wildcard_ok = section == "torsions" and pos in (0, 3)
        if t < (0 if wildcard_ok else 1):
            allowed = ">= 0 (0 is a wildcard)" if wildcard_ok else ">= 1"
            raise FFieldError(path, rec.lineno, f"type index {t} of {what} must be {allowed}")


def _count(path, stream: _Lines, what: str) -> tuple[int, str, int]:
    lineno, line = stream.data()
    token = _TOKEN.search(line).group()
    if not _INT.match(token):
        raise FFieldError(path, lineno, f"expected the number of {what}, got {token!r}")
    return int(token), line, lineno


def _detect_lg(stream: _Lines, n_types: int) -> bool:
    """After the 4 lines of the first atom: is the next line an lg line (two numbers)?"""
    line = stream.peek_data()
    if line is None:
        return False
    words = _TOKEN.findall(line)
    if n_types > 1:
        return _is_float(words[0])
    return _is_float(words[0]) and not _INT.match(words[0])


def read_ffield(path, *, lg: bool | None = None) -> ForceField:
    """Parse a ReaxFF ``ffield`` file into a :class:`ForceField`.

    ``lg=None`` detects the lg-dispersion layout; ``True``/``False`` force it (LAMMPS's
    ``lgvdw yes``/``no``).  Raises :class:`FFieldError` (a ``ValueError``) on malformed input.
    """
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
        text = handle.read()
    lines = [line.removesuffix("\r") for line in text.split("\n")]  # lines end at "\n" only
    if lines and lines[-1] == "":
        lines.pop()
    stream = _Lines(lines)
    ff = ForceField(path=str(path))
    try:
        lineno, ff.header = stream.data()
    except _EndOfFile:
        raise FFieldError(path, 1, "empty file") from None
    if _HEADER_LOOKS_LIKE_COUNT.match(ff.header):
        raise FFieldError(path, lineno, "the first line must be a header (comment) line")
    done: list[str] = []
    try:
        for section in SECTIONS:
            _read_section(path, stream, ff, section, lg)
            done.append(section)
    except _EndOfFile:
        if len(done) < SECTIONS.index("offdiagonal"):
            section = SECTIONS[len(done)]
            raise FFieldError(path, len(lines), f"file ends inside the {section} section") from None
        ff.missing = SECTIONS[len(done) :]
    return ff


def _read_section(path, stream: _Lines, ff: ForceField, section: str, lg: bool | None) -> None:
    what = {"general": "general parameters", "atoms": "atom types"}.get(section, section)
    n, count_line, lineno = _count(path, stream, what)
    if section == "general" and n < 1:
        raise FFieldError(path, lineno, "the number of general parameters must be >= 1")
    comments = [stream.raw() for _ in range(_N_COMMENT_LINES.get(section, 0))]
    ff.texts[section] = (count_line, comments)
    if section == "atoms" and lg is not None:
        ff.lg = lg
    records = ff.section(section)
    for index in range(max(n, 0)):
        describe = _describe(section, index)
        if section == "atoms" and index == 0 and lg is None:
            rec = _read_record(path, stream, LAYOUTS["atoms"], describe, section)
            ff.lg = _detect_lg(stream, n)
            if ff.lg:
                _merge_lines(rec, _read_record(path, stream, (LG_ATOM_LINE,), describe, section,
                                              offset=len(rec.values)))
        else:
            rec = _read_record(path, stream, section_layout(section, ff.lg), describe, section)
        _check_types(path, section, rec, describe(rec))
        records.append(rec)


def _merge_lines(rec: Record, extra: Record) -> None:
    rec.values += extra.values
    rec.tokens += extra.tokens
    rec.tails += extra.tails
    rec.lines += extra.lines
    rec.origin = (rec.symbol, rec.types, tuple(rec.values))


# ----------------------------------------------------------------------------- writing


def _format_value(value: float, token: str | None, width: int = 9) -> str:
    """A column for ``value``: the source token when it still says the same, otherwise 4
    decimals when those are exact, otherwise the shortest repr (exact round trip)."""
    if token is not None and (_same(float(token) if _is_float(token) else math.nan, value)):
        text = token
    elif not math.isfinite(value):
        raise ValueError(f"cannot write the non-finite value {value!r} to an ffield")
    elif float(f"{value:.4f}") == value:
        text = f"{value:.4f}"
    else:
        text = repr(float(value))
    return text.rjust(width) if len(text) < width else " " + text


def _record_lines(
    rec: Record, layout: tuple[LineLayout, ...], general: bool, keep: bool
) -> list[str]:
    if keep and rec.unchanged():
        return [line.rstrip("\n") for line in rec.lines]
    out, k = [], 0
    for n, spec in enumerate(layout):
        parts = [spec.lead]
        if spec.symbol:
            parts.append(" " + rec.symbol.ljust(2))
        parts += [f"{t:{spec.type_width}d}" for t in (rec.types if spec.n_types else ())]
        for _ in range(min(len(spec.kinds), len(rec.values) - k)):
            token = rec.tokens[k] if k < len(rec.tokens) else None
            token = token if keep or math.isnan(rec.values[k]) else None
            parts.append(_format_value(rec.values[k], token, 10 if general else 9))
            k += 1
        tail = rec.tails[n] if n < len(rec.tails) else ""
        out.append("".join(parts) + tail)
    return out


def _count_line(ff: ForceField, section: str, n: int) -> tuple[str, list[str]]:
    line, comments = ff.texts.get(section, _DEFAULT_TEXT[section])
    match = _TOKEN.search(line)
    if not match or match.group() != str(n):
        start, end = (match.start(), match.end()) if match else (0, 0)
        line = line[:start] + str(n).rjust(end - start) + line[end:]
    want = _N_COMMENT_LINES.get(section, 0)
    comments = (list(comments) + _DEFAULT_TEXT[section][1])[:want]
    return line.rstrip("\r\n"), comments


def format_ffield(ff: ForceField, *, keep_source: bool = True) -> str:
    """The text of ``ff`` as an ffield file (see :func:`write_ffield`)."""
    out = [ff.header.rstrip("\r\n")]
    for section in SECTIONS:
        records = ff.section(section)
        count_line, comments = _count_line(ff, section, len(records))
        out.append(count_line)
        out += [c.rstrip("\r\n") for c in comments]
        layout = section_layout(section, ff.lg)
        for rec in records:
            out += _record_lines(rec, layout, section == "general", keep_source)
    return "\n".join(out) + "\n"


def write_ffield(ff: ForceField, path, *, keep_source: bool = True) -> None:
    """Write ``ff`` to ``path``.  Unedited records keep their source text (``keep_source=False``
    regenerates every record); edited ones are written in the usual columns with exact values
    (4 decimals when that is exact, else the shortest repr), so reading the file back gives
    the same floats."""
    Path(path).write_text(
        format_ffield(ff, keep_source=keep_source), encoding="utf-8", errors="surrogateescape"
    )


_LG_ONLY = ("lgcij", "lgre", "off_lgcij")


def check_finite(ff: ForceField) -> None:
    """Raise :class:`FFieldError` (naming the record's first line and the parameter) if a value
    the model reads is NaN or infinite, as an in-memory edit can leave it (the reader already
    refuses such values in files)."""
    from .ffield_tables import SECTION_FIELDS

    for section in SECTIONS:
        fields = (("value", 0),) if section == "general" else SECTION_FIELDS[section]
        for index, rec in enumerate(ff.section(section)):
            for name, k in fields:
                if k >= len(rec.values) or math.isfinite(rec.values[k]):
                    continue
                if name in _LG_ONLY and not ff.lg:
                    continue
                what = _describe(section, index)(rec)
                label = f" ({name})" if section != "general" else ""
                raise FFieldError(
                    ff.path, rec.lineno, f"value {k + 1}{label} of {what} is {rec.values[k]!r}, "
                    "which is not a finite number",
                )  # fmt: skip


def to_params(ff: ForceField):
    """Float64 tables indexed by atom type, filled as LAMMPS fills them.

    Implemented in :mod:`reaxgrad.forcefields.ffield_tables` (see ``to_params`` there for keys).
    The tables are ``reaxgrad.core.Array``s (NumPy arrays that also accept traced indices, so
    that closed-over tables can be gathered under vmap and grad).
    """
    from reaxgrad.core.array import as_array

    from .ffield_tables import to_params as build

    return {k: as_array(v) for k, v in build(ff).items()}


__all__ = [
    "SECTIONS",
    "FFieldError",
    "check_finite",
    "ForceField",
    "LineLayout",
    "Record",
    "format_ffield",
    "parameter_name",
    "read_ffield",
    "section_layout",
    "to_params",
    "write_ffield",
]
