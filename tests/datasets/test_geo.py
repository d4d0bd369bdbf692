"""Tests for reaxgrad.datasets.geo: BGF blocks to ase.Atoms, ReaxFF cell convention, errors."""


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
    assert first.get_initial_charges()[:3].tolist() == [0.19841, 0.19841, -0.06614]
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
    assert cobalt["Co_1_atom"].info["max_iterations"] == 0
    assert cobalt["Co_3_atom"].info["max_iterations"] is None  # NORMAL RUN: full minimisation
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
    assert atoms.get_initial_charges().tolist() == [0.25, -0.25]
    assert atoms.pbc.all() and np.allclose(cell_to_cellpar(atoms.cell), [10, 11, 12, 90, 90, 120])
    info = atoms.info
    assert (
        info["name"] == "pair"
        and info["max_iterations"] == 0
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
    assert "initial_charges" not in loose.arrays
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
