"""Tests for reaxgrad.forcefields.params_file: params-file numbering, table targets, updates."""

import warnings

import numpy as np
import pytest

from reaxgrad.forcefields.ffield import read_ffield, to_params, write_ffield
from reaxgrad.forcefields.params_file import (
    ParamLine,
    ParamsFileError,
    ParamsFileWarning,
    all_params,
    apply_params,
    map_params,
    param_values,
    read_params,
    scatter_params,
    scatter_plan,
)

# disulfide/params comments name the entries they refer to; the ffield says which types those are
DISULFIDE_ENTRIES = {
    (2, 1): "C", (2, 2): "H", (2, 4): "S",
    (3, 4): ("C", "S"), (3, 7): ("H", "S"), (3, 10): ("S", "S"),
    (4, 3): ("C", "S"), (4, 5): ("H", "S"),
    (5, 4): ("C", "C", "S"), (5, 10): ("C", "S", "C"), (5, 13): ("C", "S", "S"),
    (5, 20): ("H", "S", "H"), (5, 22): ("H", "S", "S"), (5, 29): ("S", "C", "S"),
    (6, 5): ("C", "S", "S", "C"), (6, 15): ("*", "S", "S", "*"),
}  # fmt: skip


def _names(ff, record):
    section, i, _ = record
    rec = ff.section(section)[i]
    if section == "atoms":
        return rec.symbol
    return tuple(ff.elements[t - 1] if t else "*" for t in rec.types)


@pytest.mark.filterwarnings("ignore::reaxgrad.forcefields.params_file.ParamsFileWarning")
def test_reads_the_three_jaxreaxff_params_files(jaxreaxff_data):
    counts = {
        name: len(read_params(jaxreaxff_data / name / "params"))
        for name in ("cobalt", "disulfide", "silica")
    }
    assert counts == {"cobalt": 12, "disulfide": 69, "silica": 67}  # '#' lines are skipped
    lines = read_params(jaxreaxff_data / "disulfide" / "params")
    assert lines[0] == ParamLine(2, 1, 10, 0.005, 1.5, 2.5, "C-Atom", 1)
    swapped = [p for p in lines if (p.section, p.entry, p.number) == (6, 5, 4)][0]
    assert (swapped.lower, swapped.upper) == (-10.0, 0.0)  # written as "0.0000 -10.0000"


def test_swapped_bounds_of_the_public_disulfide_file_warn_and_are_errors_when_strict(
    jaxreaxff_data,
):
    path = jaxreaxff_data / "disulfide" / "params"
    with pytest.warns(ParamsFileWarning) as record:
        read_params(path)
    messages = [str(w.message) for w in record]
    assert messages == [
        f"{path} line {n}: lower bound 0.0000 is above upper bound -10.0000 (parameter 6 {e} 4)"
        ": swapped, as JAX-ReaxFF does"
        for n, e in ((83, 5), (87, 15))
    ]  # the file's lines 83 and 87: '6  5  4  0.0050   0.0000 -10.0000' and '6 15 4 ...'
    with pytest.raises(ParamsFileError) as info:
        read_params(path, strict=True)
    assert info.value.lineno == 83 and "above upper bound" in str(info.value)
    for name in ("cobalt", "silica"):  # bounds in order: no warning, strict or not
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert read_params(jaxreaxff_data / name / "params", strict=True)


@pytest.mark.parametrize(
    ("text", "lineno", "word"),
    [
        ("2 1 10 nan 1.5 2.5\n", 1, "step"),
        ("# c\n2 1 10 0.1 -inf 2.5\n", 2, "lower bound"),
        ("2 1 10 0.1 1.5 2.5\n2 1 11 0.1 1.5 NaN ! comment\n", 2, "upper bound"),
        ("2 1 10 0.1 1.5 infinity\n", 1, "finite"),
    ],
)
def test_non_finite_step_or_bounds_are_errors(tmp_path, text, lineno, word):
    path = tmp_path / "params"
    path.write_text(text)
    with pytest.raises(ParamsFileError) as info:
        read_params(path)
    assert info.value.lineno == lineno and info.value.path == str(path)
    assert word in str(info.value)


def test_swapped_bounds_warn_with_file_line_and_bounds(tmp_path):
    path = tmp_path / "params"
    path.write_text("# bounds\n2 1 10 0.1 1.5 2.5\n3 1 1 0.1 9.5 -3.25 ! upper first\n")
    with pytest.warns(ParamsFileWarning, match=r"line 3: lower bound 9\.5 is above upper "
                      r"bound -3\.25 \(parameter 3 1 1\)"):
        lines = read_params(path)
    assert (lines[1].lower, lines[1].upper) == (-3.25, 9.5)
    with pytest.raises(ParamsFileError) as info:
        read_params(path, strict=True)
    assert info.value.lineno == 3 and "9.5" in str(info.value) and "-3.25" in str(info.value)


@pytest.mark.filterwarnings("ignore::reaxgrad.forcefields.params_file.ParamsFileWarning")
def test_entries_and_numbers_follow_the_jaxreaxff_convention(jaxreaxff_data):
    ff = read_ffield(jaxreaxff_data / "disulfide" / "ffield_lit")
    params = map_params(ff, jaxreaxff_data / "disulfide" / "params")
    seen = {}
    for p in params:
        seen[p.key[:2]] = _names(ff, p.record)
    assert {k: seen[k] for k in DISULFIDE_ENTRIES} == DISULFIDE_ENTRIES
    by_key = {p.key: p for p in params}
    assert by_key[(2, 1, 29)].record == ("atoms", 0, 28)  # p_val5: line 4, value 5
    assert by_key[(3, 4, 9)].targets[0].leaf == "p_be2"  # bond line 2, value 1


@pytest.mark.filterwarnings("ignore::reaxgrad.forcefields.params_file.ParamsFileWarning")
@pytest.mark.parametrize("name", ["cobalt", "disulfide", "silica"])
def test_fitted_values_lie_inside_the_params_bounds(jaxreaxff_data, name):
    for ffield in ("ffield_lit", "ffield_best"):
        ff = read_ffield(jaxreaxff_data / name / ffield)
        params = map_params(ff, jaxreaxff_data / name / "params")
        values = param_values(ff, params)
        lower = np.array([p.lower for p in params])
        upper = np.array([p.upper for p in params])
        assert ((lower <= values) & (values <= upper)).all()


def test_targets_cover_every_symmetric_table_position(potentials):
    ff = read_ffield(potentials / "ffield.reax.cho")
    params = {p.key: p for p in all_params(ff)}
    assert params[(1, 13, 1)].targets[0].leaf == "gp" and params[(1, 13, 1)].targets[0].index == (
        12,
    )
    co = [t.index for t in params[(3, 4, 1)].targets]  # bond 4 is 1-3 (C-O)
    assert ff.bonds[3].types == (1, 3) and sorted(co) == [(0, 2), (2, 0)]
    assert [t.index for t in params[(3, 1, 1)].targets] == [(0, 0)]
    eta = params[(2, 2, 15)].targets
    assert [(t.leaf, t.index, t.scale) for t in eta] == [("eta", (1,), 2.0)]
    angle = sorted(t.index for t in params[(5, 2, 1)].targets)  # 1 1 2
    assert angle == [(0, 0, 1, 0), (1, 0, 0, 0)]
    wildcard = params[(6, 25, 2)].targets  # 0 1 1 0: every x-C-C-y is specific
    assert ff.torsions[24].types == (0, 1, 1, 0) and wildcard == ()
    assert params[(6, 26, 2)].targets == ()  # 0 3 3 0: every x-O-O-y is specific too
    wildcard = params[(6, 22, 2)].targets  # 0 1 2 0: no specific C-H centre entry
    assert ff.torsions[21].types == (0, 1, 2, 0)
    assert len(wildcard) == 18 and {t.index[1:3] for t in wildcard} == {(0, 1), (1, 0)}
    assert params[(4, 1, 5)].targets == ()  # off-diagonal r_pi = -1: LAMMPS ignores it
    assert [t.index for t in params[(4, 1, 4)].targets] == [(0, 1), (1, 0)]
    assert params[(2, 1, 13)].targets == () and params[(3, 1, 12)].targets == ()  # unread columns


def test_light_atoms_route_valency_boc_to_valency_val(potentials):
    params = {p.key: p for p in all_params(read_ffield(potentials / "ffield.reax.cho"))}
    assert params[(2, 1, 28)].targets == ()
    assert [t.leaf for t in params[(2, 1, 11)].targets] == ["valency_boc", "valency_val"]


def test_overridden_entries_have_no_targets(potentials):
    ff = read_ffield(potentials / "ffield.reax.rdx")
    params = {p.key: p for p in all_params(ff)}
    dup = [e + 1 for e, r in enumerate(ff.angles) if r.types == (1, 2, 4)]
    slots = [{t.index[3] for t in params[(5, e, 2)].targets} for e in dup]
    assert slots == [{0}, {1}]  # repeated angle entries feed one slot each
    outside = [e + 1 for e, r in enumerate(ff.angles) if max(r.types) > ff.n_types]
    assert outside and all(params[(5, e, 1)].targets == () for e in outside)


@pytest.mark.parametrize(
    "name", ["ffield.reax.cho", "ffield.reax.lg", "ffield.reax.FC", "ffield.reax.rdx"]
)
def test_scatter_matches_rebuilding_from_the_edited_ffield(potentials, name):
    ff = read_ffield(potentials / name)
    params = all_params(ff)
    x = param_values(ff, params) * (1 + 0.01 * np.random.default_rng(2).random(len(params)))
    rebuilt = to_params(apply_params(ff, params, x))
    scattered = scatter_params(to_params(ff), params, x)
    assert rebuilt.keys() == scattered.keys()
    for key in rebuilt:
        assert np.array_equal(rebuilt[key], scattered[key], equal_nan=True), key


def test_scatter_plan_groups_targets_by_leaf(potentials):
    ff = read_ffield(potentials / "ffield.reax.cho")
    params = map_params(
        ff, [ParamLine(3, 4, 1, 0.1, 100.0, 200.0), ParamLine(2, 3, 15, 0.1, 5.0, 9.0)]
    )
    plan = scatter_plan(params)
    index, which, scale = plan["De_s"]
    assert [a.tolist() for a in index] == [[0, 2], [2, 0]] and which.tolist() == [0, 0]
    assert plan["eta"][1].tolist() == [1] and plan["eta"][2].tolist() == [2.0]


def test_apply_params_writes_a_loadable_ffield(potentials, tmp_path):
    ff = read_ffield(potentials / "ffield.reax.cho")
    params = map_params(
        ff, [ParamLine(3, 4, 1, 0.1, 100.0, 200.0), ParamLine(6, 22, 2, 0.1, 0.0, 50.0)]
    )
    new = apply_params(ff, params, [150.123456789, 30.5])
    assert ff.bonds[3].values[0] == 160.4802  # the original is untouched
    write_ffield(new, tmp_path / "ffield")
    back = read_ffield(tmp_path / "ffield")
    assert param_values(back, params).tolist() == [150.123456789, 30.5]
    assert to_params(back)["De_s"][2, 0] == 150.123456789


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2 1 10 0.1 1.5\n", "line 1: expected 'section entry number step lower upper'"),
        ("# comment\n2 x 10 0.1 1.5 2.5\n", "line 2: expected an integer entry, got 'x'"),
        ("2 1 10 0.1 low 2.5\n", "line 1: expected a number for the lower bound, got 'low'"),
        ("2 9 10 0.1 1.5 2.5\n", "line 1: atoms entry 9 does not exist (the ffield has 3)"),
        ("3 1 17 0.1 1.5 2.5\n", "line 1: bonds parameter number 17 is outside 1..16"),
        ("8 1 1 0.1 1.5 2.5\n", "line 1: section 8 does not exist"),
        (
            "2 1 10 0.1 1 2\n\n2 1 10 0.2 1 2\n",
            "line 3: parameter (2, 1, 10) is already listed on line 1",
        ),
    ],
)
def test_malformed_params_files_name_file_and_line(potentials, tmp_path, text, message):
    path = tmp_path / "params"
    path.write_text(text)
    with pytest.raises(ParamsFileError) as info:
        map_params(read_ffield(potentials / "ffield.reax.cho"), path)
    assert isinstance(info.value, ValueError) and str(info.value).startswith(f"{path} {message}")


@pytest.mark.parametrize("name", ["ffield.reax.cho", "ffield.reax.rdx"])
def test_lammps_ignores_every_value_without_targets(
    potentials, lammps_energy, cho_molecules, tmp_path, name
):
    """Values mapped to nothing (unread columns, C/H/O valency_val, overridden wildcards,
    off-diagonal values <= 0, entries for absent types) must not change LAMMPS's energy."""
    ff = read_ffield(potentials / name)
    dead = [p for p in all_params(ff) if not p.targets]
    kinds = {p.record[0] for p in dead}
    assert {"atoms", "bonds", "offdiagonal", "torsions"} <= kinds
    x = param_values(ff, dead)
    x = np.where(x > 0, 1.37 * x + 0.11, x - 0.7)  # values <= 0 stay <= 0
    write_ffield(apply_params(ff, dead, x), tmp_path / "ffield")
    e0 = lammps_energy(potentials / name, cho_molecules)["energies"]
    assert lammps_energy(tmp_path / "ffield", cho_molecules)["energies"] == e0  # every term
    live = [p for p in all_params(ff) if p.key == (3, 2, 1)]  # C-H De_s does matter
    write_ffield(apply_params(ff, live, [param_values(ff, live)[0] + 1.0]), tmp_path / "live")
    assert lammps_energy(tmp_path / "live", cho_molecules)["energies"]["ebond"] != e0["ebond"]
