"""Tests for reaxgrad.forcefields.ffield: parsing, exact writing, LAMMPS-compatible tables."""

import math

import numpy as np
import pytest

from reaxgrad.forcefields.ffield import (
    FFieldError,
    Record,
    format_ffield,
    read_ffield,
    to_params,
    write_ffield,
)
from reaxgrad.forcefields.ffield_tables import DERIVED_KEYS, derive

SHIPPED = [
    "ffield.reax.cho", "ffield.reax.lg", "ffield.reax.FC", "ffield.reax.rdx", "ffield.reax.AB",
    "ffield.reax.ZnOH", "ffield.reax.mattsson", "ffield.reax.Fe_O_C_H", "ffield.ci-reax.CH",
]  # fmt: skip


def _edited(src, tmp_path, lineno, old, new, name="ffield.test"):
    """A copy of ``src`` with ``old`` replaced by ``new`` on 1-based line ``lineno``."""
    lines = src.read_text().split("\n")
    assert old in lines[lineno - 1], lines[lineno - 1]
    lines[lineno - 1] = lines[lineno - 1].replace(old, new, 1)
    path = tmp_path / name
    path.write_text("\n".join(lines))
    return path


def _truncated(src, tmp_path, n_dropped):
    lines = src.read_text().splitlines(keepends=True)
    path = tmp_path / "ffield.truncated"
    path.write_text("".join(lines[:-n_dropped]))
    return path


# ----------------------------------------------------------------------------- parsing


def test_reads_every_section_of_cho(potentials):
    ff = read_ffield(potentials / "ffield.reax.cho")
    assert ff.elements == ["C", "H", "O"] and not ff.lg and ff.missing == ()
    counts = [
        len(ff.section(s))
        for s in ("general", "bonds", "offdiagonal", "angles", "torsions", "hbonds")
    ]
    assert counts == [39, 6, 3, 18, 26, 1]
    assert ff.general[0].value(0) == 50.0 and ff.general[-1].value(0) == 2.6962
    h = ff.atoms[1]
    assert h.symbol == "H" and len(h.values) == 32 and h.values[:3] == [0.7853, 1.0, 1.008]
    assert h.lineno == 50
    assert ff.bonds[0].types == (1, 1) and len(ff.bonds[0].values) == 16
    assert ff.offdiagonal[0].types == (1, 2) and ff.offdiagonal[0].values[4] == -1.0
    assert ff.torsions[-1].types == (0, 3, 3, 0) and len(ff.torsions[-1].values) == 7
    assert ff.hbonds[0].types == (3, 2, 3) and ff.hbonds[0].values == [1.9682, -4.4628, 1.7976, 3.0]


@pytest.mark.parametrize("name", SHIPPED)
def test_unedited_files_are_written_back_byte_for_byte(potentials, name):
    path = potentials / name
    assert format_ffield(read_ffield(path)) == path.read_text()


@pytest.mark.parametrize("name", ["ffield.reax.cho", "ffield.reax.lg"])
def test_regenerated_values_read_back_identically(potentials, tmp_path, name):
    ff = read_ffield(potentials / name)
    rng = np.random.default_rng(1)
    for section in ("general", "atoms", "bonds", "offdiagonal", "angles", "torsions", "hbonds"):
        for rec in ff.section(section):
            rec.values = [v * (1 + 1e-3 * rng.random()) + 1e-9 for v in rec.values]
    write_ffield(ff, tmp_path / "out", keep_source=False)
    back = read_ffield(tmp_path / "out")
    assert back.lg == ff.lg and back.elements == ff.elements
    for section in ("general", "atoms", "bonds", "offdiagonal", "angles", "torsions", "hbonds"):
        for a, b in zip(ff.section(section), back.section(section), strict=True):
            assert a.types == b.types and a.values == b.values  # exact floats


def test_editing_one_record_rewrites_only_its_lines(potentials, tmp_path):
    src = potentials / "ffield.reax.cho"
    ff = read_ffield(src)
    ff.bonds[1].values[0] *= 1 + 1e-7
    write_ffield(ff, tmp_path / "out")
    old, new = src.read_text().splitlines(), (tmp_path / "out").read_text().splitlines()
    changed = [i + 1 for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    assert changed == [ff.bonds[1].lineno]
    assert read_ffield(tmp_path / "out").bonds[1].values[0] == ff.bonds[1].values[0]


def test_crlf_line_ends_read_like_lf(potentials, tmp_path):
    text = (potentials / "ffield.reax.cho").read_text()
    (tmp_path / "crlf").write_bytes(text.replace("\n", "\r\n").encode())
    ff = read_ffield(tmp_path / "crlf")
    assert format_ffield(ff) == text
    assert ff.header == text.splitlines()[0] and ff.hbonds[0].values[-1] == 3.0


def test_records_built_in_code_are_written(potentials, tmp_path):
    ff = read_ffield(potentials / "ffield.reax.cho")
    ff.hbonds.append(Record(types=(1, 2, 3), values=[2.0, -1.5, 1.25, 3.0]))
    write_ffield(ff, tmp_path / "out")
    back = read_ffield(tmp_path / "out")
    assert [r.types for r in back.hbonds] == [(3, 2, 3), (1, 2, 3)]
    assert back.hbonds[1].values == [2.0, -1.5, 1.25, 3.0]


def test_lg_layout_is_detected_and_used(potentials):
    ff = read_ffield(potentials / "ffield.reax.lg")
    assert ff.lg and len(ff.atoms) == 5
    assert len(ff.atoms[0].values) == 34 and ff.atoms[3].values[32:] == [1240.001, 1.83]
    assert len(ff.offdiagonal[0].values) == 7 and ff.offdiagonal[2].values[6] == 294.95
    assert not read_ffield(potentials / "ffield.reax.cho").lg
    with pytest.raises(
        FFieldError, match="line 50: expected a symbol and 8 numbers for atom type 2"
    ):
        read_ffield(potentials / "ffield.reax.lg", lg=False)


# ----------------------------------------------------------------------------- tables


def test_atom_tables_follow_lammps_conventions(potentials):
    p = to_params(read_ffield(potentials / "ffield.reax.cho"))
    assert p["gp"].shape == (39,) and p["gp"][1] == 9.5469
    assert p["r_s"].tolist() == [1.3825, 0.7853, 1.2477]
    assert p["eta"].tolist() == [2 * 7.0, 2 * 7.4366, 2 * 8.9989]  # LAMMPS stores 2 * eta
    assert p["chi"].tolist() == [5.8678, 5.32, 8.5]
    assert p["p_hbond"].dtype == np.int64 and p["p_hbond"].tolist() == [0, 1, 2]
    assert p["nlp_opt"].tolist() == [0.0, 0.0, 2.0]
    assert p["b_o_131"].tolist() == [8.6991, 1.9771, 20.414]  # line 3, value 4
    assert p["p_val3"].tolist() == [2.5, 2.1488, 2.7025]  # line 4, value 2
    assert not p["lgcij"].any() and int(p["vdw_type"]) == 1


def test_derived_tables_are_recomputed_from_the_independent_ones(potentials):
    p = to_params(read_ffield(potentials / "ffield.reax.lg"))
    derived = derive(p)
    assert set(derived) == set(DERIVED_KEYS)
    assert all(np.array_equal(derived[k], p[k]) for k in DERIVED_KEYS)
    p["epsilon"] = 2.0 * p["epsilon"]
    assert derive(p)["pair_D"][0, 0] == 2.0 * p["pair_D"][0, 0]  # C-C: no off-diagonal entry
    assert derive(p)["pair_D"][0, 1] == p["pair_D"][0, 1]  # C-H: off-diagonal value wins


def test_light_atom_types_use_valency_boc_as_valency_val(potentials):
    ff = read_ffield(potentials / "ffield.reax.cho")
    ff.atoms[0].values[27] = 3.5  # C valency_val; valency_boc (value 11) is 4.0
    assert to_params(ff)["valency_val"][0] == 4.0
    ff.atoms[0].values[2] = 30.0  # heavier than 21 amu: the file value is kept
    assert to_params(ff)["valency_val"][0] == 3.5


def test_pair_tables_mix_then_apply_positive_offdiagonal_values(potentials):
    p = to_params(read_ffield(potentials / "ffield.reax.cho"))
    r_pi = p["r_pi"]
    assert p["pair_r_s"][0, 0] == 1.3825 and p["pair_r_s"][0, 1] == p["pair_r_s"][1, 0] == 1.1203
    assert p["pair_r_p"][0, 1] == 0.5 * (r_pi[0] + r_pi[1])  # off-diagonal -1.0 is ignored
    assert p["pair_r_p"][0, 2] == 1.1342
    assert p["pair_r_vdw"][0, 1] == 2 * 1.4 and p["pair_r_vdw"][1, 1] == 2.0 * math.sqrt(1.5904**2)
    assert p["pair_D"][1, 2] == p["pair_D"][2, 1] == 0.0344
    assert p["pair_D"][0, 0] == math.sqrt(0.1853 * 0.1853)
    assert p["pair_gamma"][0, 1] == (0.9 * 1.0206) ** -1.5
    assert p["pair_p_boc4"][0, 1] == math.sqrt(8.6991 * 1.9771)
    assert p["pair_p_boc3"][0, 1] == math.sqrt(34.7289 * 3.3517)
    assert p["off_r_p_mask"].tolist() == [[0, 0, 1], [0, 0, 0], [1, 0, 0]]


def test_lg_tables(potentials):
    p = to_params(read_ffield(potentials / "ffield.reax.lg"))
    assert int(p["vdw_type"]) == 3
    assert p["pair_lgre"][0, 0] == (2.0 * p["gp"][35]) * math.sqrt(1.9255 * 1.9255)
    assert p["pair_lgcij"][0, 1] == 0.0  # off-diagonal 0.0 applies: lg overrides when >= 0
    assert p["pair_lgcij"][0, 0] == math.sqrt(0.0001 * 0.0001)
    assert p["pair_lgcij"][1, 3] == 294.95


def test_bond_tables_are_symmetric(potentials):
    ff = read_ffield(potentials / "ffield.reax.cho")
    p = to_params(ff)
    co = ff.bonds[[r.types for r in ff.bonds].index((1, 3))]
    assert p["De_s"][0, 2] == p["De_s"][2, 0] == co.values[0]
    assert p["p_bo2"][0, 2] == co.values[13] and p["ovc"][0, 2] == co.values[14]
    assert p["bond_mask"].sum() == 9  # 6 entries: 3 diagonal + 3 off-diagonal pairs


def test_angle_tables_keep_repeated_entries_as_slots(potentials):
    ff = read_ffield(potentials / "ffield.reax.rdx")
    p = to_params(ff)
    assert p["theta_00"].shape == (4, 4, 4, 2)
    assert p["p_val2"][0, 1, 3].tolist() == [6.3, 6.0] == p["p_val2"][3, 1, 0].tolist()
    assert p["angle_mask"][0, 1, 3].tolist() == [True, True]
    assert p["angle_mask"][0, 0, 0].tolist() == [True, False]  # i == k fills one slot


def test_angle_mask_uses_the_lammps_p_val1_threshold(potentials):
    p = to_params(read_ffield(potentials / "ffield.reax.cho"))
    assert p["theta_00"].shape[-1] == 1
    assert p["p_val2"][0, 1, 1, 0] == 6.0 and not p["angle_mask"][0, 1, 1, 0]  # p_val1 = 0
    assert p["angle_mask"][2, 1, 2, 0] and p["p_val1"][2, 1, 2, 0] == 0.0148
    assert p["p_val1"][2, 0, 1, 0] == p["p_val1"][1, 0, 2, 0] == 14.2057


def test_torsion_wildcards_never_override_specific_entries(potentials, tmp_path):
    ff = read_ffield(potentials / "ffield.reax.cho")
    vals = {name: [v, 1.0, 0.5, -4.0, -2.0, 0.0, 0.0] for name, v in
            {"A": 1.0, "W1": 2.0, "W2": 3.0, "S": 4.0, "W3": 5.0}.items()}  # fmt: skip
    ff.torsions = [
        Record((1, 1, 1, 1), vals["A"]),
        Record((0, 1, 1, 0), vals["W1"]),
        Record((0, 1, 2, 0), vals["W2"]),
        Record((2, 1, 2, 3), vals["S"]),
        Record((0, 2, 1, 0), vals["W3"]),
    ]
    write_ffield(ff, tmp_path / "ffield")
    p = to_params(read_ffield(tmp_path / "ffield"))
    v1 = p["V1"]
    assert v1[0, 0, 0, 0] == 1.0  # specific entry before a wildcard survives it
    assert v1[1, 0, 0, 2] == v1[2, 0, 0, 1] == 2.0
    assert v1[1, 0, 1, 2] == v1[2, 1, 0, 1] == 4.0  # specific entry after wildcards wins
    assert v1[0, 0, 1, 0] == v1[0, 1, 0, 2] == 5.0  # the later wildcard, in both orientations
    assert p["torsion_mask"][:, 0, 1, :].all() and not p["torsion_mask"][:, 2, 2, :].any()
    assert p["p_tor1"][1, 0, 0, 2] == -4.0


def test_hbond_tables(potentials):
    p = to_params(read_ffield(potentials / "ffield.reax.cho"))
    assert p["r0_hb"][2, 1, 2] == 1.9682 and p["p_hb3"][2, 1, 2] == 3.0
    assert p["hbond_mask"].sum() == 1 and p["hbond_mask"][2, 1, 2]
    assert p["r0_hb"][0, 1, 2] == -1.0


def test_vdw_type_without_shielding_or_inner_wall_is_rejected(potentials):
    ff = read_ffield(potentials / "ffield.reax.cho")
    ff.atoms[1].values[9] = 0.4  # H gamma_w; no inner wall either
    with pytest.raises(FFieldError, match="line 50: atom 'H' sets neither van der Waals shielding"):
        to_params(ff)


# ----------------------------------------------------------------------------- quirks, errors


def test_file_without_hbond_section_is_accepted(potentials, tmp_path):
    ff = read_ffield(_truncated(potentials / "ffield.reax.cho", tmp_path, 2))
    assert ff.missing == ("hbonds",) and ff.hbonds == []
    p = to_params(ff)
    assert not p["hbond_mask"].any() and (p["r0_hb"] == -1.0).all()
    write_ffield(ff, tmp_path / "out")
    assert read_ffield(tmp_path / "out").missing == ()


def test_file_ending_inside_the_torsions_keeps_what_was_read(potentials, tmp_path):
    ff = read_ffield(_truncated(potentials / "ffield.reax.cho", tmp_path, 3))
    assert ff.missing == ("torsions", "hbonds") and len(ff.torsions) == 25


def test_file_ending_inside_the_bonds_is_an_error(potentials, tmp_path):
    lines = (potentials / "ffield.reax.cho").read_text().splitlines(keepends=True)
    (tmp_path / "ffield").write_text("".join(lines[:62]))
    with pytest.raises(FFieldError, match="line 62: file ends inside the bonds section"):
        read_ffield(tmp_path / "ffield")


ATOM_C2 = "expected 8 numbers for atom 'C' (line 2 of 4)"
MALFORMED = [  # (line number, text on that line, replacement, message after "<path> line N: ")
    (47, "4.0000", "abc", f"{ATOM_C2}, got 'abc' as value 3"),
    (47, "4.0000  33.2433", "4.0000-33.2433",
     f"{ATOM_C2}, found 7 columns (numbers written without a space between them?)"),
    (46, " C ", " ",
     "expected a symbol and 8 numbers for atom type 1 (line 1 of 4), found 8 columns"),
    (3, "50.0000 !", "50.0000!",
     "expected a number for general parameter 1, got '50.0000!p(boc1)'"),
    (58, " 6 ", " six ", "expected the number of bonds, got 'six'"),
    (60, "  1  1 ", "  0  1 ", "type index 0 of bond 0-1 must be >= 1"),
    (60, "  1  1 ", "  1.0  1 ",
     "expected an integer type index for bond 1 (line 1 of 2), got '1.0'"),
    (73, "   1.1203", "   1.1203x",
     "expected 6 numbers for off-diagonal term 1, got '1.1203x' as value 4"),
    (96, "  -4.7057  -2.2047   0.0000   0.0000", "",
     "expected 4 type indices and 5 numbers for torsion 1, found 7 columns"),
    (123, "  3  2  3 ", "  3  2  0 ", "type index 0 of hydrogen bond 3-2-0 must be >= 1"),
]  # fmt: skip


@pytest.mark.parametrize(("lineno", "old", "new", "message"), MALFORMED)
def test_malformed_files_name_file_line_and_field(potentials, tmp_path, lineno, old, new, message):
    path = _edited(potentials / "ffield.reax.cho", tmp_path, lineno, old, new)
    with pytest.raises(FFieldError) as info:
        read_ffield(path)
    assert isinstance(info.value, ValueError) and info.value.lineno == lineno
    assert str(info.value).startswith(f"{path} line {lineno}: {message}")


def test_header_must_not_be_the_parameter_count(potentials, tmp_path):
    lines = (potentials / "ffield.reax.cho").read_text().splitlines(keepends=True)
    (tmp_path / "ffield").write_text("".join(lines[1:]))
    with pytest.raises(FFieldError, match="line 1: the first line must be a header"):
        read_ffield(tmp_path / "ffield")


def test_blank_lines_between_data_lines_are_skipped(potentials, tmp_path):
    text = (potentials / "ffield.reax.cho").read_text().replace("\n  1  2 ", "\n\n  1  2 ")
    (tmp_path / "ffield").write_text(text)
    assert to_params(read_ffield(tmp_path / "ffield"))["De_s"][0, 1] == 170.2316


# ----------------------------------------------------------------------------- LAMMPS


def _check_same_result(r0, r1):
    """Same total and per-term energies (1e-10 relative) and forces from two LAMMPS runs."""
    assert math.isfinite(r0["energy"]) and r1["energy"] == pytest.approx(r0["energy"], rel=1e-10)
    for term, e0 in r0["energies"].items():
        assert r1["energies"][term] == pytest.approx(e0, rel=1e-10, abs=1e-10), term
    assert np.allclose(r1["forces"], r0["forces"], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("name", "elements"),
    [("ffield.reax.cho", "CHO"), ("ffield.reax.lg", "CHO"), ("ffield.reax.FC", "CHO"),
     ("ffield.reax.mattsson", "CHO"), ("ffield.reax.AuO", "HO")],
)  # fmt: skip
def test_lammps_reads_regenerated_files_identically(
    potentials, lammps_energy, cho_molecules, tmp_path, name, elements
):
    ff = read_ffield(potentials / name)
    write_ffield(ff, tmp_path / "ffield", keep_source=False)
    atoms = cho_molecules[[s in elements for s in cho_molecules.get_chemical_symbols()]]
    r0 = lammps_energy(potentials / name, atoms, lg=ff.lg)
    _check_same_result(r0, lammps_energy(tmp_path / "ffield", atoms, lg=ff.lg))


def test_lammps_reads_regenerated_jaxreaxff_ffield(
    jaxreaxff_data, lammps_energy, cho_molecules, tmp_path
):
    src = jaxreaxff_data / "silica" / "ffield_best"
    write_ffield(read_ffield(src), tmp_path / "ffield", keep_source=False)
    r0 = lammps_energy(src, cho_molecules)
    _check_same_result(r0, lammps_energy(tmp_path / "ffield", cho_molecules))


def test_lammps_sees_edited_values_at_full_precision(
    potentials, lammps_energy, cho_molecules, tmp_path
):
    src = potentials / "ffield.reax.cho"
    ff = read_ffield(src)
    rec = ff.bonds[1]  # C-H
    old = rec.tokens[0]
    rec.values[0] = float(old) * (1 + 3e-7)
    write_ffield(ff, tmp_path / "ours")
    reference = _edited(src, tmp_path, rec.lineno, old, repr(rec.values[0]), "reference")
    e0 = lammps_energy(src, cho_molecules)["energy"]
    e1 = lammps_energy(tmp_path / "ours", cho_molecules)["energy"]
    assert e1 == lammps_energy(reference, cho_molecules)["energy"] and e1 != e0


def test_lammps_agrees_on_files_without_hbond_section(
    potentials, lammps_energy, cho_molecules, tmp_path
):
    truncated = _truncated(potentials / "ffield.reax.cho", tmp_path, 2)
    write_ffield(read_ffield(truncated), tmp_path / "ours", keep_source=False)
    r0 = lammps_energy(truncated, cho_molecules, qeq=False)
    _check_same_result(r0, lammps_energy(tmp_path / "ours", cho_molecules, qeq=False))
