"""Input handling shared by the structure commands (`energy`, `minimize`, `md`, `vibrations`).

What every command needs before and after its real work, in one place:

* :func:`read_structure` / :func:`check_structure`: a structure from any file ASE reads (or a
  BGF ``geo`` file), refused with a named error when it is empty or holds a NaN/inf position,
  cell, mass or momentum (for xyz/extxyz files the error gives the line of the atom).
* :func:`load_model` / :func:`check_elements`: a :class:`ReaxFF` from an ``ffield`` (errors
  name the file, the line and the parameter) and the check that it covers the structure.
* :func:`output_format`, :func:`write_structure_atomic`, :class:`TrajectoryWriter`: outputs
  written to a temporary file beside the target and renamed at the end, so an interrupted or
  failed command leaves no partial file behind (and an earlier output stays intact).
* :func:`run_command`: runs a command's body; bad input (``InputError``, any ``ValueError``
  or ``OSError``) prints ``reaxgrad <prog>: error: <one line>`` to stderr and returns 2,
  Ctrl-C prints ``reaxgrad <prog>: interrupted`` and returns 130; no traceback either way.
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from reaxgrad.errors import InputFileError

__all__ = [
    "EXIT_INPUT_ERROR",
    "EXIT_INTERRUPTED",
    "InputError",
    "TrajectoryWriter",
    "atomic_output",
    "check_elements",
    "check_structure",
    "error_message",
    "load_model",
    "output_format",
    "read_structure",
    "read_structures",
    "run_command",
    "total_charge",
    "write_structure_atomic",
]

EXIT_INPUT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C

_XYZ_SUFFIXES = (".xyz", ".extxyz")


class InputError(ValueError):
    """Bad input. The message names the file (``path``), the line (``line``, when known) and
    the offending field (``field``): ``"<path> line <n>: <field>: <message>"``."""

    def __init__(self, message: str, *, path=None, line: int | None = None,
                 field: str | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        where = self.path or ""
        if line is not None:
            where += f" line {line}" if where else f"line {line}"
        text = f"{field}: {message}" if field else message
        super().__init__(f"{where}: {text}" if where else text)


def error_message(exc: BaseException) -> str:
    """``exc`` as one line (an OSError as ``<file>: <reason>``)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def run_command(prog: str, fn, args) -> int:
    """``fn(args)``'s exit status; bad input and Ctrl-C become a one-line message on stderr.

    ``InputError``, ``ValueError`` (``InputFileError``/``FFieldError`` included) and ``OSError``:
    ``reaxgrad <prog>: error: <message>``, status 2. ``KeyboardInterrupt``: status 130. Outputs
    written through :func:`atomic_output` are never left half-written (their temporary files
    are removed as the exception passes)."""
    try:
        return fn(args)
    except KeyboardInterrupt:
        print(f"reaxgrad {prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError) as exc:
        print(f"reaxgrad {prog}: error: {error_message(exc)}", file=sys.stderr)
        return EXIT_INPUT_ERROR


# ----------------------------------------------------------------------------- structures


def _is_geo(p: Path) -> bool:
    if p.suffix.lower() in (".geo", ".bgf") or p.name == "geo":
        return True
    with open(p, errors="replace") as fh:
        head = fh.read(2000)
    return "BIOGRF" in head or "XTLGRF" in head


def read_structure(path, index: int = 0, *, check: bool = True):
    """An ``ase.Atoms`` from a BGF geo file (by name or content) or any file ASE reads.

    ``index`` picks a structure of a multi-structure file (negative counts from the end).
    extxyz ``masses`` and ``momenta`` columns are kept (ASE reads them). With ``check``
    (default) the structure also passes :func:`check_structure`. Raises :class:`InputError`
    (a missing file, an index out of range, an unreadable file) or an ``InputFileError``
    naming the line of a malformed geo file."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such file", path=path)
    if p.is_dir():
        raise InputError("is a directory, not a structure file", path=path)
    if _is_geo(p):
        from reaxgrad.datasets import read_geo

        structures = read_geo(p)
        if not -len(structures) <= index < len(structures):
            raise InputError(f"has {len(structures)} structures, index {index} is out of range",
                             path=path)
        atoms = structures[index]
    else:
        from ase.io import read

        try:
            atoms = read(p, index=index)
        except (IndexError, StopIteration):
            raise InputError(f"has no structure at index {index}", path=path) from None
        except Exception as exc:  # ASE raises many types for unreadable files
            raise InputError(f"cannot read it as a structure: {error_message(exc)}",
                             path=path) from None
    if check:
        check_structure(atoms, path, index=index)
    return atoms


DATABASE_URLS = ("postgresql://", "mysql://", "mariadb://")


def read_structures(path) -> list:
    """Every structure of a file, in order: a BGF geo file, any file ASE reads (all its
    frames), an ASE database file or a database URL (``postgresql://...``; rows in id order).
    Not checked (:func:`check_structure` per structure is the caller's choice). A missing or
    unreadable file is an :class:`InputError`."""
    text = str(path)
    try:
        if text.startswith(DATABASE_URLS):
            from ase.db import connect

            return [row.toatoms() for row in connect(text).select(sort="id")]
        p = Path(path)
        if not p.exists():
            raise InputError("no such file", path=path)
        if p.is_dir():
            raise InputError("is a directory, not a structure file", path=path)
        if _is_geo(p):
            from reaxgrad.datasets import read_geo

            return list(read_geo(p))
        from ase.io import read

        return list(read(p, index=":"))
    except (InputError, InputFileError):
        raise
    except Exception as exc:  # noqa: BLE001 - ASE raises many types for unreadable files
        raise InputError(f"cannot read it as structures: {error_message(exc)}",
                         path=path) from None


def _xyz_atom_line(path, index: int, atom: int) -> int | None:
    """The 1-based line of atom ``atom`` of frame ``index`` in an xyz/extxyz file, or None."""
    try:
        with open(path, errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    starts, pos = [], 0
    while pos < len(lines):
        head = lines[pos].split()
        if not head:
            break
        try:
            n = int(head[0])
        except ValueError:
            return None
        starts.append(pos)
        pos += n + 2
    if not -len(starts) <= index < len(starts):
        return None
    return starts[index] + 2 + atom + 1


def check_structure(atoms, source, *, index: int = 0) -> None:
    """Refuse a structure no command can use, naming the atom and, where possible, its line.

    Zero atoms; a NaN/inf position (for an xyz/extxyz file ``source`` the line of that atom
    in frame ``index`` is named); a NaN/inf cell; a periodic direction without a cell
    vector; a NaN/inf or non-positive mass; a NaN/inf momentum."""
    if len(atoms) == 0:
        raise InputError("the structure has no atoms", path=source)
    symbols = atoms.get_chemical_symbols()

    def where(i):
        line = None
        if Path(str(source)).suffix.lower() in _XYZ_SUFFIXES:
            line = _xyz_atom_line(source, index, i)
        return line

    pos = np.asarray(atoms.positions, dtype=float)
    bad = np.flatnonzero(~np.isfinite(pos).all(axis=1))
    if len(bad):
        i = int(bad[0])
        raise InputError(f"atom {i} ({symbols[i]}) has a non-finite position "
                         f"{tuple(float(v) for v in pos[i])}", path=source, line=where(i),
                         field="position")
    cell = np.asarray(atoms.cell.array, dtype=float)
    if not np.isfinite(cell).all():
        raise InputError(f"the cell has non-finite values {cell.tolist()}", path=source,
                         field="cell")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    for k in np.flatnonzero(pbc):
        if not np.any(cell[k]):
            raise InputError(f"periodic along cell vector {k + 1}, which is zero", path=source,
                             field="cell")
    if pbc.all() and abs(np.linalg.det(cell)) < 1e-12:
        raise InputError("the periodic cell has zero volume", path=source, field="cell")
    if atoms.has("masses"):
        masses = np.asarray(atoms.get_masses(), dtype=float)
        bad = np.flatnonzero(~(np.isfinite(masses) & (masses > 0)))
        if len(bad):
            i = int(bad[0])
            raise InputError(f"atom {i} ({symbols[i]}) has mass {float(masses[i])!r}",
                             path=source, line=where(i), field="masses")
    if atoms.has("momenta"):
        mom = np.asarray(atoms.get_momenta(), dtype=float)
        bad = np.flatnonzero(~np.isfinite(mom).all(axis=1))
        if len(bad):
            i = int(bad[0])
            raise InputError(f"atom {i} ({symbols[i]}) has a non-finite momentum "
                             f"{tuple(float(v) for v in mom[i])}", path=source, line=where(i),
                             field="momenta")


def total_charge(atoms, charge: float | None = None) -> float:
    """The structure's total charge: ``charge`` if given, else ``atoms.info["charge"]`` (a geo
    file's MOLCHARGE), else 0 -- never the sum of the initial charges."""
    value = float(atoms.info.get("charge", 0.0) if charge is None else charge)
    if not math.isfinite(value):
        raise InputError(f"the total charge {value!r} is not a finite number", field="charge")
    return value


# ----------------------------------------------------------------------------- force fields


def load_model(ffield, *, charge_method="qeq", convention="consistent", solver="auto",
               control=None, source=None):
    """A :class:`~reaxgrad.forcefields.reaxff.model.ReaxFF` from an ffield path (or a
    ``ForceField``). ``charge_method`` "qeq", "eem", "acks2", or "none"/None (fixed charges).

    A missing or unreadable file raises :class:`InputError`; a malformed one an
    ``FFieldError`` naming its line, including a NaN or infinite value in a parameter the
    model reads (named, e.g. ``(r_vdw)``). ``source`` (default: the ffield path) prefixes
    other errors (an unknown option value)."""
    from reaxgrad.forcefields.ffield import ForceField, check_finite
    from reaxgrad.forcefields.reaxff.model import ReaxFF

    if isinstance(ffield, ForceField):
        check_finite(ffield)
    else:
        p = Path(ffield)
        if not p.exists():
            raise InputError("no such force-field file", path=ffield)
        if p.is_dir():
            raise InputError("is a directory, not a force-field file", path=ffield)
    method = None if charge_method in (None, "none") else charge_method
    try:
        return ReaxFF(ffield, charge_method=method, convention=convention, control=control,
                      solver=solver)
    except InputFileError:
        raise
    except OSError as exc:
        raise InputError(f"cannot read it: {exc.strerror or exc}", path=ffield) from None
    except ValueError as exc:
        raise InputError(error_message(exc), path=source or ffield) from None


def check_elements(model, atoms, source) -> np.ndarray:
    """The force-field type of every atom; an element the force field lacks is an
    :class:`InputError` naming it, ``source`` and the force field's elements."""
    try:
        return model.types_of(atoms.get_chemical_symbols(), str(source))
    except ValueError as exc:
        raise InputError(error_message(exc)) from None


# ----------------------------------------------------------------------------- outputs


def output_format(path, *, option: str = "--output", multiple: bool = False) -> str:
    """The ASE format name ``ase.io.write`` will use for ``path`` (from its name), checked
    before any work is done: an unknown or read-only format, or one that holds a single
    structure when ``multiple`` frames will be written, is an :class:`InputError`."""
    from ase.io.formats import filetype, ioformats

    p = Path(path)
    if p.is_dir():
        raise InputError("is a directory", path=path, field=option)
    try:
        fmt = filetype(str(p), read=False)
    except Exception as exc:  # noqa: BLE001 - ASE raises several types here
        raise InputError(f"cannot tell the file format from the name: {error_message(exc)}",
                         path=path, field=option) from None
    if fmt == "bundletrajectory" and p.suffix != ".bundle":
        raise InputError("cannot tell the file format from the name; give it an extension "
                         "such as .extxyz or .traj", path=path, field=option)
    io = ioformats.get(fmt)
    if io is None or not io.can_write:
        raise InputError(f"ASE cannot write the format {fmt!r} of this name; use e.g. "
                         ".extxyz or .traj", path=path, field=option)
    if multiple and io.single:
        raise InputError(f"the format {fmt!r} holds one structure, not a trajectory; use "
                         ".extxyz or .traj", path=path, field=option)
    return fmt


def _temporary_beside(path) -> str:
    """A new empty file in ``path``'s folder (created if needed), named after ``path`` with
    the same extension."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=f".tmp{p.suffix}")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    return tmp


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path):
    """Yield a temporary path beside ``path`` (same extension); on success it replaces
    ``path``, on any exception (Ctrl-C included) it is removed and ``path`` is untouched."""
    tmp = _temporary_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_structure_atomic(path, images, **kw) -> None:
    """``ase.io.write(path, images, **kw)`` through a temporary file renamed at the end; the
    format comes from ``path``'s name (:func:`output_format`) unless ``format`` is given."""
    from ase.io import write

    fmt = kw.pop("format", None) or output_format(path, multiple=isinstance(images, list)
                                                  and len(images) > 1)
    with atomic_output(path) as tmp:
        write(tmp, images, format=fmt, **kw)


class TrajectoryWriter:
    """Frames appended one by one to a temporary file beside ``path``; :meth:`close` renames
    it to ``path``, :meth:`discard` (or leaving a ``with`` block by an exception) removes it.

    Formats ASE streams to an open file (extxyz, xyz, ...) and ``.traj`` are written frame by
    frame; other multi-frame formats are kept in memory and written on close."""

    def __init__(self, path, *, option: str = "--trajectory"):
        from ase.io.formats import ioformats

        self.path = Path(path)
        self.format = output_format(path, option=option, multiple=True)
        self._tmp = _temporary_beside(self.path)
        self._open = True
        self._frames = []
        self._file = self._traj = None
        self.count = 0
        io = ioformats[self.format]
        try:
            if self.format == "traj":
                from ase.io.trajectory import Trajectory

                self._traj = Trajectory(self._tmp, "w")
            elif io.acceptsfd:
                self._file = open(self._tmp, "wb" if io.isbinary else "w")  # noqa: SIM115
        except BaseException:
            self.discard()
            raise

    def write(self, atoms) -> None:
        from ase.io import write

        if self._traj is not None:
            self._traj.write(atoms)
        elif self._file is not None:
            write(self._file, atoms, format=self.format)
            self._file.flush()
        else:
            self._frames.append(atoms.copy())
            self._frames[-1].calc = atoms.calc
        self.count += 1

    def _close_handles(self):
        if self._traj is not None:
            self._traj.close()
        if self._file is not None:
            self._file.close()
        self._traj = self._file = None

    def close(self) -> None:
        """Finish the file and move it into place."""
        if not self._open:
            return
        try:
            self._close_handles()
            if self._frames:
                from ase.io import write

                write(self._tmp, self._frames, format=self.format)
            os.replace(self._tmp, self.path)
        except BaseException:
            self.discard()
            raise
        self._open = False

    def discard(self) -> None:
        """Remove the temporary file; ``path`` is left as it was."""
        if not self._open:
            return
        self._open = False
        try:
            self._close_handles()
        finally:
            Path(self._tmp).unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            self.close()
        else:
            self.discard()
        return False
