"""Batches of training structures evaluated by one compiled call.

A batch is the disjoint union of its structures: their interaction lists (built per structure
in NumPy by ``forcefields.reaxff.lists.build_lists``) are concatenated with atom and bond
offsets, image shifts are stored as Cartesian vectors (so one identity "cell" serves every
structure), and ``atom_structure`` tells the energy terms to sum per structure. Charges are
solved per structure in a padded (S, m) layout (``charge_slot``). Concatenation pads only the
list ends (capacities on the bucket ladder, so compiled functions are reused as lists grow and
shrink), unlike vmap, which pads every structure to the largest one.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from reaxgrad.forcefields.reaxff.lists import ReaxLists, build_lists
from reaxgrad.md.neighbors import bucket_capacity

# list name -> ({index field: what it indexes, "atom" or "bond"}, shift field, other fields)
_LISTS = {
    "bond": ({"bond_i": "atom", "bond_j": "atom"}, "bond_shift", ("bond_half",)),
    "angle": ({"angle_b1": "bond", "angle_b2": "bond"}, None, ()),
    "torsion": ({"torsion_ij": "bond", "torsion_jk": "bond", "torsion_kl": "bond"}, None, ()),
    "hbond": ({"hbond_bond": "bond", "hbond_k": "atom"}, "hbond_shift", ()),
    "far": ({"far_i": "atom", "far_j": "atom"}, "far_shift", ()),
}
# relaxation lists: candidates stay complete while atoms move less than skin / 2 and the
# corrected bond orders of angle/torsion/H-bond legs grow less than 10x. The loss at
# fixed geometry uses skin 0 (optimize.problem): its lists are rebuilt whenever the geometry
# or, between outer iterations, the parameters change (bo_margin covers bond orders that grow
# up to 2x while the optimizer moves the parameters).
FIT_CONTROL = {"skin": 0.3, "bo_margin": 0.5, "corrected_margin": 0.1}
MOLECULE_GAP = 15.0  # Å between molecules sharing a list build: beyond every cutoff + skin


@dataclass
class Structure:
    """A training structure ready to evaluate (units: Å, e)."""

    name: str
    symbols: list
    types: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    pbc: bool
    charge: float = 0.0
    relax_steps: int = 0
    restraints: dict | None = None
    heat_increment: float = 0.0  # Σ of the atoms' ffield heat increments (HEATFO items)

    @property
    def n_atoms(self) -> int:
        return len(self.types)


@dataclass
class Batch:
    """Concatenated lists of structures ``members`` (indices into the structure list)."""

    members: np.ndarray
    atom_offsets: np.ndarray  # (S + 1,)
    lists: ReaxLists
    charges: np.ndarray  # (S,) total charges
    built_at: np.ndarray  # (N, 3) positions the lists were built at
    counts: dict
    restraints: dict | None = None  # geo restraints as arrays (optimize.relax), batch-global

    @property
    def n_atoms(self) -> int:
        return int(self.atom_offsets[-1])

    def capacities(self) -> dict:
        """Padded length of every list (what the compiled function sees)."""
        return {name: len(getattr(self.lists, name + "_mask")) for name in self.counts}

    def padding(self) -> float:
        """Fraction of list entries that are padding (work spent on nothing)."""
        used, total = sum(self.counts.values()), sum(self.capacities().values())
        return 1.0 - used / total if total else 0.0

    def split(self, per_atom) -> list[np.ndarray]:
        """Per-structure pieces of a (N, ...) array."""
        o = self.atom_offsets
        return [per_atom[o[k]:o[k + 1]] for k in range(len(self.members))]


def _strip(lists: ReaxLists, name: str) -> dict:
    """The real (unpadded) entries of one list of a single structure."""
    index_fields, shift, extra = _LISTS[name]
    keep = np.asarray(getattr(lists, name + "_mask"), dtype=bool)
    out = {f: np.asarray(getattr(lists, f))[keep] for f in (*index_fields, *extra)}
    if shift:
        out[shift] = np.asarray(getattr(lists, shift))[keep]
    return out


def canonical_order(structures: list[Structure], members) -> np.ndarray:
    """Members with the molecules first (their lists are built together), stable."""
    members = np.asarray(members, dtype=np.int64)
    periodic = np.array([structures[k].pbc for k in members], dtype=bool)
    return np.concatenate([members[~periodic], members[periodic]])


def _units(chosen, positions):
    """Groups of consecutive structures whose lists one ``build_lists`` call can make: each
    crystal alone; a run of molecules together, translated apart on a grid (farther than every
    cutoff), which leaves every displacement inside a molecule unchanged."""
    units, run = [], []
    for s, pos in zip(chosen, positions):
        if s.pbc:
            if run:
                units.append(run)
                run = []
            units.append([(s, pos)])
        else:
            run.append((s, pos))
    if run:
        units.append(run)
    for unit in units:
        if unit[0][0].pbc:
            s, pos = unit[0]
            yield pos, s.cell, True, s.types, [s]
            continue
        spans = [np.ptp(pos, axis=0).max(initial=0.0) for _, pos in unit]
        spacing = max(spans) + MOLECULE_GAP
        side = int(np.ceil(len(unit) ** (1.0 / 3.0)))
        moved = []
        for k, (_, pos) in enumerate(unit):
            grid = np.array([k % side, (k // side) % side, k // (side * side)], dtype=np.float64)
            moved.append(pos - pos.min(axis=0) + grid * spacing)
        yield (np.concatenate(moved), np.zeros((3, 3)), False,
               np.concatenate([s.types for s, _ in unit]), [s for s, _ in unit])


def build_batch(structures: list[Structure], members, params, positions=None, *,
                elements=None, control=None, previous: Batch | None = None,
                capacities: dict | None = None) -> Batch:
    """Lists for ``structures[k] for k in members`` at ``positions`` (a list of (n, 3) arrays,
    default each structure's own), concatenated and padded. ``previous`` (or ``capacities``,
    {list name: length}, as ``Batch.capacities()``): keep those capacities when the new lists
    fit (same compiled function). Pass members in ``canonical_order`` so that consecutive
    molecules share one list build."""
    if capacities is None and previous is not None:
        capacities = previous.capacities()
    members = np.asarray(members, dtype=np.int64)
    chosen = [structures[k] for k in members]
    positions = [s.positions for s in chosen] if positions is None else positions
    control = {**FIT_CONTROL, **(control or {})}
    parts = {name: [] for name in _LISTS}
    atom_offset = bond_offset = 0
    offsets, first = [0], None
    for pos, cell, pbc, types, unit in _units(chosen, positions):
        settings = control
        if pbc and control.get("image_limit") == "jaxreaxff":
            settings = {**control, "image_limit": jaxreaxff_image_limit(cell)}
        elif control.get("image_limit") == "jaxreaxff":
            settings = {k: v for k, v in control.items() if k != "image_limit"}
        lists = build_lists(pos, cell, pbc, types, params, settings, elements=elements,
                            minimum_capacity=1)
        first = first or lists
        n_bonds = int(np.sum(lists.bond_mask))
        for name, (index_fields, shift, _) in _LISTS.items():
            piece = _strip(lists, name)
            for f, kind in index_fields.items():
                piece[f] = piece[f] + (atom_offset if kind == "atom" else bond_offset)
            if shift:
                piece[shift] = piece[shift] @ cell  # Cartesian image vectors
            parts[name].append(piece)
        for s in unit:
            atom_offset += s.n_atoms
            offsets.append(atom_offset)
        bond_offset += n_bonds
    fields_out = {}
    counts = {}
    for name in _LISTS:
        joined = {f: np.concatenate([p[f] for p in parts[name]]) for f in parts[name][0]}
        m = len(next(iter(joined.values())))
        counts[name] = m
        capacity = padded_length(m, capacities, name)
        for f, values in joined.items():
            padded = np.zeros((capacity,) + values.shape[1:], dtype=values.dtype)
            padded[:m] = values
            fields_out[f] = padded
        mask = np.zeros(capacity, dtype=bool)
        mask[:m] = True
        fields_out[name + "_mask"] = mask
    types = np.concatenate([s.types for s in chosen]).astype(np.int64)
    carbon = np.array([str(e).upper() == "C" for e in (elements or [])] or [False])
    is_carbon = carbon[types] if elements else np.zeros(len(types), dtype=bool)
    sizes = np.diff(offsets)
    width = int(sizes.max())
    owner = np.repeat(np.arange(len(chosen)), sizes)
    local = np.arange(atom_offset) - np.repeat(np.asarray(offsets[:-1]), sizes)
    slots = np.arange(width)[None, :] < sizes[:, None]
    scalars = {f.name: getattr(first, f.name) for f in fields(ReaxLists)
               if f.name in ("bond_cut", "hbond_cut", "thb_cut", "thb_cutsq")}
    lists = ReaxLists(types=types, is_carbon=is_carbon, **fields_out, **scalars,
                      atom_structure=owner, charge_slot=owner * width + local,
                      structure_slots=slots)
    return Batch(members=members, atom_offsets=np.asarray(offsets), lists=lists,
                 charges=np.array([s.charge for s in chosen], dtype=np.float64),
                 built_at=np.concatenate(positions), counts=counts)


def padded_length(count: int, capacities: dict | None, name: str) -> int:
    """The capacity of list ``name`` holding ``count`` entries, kept at ``capacities[name]``
    when they fit, else the next size on the bucket ladder."""
    old = 0 if capacities is None else int(capacities.get(name, 0))
    return old if count <= old else bucket_capacity(count, growth=1.25, minimum=16)


def jaxreaxff_image_limit(cell, far_cutoff=10.0) -> tuple[int, int, int]:
    """The periodic images JAX-ReaxFF includes: ceil(10 Å / the diagonal of its cell matrix)
    along each cell vector (ReaxFF orientation: c along z, b in the yz plane)."""
    return tuple(int(np.ceil(far_cutoff / abs(cell[k, k]))) for k in range(3))


def moved_too_far(batch: Batch, positions: np.ndarray, skin: float | None = None) -> bool:
    """True when an atom moved more than half the skin since the lists were built."""
    skin = FIT_CONTROL["skin"] if skin is None else skin
    d = np.linalg.norm(np.asarray(positions) - batch.built_at, axis=1)
    return bool(d.max(initial=0.0) > 0.5 * skin)
