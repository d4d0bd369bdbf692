"""Write ReaxFF ``geo`` files: one BGF block per :class:`ase.Atoms`, read back by
:func:`reaxgrad.datasets.read_geo`.

Each block holds, in this order: ``XTLGRF 200`` (periodic) or ``BIOGRF 200``; ``DESCRP
info["name"]``; ``REMARK`` lines (``info["remarks"]``); ``RUTYPE`` (below); bond / angle /
torsion restraints (``info["bond_restraints"]`` ..., as :func:`read_geo` stores them);
``MOLCHARGE`` (``info["molcharge"]`` ranges, else one range over every atom when
``info["charge"]`` is non-zero); ``CRYSTX`` for periodic structures; other keyword lines
verbatim (``info["keywords"]``); ``FORMAT ATOM``; one ``HETATM`` line per atom in the standard
BGF columns; ``ENERGY`` (``info["bgf_energy"]``); ``END``.

``RUTYPE`` from ``info["relax_steps"]`` (JAX-ReaxFF's minimisation budget, as
:func:`read_geo` sets it): 0 gives ``SINGLE POINT``, 99999 (``FULL_MINIMISATION``) or None
``NORMAL RUN``, other n ``MAXIT n``; without the key ``SINGLE POINT`` (what DFT single points
are).  The HETATM charge column holds ``arrays["bgf_charges"]`` (else the initial charges).

Cells: ReaxFF reads ``CRYSTX a b c alpha beta gamma`` in its own frame (**c** along z, **b** in
the yz plane, see :func:`reaxff_cell`), with Cartesian HETATM coordinates in that frame.  A
periodic structure whose cell is not in that frame is rotated rigidly (positions with it) by
:func:`reaxff_orientation`; a left-handed cell is mirrored, which ReaxFF energies do not
notice.  Any periodic direction makes the structure periodic in all three (ReaxFF has no
slabs); a non-periodic structure is written without a cell.

Precision: the standard columns carry 5 decimals (1e-5 Å); ``decimals=d`` widens the
coordinate and ``CRYSTX`` fields (``3f{d+5}.{d}``, declared in the ``FORMAT ATOM`` line) for
readers that honour it, as :func:`read_geo` does.  Files are written atomically.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms

from .geo import DEFAULT_ATOM_FORMAT, FULL_MINIMISATION, reaxff_cell

_RESTRAINTS = (("bond_restraints", "BOND"), ("angle_restraints", "ANGLE"),
               ("torsion_restraints", "TORSION"))  # fmt: skip


def reaxff_orientation(atoms: Atoms) -> tuple[Atoms, np.ndarray]:
    """A copy of a periodic ``atoms`` rotated into the ReaxFF cell frame, and the 3x3 matrix
    ``R`` (row vectors: ``new = old @ R``; momenta rotate with the positions; rotate forces
    the same way).  Other per-atom vectors are copied unrotated.  Non-periodic
    structures, and cells already in that frame, come back unchanged with ``R = I``."""
    out = atoms.copy()
    if not atoms.pbc.any():
        return out, np.eye(3)
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    if atoms.cell.rank < 3 or abs(np.linalg.det(cell)) < 1e-8:
        raise ValueError("a periodic structure needs three independent cell vectors, "
                         f"got {cell.tolist()}")
    target = reaxff_cell(*atoms.cell.cellpar())
    if np.allclose(cell, target, rtol=0.0, atol=1e-10):
        rotation = np.eye(3)
    else:
        rotation = np.linalg.solve(cell, target)
    out.set_cell(target, scale_atoms=False)
    out.positions = atoms.positions @ rotation
    if atoms.has("momenta"):
        out.set_momenta(atoms.get_momenta() @ rotation)
    out.set_pbc(True)
    return out, rotation


def geo_block(atoms: Atoms, decimals: int = 5) -> str:
    """The BGF block (ending in ``END``) for one structure."""
    info = atoms.info
    name = str(info.get("name", "")).strip()
    if not name or len(name.split()) != 1:
        raise ValueError(f"structure names must be one word, got {name!r}")
    periodic = bool(atoms.pbc.any())
    if periodic:
        atoms, _ = reaxff_orientation(atoms)
    lines = ["XTLGRF 200" if periodic else "BIOGRF 200", f"DESCRP {name}"]
    lines += [f"REMARK {text}".rstrip() for text in _as_list(info.get("remarks"))]
    lines.append(f"RUTYPE {_rutype(info)}")
    lines += _restraint_lines(info)
    lines += _molcharge_lines(info, len(atoms))
    width = decimals + 5
    if periodic:
        a, b, c, alpha, beta, gamma = atoms.cell.cellpar()
        lines.append("CRYSTX " + "".join(
            _fixed(v, width + 1, decimals, "CRYSTX") for v in (a, b, c, alpha, beta, gamma)))
    lines += [str(text) for text in _as_list(info.get("keywords"))]
    atom_format = DEFAULT_ATOM_FORMAT.replace("3f10.5", f"3f{width}.{decimals}")
    lines.append(f"FORMAT ATOM   {atom_format}")
    lines += _atom_lines(atoms, width, decimals)
    if info.get("bgf_energy") is not None:
        lines.append(f"ENERGY {float(info['bgf_energy'])!r}")
    lines.append("END")
    return "\n".join(lines) + "\n"


def write_geo(path, structures, decimals: int = 5) -> None:
    """Write ``structures`` (ase.Atoms with ``info["name"]``) as a geo file, atomically."""
    names = [str(a.info.get("name", "")) for a in structures]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"structure names must be unique, repeated: {', '.join(duplicates)}")
    text = ""
    for index, atoms in enumerate(structures):
        try:
            text += geo_block(atoms, decimals) + "\n"
        except ValueError as exc:
            raise ValueError(f"{path}: structure {index} ({names[index]!r}): {exc}") from None
    write_text_atomically(path, text)


def write_text_atomically(path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it onto ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _as_list(value) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _rutype(info: dict) -> str:
    steps = info.get("relax_steps", 0)
    if steps is None or int(steps) == FULL_MINIMISATION:
        return "NORMAL RUN"
    return "SINGLE POINT" if int(steps) == 0 else f"MAXIT {int(steps):5d}"


def _restraint_lines(info: dict) -> list[str]:
    lines = []
    for key, keyword in _RESTRAINTS:
        for r in info.get(key, ()):
            atoms = "".join(f"{i + 1:4d}" for i in r["atoms"])
            values = [r["target"], r["force1"], r["force2"]]
            values += [r[k] for k in ("rate", "start", "end") if k in r]
            lines.append(f"{keyword} RESTRAINT {atoms} " + " ".join(repr(float(v))
                                                                for v in values))
    return lines


def _molcharge_lines(info: dict, n_atoms: int) -> list[str]:
    ranges = info.get("molcharge")
    if not ranges:
        charge = float(info.get("charge", 0.0) or 0.0)
        ranges = [(0, n_atoms - 1, charge)] if charge != 0.0 else []
    return [f"MOLCHARGE {first + 1:5d} {last + 1:5d} {float(q)!r}" for first, last, q in ranges]


def _fixed(value: float, width: int, decimals: int, field: str) -> str:
    text = f"{value:{width}.{decimals}f}"
    if len(text) > width or not math.isfinite(value):
        raise ValueError(f"{field} value {value!r} does not fit the f{width}.{decimals} column; "
                         "use more width (decimals) or wrap the positions into the cell")
    return text


def _atom_lines(atoms: Atoms, width: int, decimals: int) -> list[str]:
    symbols = atoms.get_chemical_symbols()
    names = atoms.arrays.get("reax_types", symbols)
    charges = atoms.arrays.get("bgf_charges", atoms.get_initial_charges())
    lines = []
    for i, (name, xyz, q) in enumerate(zip(names, atoms.positions, charges)):
        name = str(name)
        if not 0 < len(name) <= 5 or " " in name:
            raise ValueError(f"atom {i + 1}: atom name {name!r} does not fit the a5 column")
        coords = "".join(_fixed(v, width, decimals, f"atom {i + 1} coordinate") for v in xyz)
        lines.append(f"HETATM {i + 1:5d} {name:<5s} {'':3s} {'':1s} {'':5s}{coords} "
                     f"{symbols[i]:<5s}{0:3d}{0:2d} {_fixed(q, 8, 5, 'charge')}")
    return lines


__all__ = ["geo_block", "reaxff_orientation", "write_geo", "write_text_atomically"]
