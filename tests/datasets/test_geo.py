"""Tests for reaxgrad.datasets.geo: BGF blocks to ase.Atoms, ReaxFF cell convention, errors."""


import json

import numpy as np
import pytest
from ase.geometry import cell_to_cellpar, cellpar_to_cell
from ase.neighborlist import neighbor_list

from reaxgrad.datasets import GeoError, read_geo, reaxff_cell

BLOCK = """\
XTLGRF 200
DESCRP {name}
REMARK a test block
RUTYPE {rutype}
{crystx}FORMAT ATOM   (a6,1x,i5,1x,a5,1x,a3,1x,a1,1x,a5,3f10.5,1x,a5,i3,i2,1x,f8.5)
{atoms}MOLCHARGE   1   2  1.00
BOND RESTRAINT    1   2  1.6500 2500.00  1.0000  0.0000000       0       0
ANGLE RESTRAINT   2   1   2  104.5 500.00  1.0000 0.000000
FIXATOM 1 2
CONECT     1     2
ENERGY        -12.5
END
"""
ATOMS = """\
HETATM     1 O                -100.12345-200.54321  -3.00000    O   1 1  0.25000
HETATM     2 Si                 1.00000   2.00000   3.00000    Si  1 1 -0.25000
"""  # the Si line is shifted one column left of the FORMAT: its words are what counts


def _write(tmp_path, text):
    path = tmp_path / "geo"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def data(jaxreaxff_data):
    return jaxreaxff_data


def test_reads_every_block_of_the_jaxreaxff_sets(data):
    for name, n_blocks, n_periodic in (
        ("cobalt", 147, 136),
        ("disulfide", 232, 0),
        ("silica", 304, 49),
    ):
        text = (data / name / "geo").read_text()
        structures = read_geo(data / name / "geo")
        assert len(structures) == n_blocks
        assert sum(len(a) for a in structures) == text.count("\nHETATM")
        assert sum(a.pbc.all() for a in structures) == n_periodic
        assert not any(a.pbc.any() and not a.pbc.all() for a in structures)
    first = read_geo(data / "silica" / "geo")[0]
    assert first.info["name"] == "si1" and first.get_chemical_formula() == "H6Si2"
    assert np.allclose(first.positions[2], [41.32977, 40.00085, 38.67289])
    assert first.arrays["bgf_charges"][:3].tolist() == [0.19841, 0.19841, -0.06614]
    assert "initial_charges" not in first.arrays and "charge" not in first.info  # neutral
    assert first.info["bond_restraints"] == [
        {
            "atoms": (0, 1),
            "target": 1.65,
            "force1": 2500.0,
            "force2": 1.0,
            "rate": 0.0,
            "start": 0.0,
            "end": 0.0,
        }
    ]
    assert not first.pbc.any() and not first.cell.any()


def test_run_types_and_type_names_are_kept(data):
    cobalt = {a.info["name"]: a for a in read_geo(data / "cobalt" / "geo")}
    assert cobalt["Co_1_atom"].info["rutype"] == ["MAXIT     0"]
    assert cobalt["Co_1_atom"].info["relax_steps"] == 0
    assert cobalt["Co_3_atom"].info["relax_steps"] == 99999  # NORMAL RUN: full minimisation
    assert cobalt["hcp_opt"].info["rutype"] == ["ENDPO 0.050", "MAXMOV        0", "CELL OPT     0"]
    assert cobalt["hcp_opt"].info["relax_steps"] == 99999  # none applies: minimise
    silica = read_geo(data / "silica" / "geo")
    dummy = [a for a in silica if "X" in a.arrays["reax_types"]][0]
    assert dummy.get_chemical_symbols()[0] == "X" and dummy.arrays["reax_types"][1] == "Si"


def test_reaxff_cell_puts_c_on_z_and_b_in_the_yz_plane():
    params = (5.0, 6.0, 7.0, 70.0, 80.0, 100.0)
    cell = reaxff_cell(*params)
    assert np.allclose(cell_to_cellpar(cell), params)
    assert cell[2, 0] == cell[2, 1] == 0.0 and cell[2, 2] == 7.0  # c along z
    assert cell[1, 0] == 0.0  # b in the yz plane
    assert not np.allclose(cell, cellpar_to_cell(params))  # not ASE's frame (a along x)
    assert (
        reaxff_cell(3.0, 4.0, 5.0, 90.0, 90.0, 90.0).tolist() == np.diag([3.0, 4.0, 5.0]).tolist()
    )


def _shortest_distance(atoms, cell):
    atoms = atoms.copy()
    atoms.set_cell(cell)
    return neighbor_list("d", atoms, 4.0).min()


def test_triclinic_structures_have_physical_distances_in_the_reaxff_frame(data):
    checked = 0
    for name, shortest in (("silica", 1.45), ("cobalt", 2.2)):
        for atoms in read_geo(data / name / "geo"):
            cellpar = atoms.info.get("crystx")
            if cellpar is None or cellpar[3:] == (90.0, 90.0, 90.0):
                continue
            assert _shortest_distance(atoms, atoms.cell) > shortest, atoms.info["name"]
            checked += 1
    assert checked == 35
    quartz = [a for a in read_geo(data / "silica" / "geo") if a.info["name"] == "quartz"][0]
    assert (
        _shortest_distance(quartz, cellpar_to_cell(quartz.info["crystx"])) < 1.0
    )  # ASE frame: wrong


def test_fixed_columns_keywords_and_charges(tmp_path):
    crystx = "CRYSTX    10.00000   11.00000   12.00000   90.00000   90.00000  120.00000\n"
    path = _write(
        tmp_path, BLOCK.format(name="pair", rutype="SINGLE POINT", crystx=crystx, atoms=ATOMS)
    )
    (atoms,) = read_geo(path)
    assert atoms.get_chemical_symbols() == ["O", "Si"]
    assert atoms.positions[0].tolist() == [-100.12345, -200.54321, -3.0]  # touching columns
    assert atoms.arrays["bgf_charges"].tolist() == [0.25, -0.25]
    assert not atoms.get_initial_charges().any()
    assert atoms.pbc.all() and np.allclose(cell_to_cellpar(atoms.cell), [10, 11, 12, 90, 90, 120])
    info = atoms.info
    assert (
        info["name"] == "pair"
        and info["relax_steps"] == 0
        and info["remarks"] == ["a test block"]
    )
    assert info["molcharge"] == [(0, 1, 1.0)] and info["charge"] == 1.0
    assert (
        info["angle_restraints"][0]["atoms"] == (1, 0, 1)
        and info["angle_restraints"][0]["target"] == 104.5
    )
    assert info["keywords"] == ["FIXATOM 1 2"] and info["bgf_energy"] == -12.5
    assert info["crystx"] == (10.0, 11.0, 12.0, 90.0, 90.0, 120.0)


def test_hand_written_atom_lines_and_other_formats(tmp_path):
    text = """\
BIOGRF 200
DESCRP loose
HETATM 1 C 0.0 0.0 0.0
HETATM 2 H 1.09 0.0 0.0
END
BIOGRF 200
DESCRP custom
FORMAT ATOM   (a6,1x,i5,1x,a5,1x,a3,1x,a1,1x,a5,3f12.6,1x,a5,i3,i2,1x,f8.5)
HETATM     1 Co               -1000.123456-2000.654321    3.000000 Co    0 0  0.00000
END
BIOGRF 200
DESCRP last_without_end
HETATM     1 H                  0.00000   0.00000   0.00000    H   1 1  0.00000
"""
    loose, custom, last = read_geo(_write(tmp_path, text))
    assert loose.get_chemical_symbols() == ["C", "H"] and loose.positions[1, 0] == 1.09
    assert "bgf_charges" not in loose.arrays
    assert custom.get_chemical_symbols() == ["Co"]
    assert custom.positions.tolist() == [[-1000.123456, -2000.654321, 3.0]]
    assert last.info["name"] == "last_without_end" and not loose.pbc.any()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("HETATM     2 Si                 1.00000   2.0000x   3.00000    Si  1 1 -0.25000\n",
         "line 7: expected an atom name and x, y, z coordinates for atom 2"),
        ("CRYSTX    10.0 11.0 12.0 90.0 90.0\n", "line 5: expected CRYSTX a b c alpha beta gamma"),
        ("MOLCHARGE 1 two 0.0\n", "line 5: expected MOLCHARGE first last charge"),
        ("BOND RESTRAINT 1 2 1.5\n",
         "line 5: expected BOND RESTRAINT atom1 atom2 target force1 force2"),
    ],
)  # fmt: skip
def test_malformed_geo_files_name_file_line_and_field(tmp_path, bad, message):
    if bad.startswith("HETATM"):
        atoms = ATOMS.splitlines(keepends=True)[0] + bad
        text = BLOCK.format(name="x", rutype="NORMAL RUN", crystx="", atoms=atoms)
    else:
        text = BLOCK.format(name="x", rutype="NORMAL RUN", crystx=bad, atoms=ATOMS)
    path = _write(tmp_path, text)
    with pytest.raises(GeoError) as info:
        read_geo(path)
    assert isinstance(info.value, ValueError) and str(info.value).startswith(f"{path} {message}")


def test_block_without_atoms_is_an_error(tmp_path):
    path = _write(tmp_path, "BIOGRF 200\nDESCRP empty\nEND\n")
    with pytest.raises(GeoError, match="line 3: structure 'empty' \\(from line 1\\) has no atoms"):
        read_geo(path)


def _block(*lines, name="a", header="BIOGRF 200"):
    return "\n".join([header, f"DESCRP {name}", *lines, "END"]) + "\n"


C_LINE = "HETATM     1 C                   0.00000   0.00000   0.00000 C      1 0  0.10000"
H_LINE = "HETATM     2 H                   1.09000   0.00000   0.00000 H      1 0 -0.10000"


@pytest.mark.parametrize(
    ("rutypes", "steps"),
    [
        ([], 99999),  # JAX-ReaxFF minimises by default
        (["SINGLE POINT"], 0),
        (["NORMAL RUN"], 99999),
        (["MAXIT 10"], 10),
        (["MAXIT     5"], 5),
        (["MAXIT 4"], 0),  # fewer than 5 iterations: no minimisation
        (["MAXIT 0"], 0),
        (["CELL OPT 3"], 99999),
        (["ENDPO 0.5"], 99999),
        (["MAXMOV 0"], 99999),
        (["NO CELL OPT"], 99999),
        (["MAXIT 0", "NO CELL OPT"], 0),  # a later line that does not apply changes nothing
        (["ENDPO 0.500", "MAXIT 20", "MAXMOV 0", "NO CELL OPT"], 20),
        (["SINGLE POINT", "MAXIT 50"], 50),  # the last that applies wins
        (["MAXIT 50", "SINGLE POINT"], 0),
        (["SINGLE POINT", "NORMAL RUN"], 99999),
        (["single point"], 0),
    ],
)
def test_relax_steps_follow_jaxreaxff(tmp_path, rutypes, steps):
    lines = [f"RUTYPE {r}" for r in rutypes] + [C_LINE]
    (atoms,) = read_geo(_write(tmp_path, _block(*lines)))
    assert atoms.info["relax_steps"] == steps
    assert atoms.info.get("rutype", []) == rutypes
    assert "max_iterations" not in atoms.info


def test_relax_steps_of_the_public_sets(data):
    silica = {a.info["name"]: a.info["relax_steps"] for a in read_geo(data / "silica" / "geo")}
    assert silica["quartz_geo"] == 20  # ENDPO 0.500 / MAXIT 20 / MAXMOV 0 / NO CELL OPT
    assert silica["cris1"] == 5 and silica["si_sc66"] == 0 and silica["h2si"] == 99999
    disulfide = read_geo(data / "disulfide" / "geo")
    assert sorted({a.info["relax_steps"] for a in disulfide}) == [0, 99999]
    assert sum(a.info["relax_steps"] == 0 for a in disulfide) == 222  # SINGLE POINT lines


def test_charge_column_is_not_the_structure_charge(tmp_path):
    path = _write(tmp_path, _block(C_LINE, H_LINE.replace("-0.10000", " 0.40000")))
    (atoms,) = read_geo(path)
    assert atoms.arrays["bgf_charges"].tolist() == [0.1, 0.4]
    assert "charge" not in atoms.info and not atoms.get_initial_charges().any()
    (charged,) = read_geo(_write(tmp_path, _block("MOLCHARGE 1 2 -1.0", C_LINE, H_LINE)))
    assert charged.info["charge"] == -1.0 and charged.info["molcharge"] == [(0, 1, -1.0)]


def test_silica_energies_use_a_neutral_total_charge(data, capsys):
    """The charge column sums to -0.74554 in geo12 and +0.54881 in h2si; used as the total
    charge it gave -857.74 and -160.24 kcal/mol.  Neutral, as JAX-ReaxFF and LAMMPS (checked
    with lammps_oracle) have them: -792.71 and -230.98."""
    from ase import units

    from reaxgrad.cli import main
    from reaxgrad.md.calculator import ReaxFFCalculator

    ffield = data / "silica" / "ffield_lit"
    if not ffield.exists():
        pytest.skip(f"{ffield} is absent")
    structures = read_geo(data / "silica" / "geo")
    index = {a.info["name"]: n for n, a in enumerate(structures)}
    kcal = units.kcal / units.mol
    for name, expected, column_sum, with_column_sum in (
        ("geo12", -792.7087, -0.74554, -857.7418),
        ("h2si", -230.9838, 0.54881, -160.2355),
    ):
        atoms = structures[index[name]]
        assert atoms.arrays["bgf_charges"].sum() == pytest.approx(column_sum, abs=1e-9)
        atoms.calc = ReaxFFCalculator(ffield)
        assert atoms.get_potential_energy() / kcal == pytest.approx(expected, abs=0.01)
        atoms.calc = ReaxFFCalculator(ffield, charge=column_sum)  # an explicit charge wins
        assert atoms.get_potential_energy() / kcal == pytest.approx(with_column_sum, abs=0.01)
        argv = ["energy", str(data / "silica" / "geo"), "--ffield", str(ffield), "--index",
                str(index[name]), "--json"]
        assert main(argv) == 0
        assert json.loads(capsys.readouterr().out)["energy"] == pytest.approx(expected, abs=0.01)
        assert main([*argv, "--charge", str(column_sum)]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["energy"] == pytest.approx(with_column_sum, abs=0.01)


def test_atom_names_checked_against_the_force_field_elements(tmp_path, data):
    path = _write(tmp_path, _block(C_LINE, H_LINE.replace(" H   ", " Xx  ", 1)))
    with pytest.raises(GeoError) as info:
        read_geo(path)
    assert info.value.lineno == 4 and "atom 2: atom name 'Xx' is not a chemical element" in str(
        info.value)
    ok = _write(tmp_path, _block(C_LINE, H_LINE.replace(" H   ", " C1  ", 1)))
    assert read_geo(ok)[0].get_chemical_symbols() == ["C", "C"]  # C1 reads as carbon
    with pytest.raises(GeoError) as info:  # but a force field has no type 'C1'
        read_geo(ok, elements=["C", "H", "O"])
    assert info.value.lineno == 4 and "'C1' is not an atom type of the force field (C H O)" in \
        str(info.value)
    assert len(read_geo(ok, elements=["C", "C1"])) == 1
    silica = read_geo(data / "silica" / "geo", elements=["H", "O", "Si", "X"])
    assert sum(a.get_chemical_symbols().count("X") for a in silica) == 17  # the dummy type
    with pytest.raises(GeoError, match="'X' is not an atom type of the force field"):
        read_geo(data / "silica" / "geo", elements=["H", "O", "Si"])


_ERRORS = [
    (_block("HETATM 1 Qq 0 0 0"), 3, "atom 1: atom name 'Qq' is not a chemical element"),
    (_block(C_LINE, "HETATM 2 C nan 0 0"), 4, "atom 2: coordinate x is nan"),
    (_block(C_LINE.replace("  0.00000   0.00000 C", "      inf   0.00000 C")), 3,
     "atom 1: coordinate y is inf"),
    (_block(C_LINE.replace("   0.00000   0.00000   0.00000", "**********   0.00000   0.00000")), 3,
     "atom 1: overflowed field '**********'"),
    (_block(C_LINE.replace("  0.10000", "*********")), 3, "overflowed field"),
    (_block("CRYSTX ********** 10.0 10.0 90.0 90.0 90.0", C_LINE), 3, "CRYSTX: overflowed"),
    (_block(C_LINE)[:-4] + "BIOGRF 200\nDESCRP b\n" + C_LINE + "\nEND\n", 4,
     "BIOGRF inside structure 'a' (from line 1), which already has 1 atoms: missing END"),
    (_block(C_LINE)[:-4] + "DESCRP b\n" + C_LINE + "\nEND\n", 4, "DESCRP inside structure 'a'"),
    (_block(C_LINE)[:-4] + "XTLGRF 200\n" + C_LINE + "\nEND\n", 4, "missing END before it"),
    (_block(C_LINE) + _block(C_LINE, name="a"), 6,
     "DESCRP 'a' is already the name of the structure on line 2"),
    (_block("CRYSTX -10.0 10.0 10.0 90.0 90.0 90.0", C_LINE), 3, "CRYSTX a = -10.0 must be pos"),
    (_block("CRYSTX 10.0 10.0 0.0 90.0 90.0 90.0", C_LINE), 3, "CRYSTX c = 0.0 must be positive"),
    (_block("CRYSTX 10.0 10.0 10.0 0.0 90.0 90.0", C_LINE), 3, "alpha = 0.0 must lie between"),
    (_block("CRYSTX 10.0 10.0 10.0 90.0 90.0 180.0", C_LINE), 3, "gamma = 180.0 must lie"),
    (_block("CRYSTX 10.0 10.0 10.0 30.0 30.0 60.0", C_LINE), 3, "make a flat cell"),
    (_block("CRYSTX 10.0 10.0 10.0 90.0 10.0 120.0", C_LINE), 3, "make a flat cell"),
    (_block("CRYSTX nan 10.0 10.0 90.0 90.0 90.0", C_LINE), 3, "CRYSTX a is nan"),
    (_block("MOLCHARGE 1 3 1.0", C_LINE, H_LINE), 3,
     "MOLCHARGE: atom 3 is outside structure 'a', which has 2 atoms"),
    (_block("MOLCHARGE 0 2 1.0", C_LINE, H_LINE), 3, "MOLCHARGE first: atom 0 is below 1"),
    (_block("MOLCHARGE 2 1 1.0", C_LINE, H_LINE), 3, "first atom 2 is after the last 1"),
    (_block(C_LINE, H_LINE, "BOND RESTRAINT 1 3 1.5 500.0 1.0"), 5,
     "BOND RESTRAINT: atom 3 is outside structure 'a', which has 2 atoms"),
    (_block("ANGLE RESTRAINT 2 1 7 104.5 500.0 1.0", C_LINE, H_LINE), 3,
     "ANGLE RESTRAINT: atom 7 is outside"),
    (_block("TORSION RESTRAINT 1 2 1 2.5 180.0 500.0 1.0", C_LINE, H_LINE), 3,
     "TORSION RESTRAINT atom4: 2.5 is not an atom number"),
    (_block("RUTYPE MAXIT many", C_LINE), 3, "RUTYPE MAXIT: expected an integer"),
    ("BIOGRF 200\nDESCRP last\nBOND RESTRAINT 1 2 1.5 500.0 1.0\n" + C_LINE + "\n", 3,
     "BOND RESTRAINT: atom 2 is outside"),  # checked at the end of a last block without END
]


@pytest.mark.parametrize(("text", "lineno", "message"), _ERRORS)
def test_named_errors_for_inconsistent_geo_files(tmp_path, text, lineno, message):
    path = _write(tmp_path, text)
    with pytest.raises(GeoError) as info:
        read_geo(path)
    err = info.value
    assert err.path == str(path) and err.lineno == lineno
    assert str(err).startswith(f"{path} line {lineno}: ") and message in str(err), str(err)


@pytest.mark.parametrize(("text", "lineno", "message"), _ERRORS[::3] + [
    (BLOCK.format(name="x", rutype="NORMAL RUN", crystx="CRYSTX 1 2\n", atoms=ATOMS), 5,
     "expected CRYSTX a b c alpha beta gamma"),
    ("BIOGRF 200\nDESCRP empty\nEND\n", 3, "has no atoms"),
])
def test_reaxgrad_energy_reports_one_clean_line_and_exits_2(tmp_path, capsys, text, lineno,
                                                            message):
    from reaxgrad.cli import main

    path = _write(tmp_path, text)
    assert main(["energy", str(path), "--ffield", str(tmp_path / "ffield")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    (line,) = captured.err.splitlines()
    assert line.startswith(f"reaxgrad energy: error: {path} line {lineno}: ") and message in line
    bgf = tmp_path / "molecule.bgf"
    bgf.write_text(text)
    assert main(["energy", str(bgf), "--ffield", str(tmp_path / "ffield")]) == 2
    assert capsys.readouterr().err.startswith(f"reaxgrad energy: error: {bgf} line {lineno}: ")


def test_reaxgrad_energy_on_an_unreadable_structure_file(tmp_path, capsys):
    from reaxgrad.cli import main

    path = tmp_path / "broken.xyz"
    path.write_text("2\ncomment\nC 0 0 0\nH one 0 0\n")
    assert main(["energy", str(path), "--ffield", str(tmp_path / "ffield")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"reaxgrad energy: error: {path}: cannot read it as a structure")
