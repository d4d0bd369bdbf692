"""Tests for reaxgrad.datasets.trainset: the trainset.in sections, JAX-ReaxFF's reading of
ENERGY terms, FORCES forms, and named errors (file, line, field) for malformed files."""

import math
import warnings

import pytest

from reaxgrad.datasets import read_geo
from reaxgrad.datasets.trainset import (
    CATEGORIES,
    TrainsetError,
    TrainsetWarning,
    read_trainset,
)

SIZES = {"h2o": 3, "oh": 2, "ring-1.5": 4}

# items per category, counted with awk on the public files (data lines per section, by their
# number of fields: GEOMETRY 5/6/7/3 -> distance/angle/torsion/RMSG, FORCES 6 -> per atom)
PUBLIC_COUNTS = {
    "cobalt": {"ENERGY": 144},
    "silica": {"CHARGE": 5, "DISTANCE": 15, "ANGLE": 8, "RMSG": 3, "CELL": 19, "ENERGY": 265},
    "disulfide": {"DISTANCE": 94, "ANGLE": 85, "TORSION": 76, "FORCE": 1467, "ENERGY": 219},
    "disulfide/valSet": {"DISTANCE": 281, "ANGLE": 257, "TORSION": 233, "ENERGY": 199},
}
# silica/trainset.in lines 75-77 and 81-83: CELL PARAMETERS of 'trydi' and 'fauja', two
# structures silica/geo does not have (JAX-ReaxFF never reads CELL PARAMETERS)
SILICA_ABSENT = {75: "trydi", 76: "trydi", 77: "trydi", 81: "fauja", 82: "fauja", 83: "fauja"}


def _write(tmp_path, text, name="trainset.in"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _counts(trainset):
    counts = {}
    for item in trainset.items:
        counts[item.category] = counts.get(item.category, 0) + 1
    return counts


def _sizes(path):
    return {atoms.info["name"]: len(atoms) for atoms in read_geo(path)}


@pytest.mark.parametrize("name", ["cobalt", "disulfide", "disulfide/valSet"])
def test_public_trainsets_read_against_their_geo_files(jaxreaxff_data, name):
    base = jaxreaxff_data / name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainset = read_trainset(base / "trainset.in", _sizes(base / "geo"))
    assert _counts(trainset) == PUBLIC_COUNTS[name]
    assert read_trainset(base / "trainset.in").items == trainset.items
    _check_items_against_the_text(trainset, base / "trainset.in")


def test_public_silica_names_two_structures_its_geo_file_lacks(jaxreaxff_data):
    base = jaxreaxff_data / "silica"
    sizes = _sizes(base / "geo")
    trainset = read_trainset(base / "trainset.in")  # no geo: every line is read
    assert _counts(trainset) == PUBLIC_COUNTS["silica"]
    _check_items_against_the_text(trainset, base / "trainset.in")
    with pytest.raises(TrainsetError) as info:
        read_trainset(base / "trainset.in", sizes)
    assert info.value.lineno == 75 and "'trydi' is not in the geo file" in str(info.value)
    with pytest.warns(TrainsetWarning) as record:
        kept = read_trainset(base / "trainset.in", sizes, strict=False)
    assert [f"line {n}:" in str(w.message) and repr(s) in str(w.message)
            for w, (n, s) in zip(record, SILICA_ABSENT.items())] == [True] * 6
    assert len(record) == 6
    assert [i for i in trainset.items if i.line not in SILICA_ABSENT] == kept.items
    assert _counts(kept) == {**PUBLIC_COUNTS["silica"], "CELL": 13}


def _check_items_against_the_text(trainset, path):
    lines = path.read_text().splitlines()
    assert [i.line for i in trainset.items] == sorted(i.line for i in trainset.items)
    for item in trainset.items:
        assert item.category in CATEGORIES and item.path == str(path)
        assert item.text == lines[item.line - 1].strip()
        assert item.weight > 0 and all(math.isfinite(t) for t in item.targets)
        words = item.text.split()
        if item.category == "FORCE":  # per-atom lines: name weight atom fx fy fz
            assert item.atoms == (int(words[2]) - 1,)
            assert item.targets == tuple(float(w) for w in words[3:6])
        elif item.category in ("DISTANCE", "ANGLE", "TORSION", "CHARGE"):
            n = len(item.atoms)
            assert item.atoms == tuple(int(w) - 1 for w in words[2:2 + n])
            assert item.targets == (float(words[2 + n]),)


def test_public_spot_checks(jaxreaxff_data):
    def at(trainset, line):
        (item,) = [i for i in trainset.items if i.line == line]
        return item

    cobalt = read_trainset(jaxreaxff_data / "cobalt" / "trainset.in")
    item = at(cobalt, 3)  # 2.00  + Co_2_atom/2 - Co_1_atom/1   -29.79
    assert (item.category, item.weight, item.targets) == ("ENERGY", 2.0, (-29.79,))
    assert item.structures == ("Co_2_atom", "Co_1_atom") and item.factors == (0.5, -1.0)
    item = at(cobalt, 28)  # 0.10  + EOS_hcp_6/2 - EOS_hcp_6/2    -0.01: the terms cancel
    assert item.structures == ("EOS_hcp_6", "EOS_hcp_6") and item.factors == (0.5, -0.5)

    silica = read_trainset(jaxreaxff_data / "silica" / "trainset.in")
    item = at(silica, 399)  # 5.0 + a_Si_opt /8  + o2_min/1  - quartz/3   217.66
    assert item.structures == ("a_Si_opt", "o2_min", "quartz")
    assert item.factors == (1 / 8, 1.0, -1 / 3) and item.targets == (217.66,)
    item = at(silica, 311)  # 0.2 + a_Si_opt /8  -   si_av/63   -1.30 (spaced and glued)
    assert item.factors == (1 / 8, -1 / 63) and item.weight == 0.2
    assert at(silica, 390).factors == (1 / 8,) and at(silica, 390).targets == (-107.6,)
    item = at(silica, 4)  # geo8 0.1 1 -0.597
    assert (item.category, item.structures, item.atoms, item.targets) == (
        "CHARGE", ("geo8",), (0,), (-0.597,))
    item = at(silica, 15)  # geo1  2.00   1   2   3     114.62
    assert (item.category, item.atoms, item.targets) == ("ANGLE", (0, 1, 2), (114.62,))
    item = at(silica, 60)  # si29_ideal     40.00 0.01
    assert (item.category, item.weight, item.targets, item.atoms) == ("RMSG", 40.0, (0.01,), ())
    item = at(silica, 68)  # quartz 0.05    c  5.4052
    assert (item.category, item.cell_parameter, item.targets) == ("CELL", "c", (5.4052,))

    disulfide = read_trainset(jaxreaxff_data / "disulfide" / "trainset.in")
    item = at(disulfide, 7)  # hsshGeo  3.00   3   1   2   4   90.644
    assert (item.category, item.atoms, item.targets) == ("TORSION", (2, 0, 1, 3), (90.644,))
    item = at(disulfide, 259)
    assert item.text.startswith("dmds-SS2.042  11.86  1  -3.3665432031454")
    assert (item.category, item.structures, item.atoms, item.weight) == (
        "FORCE", ("dmds-SS2.042",), (0,), 11.86)
    assert item.targets == (-3.3665432031454, 1.1229716144342001, -0.8869934187927999)
    assert at(disulfide, 1725).atoms == (2,) and at(disulfide, 1725).targets[1] == 0.0
    item = at(disulfide, 1728)  # 1.00  +   hsh-SH1.15/1   -   hshBase/1   15.98476
    assert item.structures == ("hsh-SH1.15", "hshBase") and item.factors == (1.0, -1.0)


FULL = """\
# a training set with every section ! and comments
charge
h2o 0.1 1 -0.8   # trailing comment
h2o  0.1  2  0.4 ! another
END CHARGE
HeatFo
oh 2.0 -10.5
ENDHEATFO
GEOMETRY
h2o 0.01 1 2 0.96
h2o 1.0 2 1 3 104.5
ring-1.5 3.0 1 2 3 4 -179.5
h2o 40.0 0.01
ENDGEOMETRY
Cell Parameters
h2o 0.05 a 4.9
h2o 0.05 GAMMA 120
End  Cell   Parameters
ENERGY
1.0 + h2o/1 - oh/2 -5.5
2.0 +   h2o /1 - ring-1.5 /2.5 + oh/0.5   1e2
ENDENERGY
FORCES
h2o 1.5 1 0.1 -0.2 0.3
h2o 1.5 3 1.0 2.0 3.0
h2o 1.5 2 0 0 0
oh 2.0 1.0 2.0 3.0 -1.0 -2.0 -3.0
oh 3.0 0.5
ENDFORCES
"""


def test_every_section_and_form(tmp_path):
    path = _write(tmp_path, FULL)
    trainset = read_trainset(path, SIZES)
    assert trainset.path == str(path)
    got = [(i.category, i.line, i.structures, i.atoms, i.targets) for i in trainset.items]
    assert got == [
        ("CHARGE", 3, ("h2o",), (0,), (-0.8,)),
        ("CHARGE", 4, ("h2o",), (1,), (0.4,)),
        ("HEATFO", 7, ("oh",), (), (-10.5,)),
        ("DISTANCE", 10, ("h2o",), (0, 1), (0.96,)),
        ("ANGLE", 11, ("h2o",), (1, 0, 2), (104.5,)),
        ("TORSION", 12, ("ring-1.5",), (0, 1, 2, 3), (-179.5,)),
        ("RMSG", 13, ("h2o",), (), (0.01,)),
        ("CELL", 16, ("h2o",), (), (4.9,)),
        ("CELL", 17, ("h2o",), (), (120.0,)),
        ("ENERGY", 20, ("h2o", "oh"), (), (-5.5,)),
        ("ENERGY", 21, ("h2o", "ring-1.5", "oh"), (), (100.0,)),
        ("FORCE", 24, ("h2o",), (0,), (0.1, -0.2, 0.3)),
        ("FORCE", 25, ("h2o",), (2,), (1.0, 2.0, 3.0)),
        ("FORCE", 26, ("h2o",), (1,), (0.0, 0.0, 0.0)),
        ("FORCE", 27, ("oh",), (0,), (1.0, 2.0, 3.0)),
        ("FORCE", 27, ("oh",), (1,), (-1.0, -2.0, -3.0)),
        ("RMSG", 28, ("oh",), (), (0.5,)),
    ]
    items = trainset.items
    assert items[0].text == "h2o 0.1 1 -0.8   # trailing comment" and items[0].weight == 0.1
    assert [items[7].cell_parameter, items[8].cell_parameter] == ["a", "gamma"]
    assert items[9].factors == (1.0, -0.5) and items[9].weight == 1.0
    assert items[10].factors == (1.0, -1 / 2.5, 2.0)
    assert all(i.factors == (1.0,) for i in items if i.category != "ENERGY")
    assert trainset.structure_names() == ["h2o", "oh", "ring-1.5"]
    assert read_trainset(path).items == items  # the same without the geo sizes


_SECTION = {
    "CHARGE": "CHARGE\n{}ENDCHARGE\n",
    "HEATFO": "HEATFO\n{}ENDHEATFO\n",
    "GEOMETRY": "GEOMETRY\n{}ENDGEOMETRY\n",
    "CELL": "CELL PARAMETERS\n{}ENDCELL PARAMETERS\n",
    "ENERGY": "ENERGY\n{}ENDENERGY\n",
    "FORCES": "FORCES\n{}ENDFORCES\n",
}


@pytest.mark.parametrize(
    ("section", "line", "word"),
    [
        ("CHARGE", "h2o 1.0 1\n", "3 fields"),
        ("CHARGE", "h2o 1.0 1 0.3 0.1\n", "5 fields"),
        ("CHARGE", "h2o 1.0 1 abc\n", "charge 'abc' is not a number"),
        ("CHARGE", "h2o one 1 0.3\n", "weight 'one' is not a number"),
        ("CHARGE", "h2o 0 1 0.3\n", "weight '0' must be positive"),
        ("CHARGE", "h2o -1.0 1 0.3\n", "weight '-1.0' must be positive"),
        ("CHARGE", "h2o nan 1 0.3\n", "weight is 'nan'"),
        ("CHARGE", "h2o inf 1 0.3\n", "weight is 'inf'"),
        ("CHARGE", "h2o 1.0 1 nan\n", "charge is 'nan'"),
        ("CHARGE", "h2o 1.0 0 0.3\n", "atom 0 of structure 'h2o' is outside 1..3"),
        ("CHARGE", "h2o 1.0 4 0.3\n", "atom 4 of structure 'h2o' is outside 1..3"),
        ("CHARGE", "h2o 1.0 1.0 0.3\n", "atom '1.0' is not an integer"),
        ("CHARGE", "water 1.0 1 0.3\n", "structure 'water' is not in the geo file"),
        ("HEATFO", "oh 1.0 -inf\n", "heat of formation is '-inf'"),
        ("HEATFO", "oh 1.0\n", "2 fields"),
        ("GEOMETRY", "h2o 1.0 1 2 3 4 5 6\n", "8 fields"),
        ("GEOMETRY", "h2o 1.0 1 2\n", "4 fields"),
        ("GEOMETRY", "h2o 1.0 1 2 inf\n", "distance target is 'inf'"),
        ("GEOMETRY", "h2o 1.0 1 1 0.9\n", "repeats an atom"),
        ("GEOMETRY", "h2o 1.0 1 2 4 104.5\n", "a3: atom 4 of structure 'h2o' is outside 1..3"),
        ("GEOMETRY", "h2o 1.0 1 x 104.5\n", "a2 'x' is not an integer"),
        ("GEOMETRY", "h2o 0.0 0.01\n", "weight '0.0' must be positive"),
        ("CELL", "h2o 1.0 d 5.0\n", "cell parameter 'd' is not one of a b c"),
        ("CELL", "h2o 1.0 a\n", "3 fields"),
        ("CELL", "h2o 1.0 a NaN\n", "cell a is 'NaN'"),
        ("ENERGY", "1.0 + h2o/0 -1.0\n", "divisor '0' of 'h2o' must be positive"),
        ("ENERGY", "1.0 + h2o/1 - oh/0.0 -1.0\n", "term 2: divisor '0.0'"),
        ("ENERGY", "1.0 + h2o/nan -1.0\n", "divisor of 'h2o' is 'nan'"),
        ("ENERGY", "1.0 +h2o/1 -1.0\n", "expected '+' or '-' as a separate word, got '+h2o'"),
        ("ENERGY", "1.0 + h2o - oh/1 -3\n", "term 1: expected '/n' after 'h2o'"),
        ("ENERGY", "1.0 + h2o/1 - oh/1\n", "no target energy"),
        ("ENERGY", "1.0 + h2o/1 - /1 2.0\n", "term 2: expected a structure name after '-'"),
        ("ENERGY", "1.0 + h2o/1 - oh/x 2.0\n", "divisor of 'oh' 'x' is not a number"),
        ("ENERGY", "1.0 + h2o/1 inf\n", "target energy is 'inf'"),
        ("ENERGY", "0 + h2o/1 1.0\n", "weight '0' must be positive"),
        ("ENERGY", "1.0 -2.0\n", "2 fields"),
        ("ENERGY", "1.0 + water/1 -2.0\n", "structure 'water' is not in the geo file"),
        ("FORCES", "h2o 1.0 1 0 0\n", "1 force vectors for structure 'h2o', which has 3"),
        ("FORCES", "h2o 1.0 1 0 0 0 0\n", "7 fields"),
        ("FORCES", "h2o 1.0 0 0 0 1 1 1\n", "2 force vectors for structure 'h2o', which has 3"),
        ("FORCES", "h2o 1.0 4 0 0 0\n", "atom 4 of structure 'h2o' is outside 1..3"),
        ("FORCES", "h2o 1.0 1 0 nan 0\n", "fy of atom 1 is 'nan'"),
        ("FORCES", "h2o 1.0 0 0 0 1 1 1 2 2 inf\n", "fz of atom 3 is 'inf'"),
        ("FORCES", "oh -2 0.5\n", "weight '-2' must be positive"),
        ("FORCES", "oh 2 x\n", "RMSG target 'x' is not a number"),
    ],
)  # fmt: skip
def test_malformed_lines_name_file_line_and_field(tmp_path, section, line, word):
    path = _write(tmp_path, "# header\n" + _SECTION[section].format(line))
    with pytest.raises(TrainsetError) as info:
        read_trainset(path, SIZES)
    err = info.value
    assert isinstance(err, ValueError) and err.path == str(path) and err.lineno == 3
    assert str(err).startswith(f"{path} line 3: ") and word in str(err), str(err)


@pytest.mark.parametrize(
    ("text", "lineno", "word"),
    [
        ("h2o 1.0 1 0.3\n", 1, "outside any section"),
        ("ENERGY\nENDENERGY\n1.0 + h2o/1 -2\n", 3, "outside any section"),
        ("STRESS\nh2o 1 1\nENDSTRESS\n", 1, "unknown section keyword 'STRESS'"),
        ("CHARGE\nh2o 1 1 0.3\nENDCHARGES\n", 3, "unknown section keyword"),
        ("CHARGE\nh2o 1.0 1 0.3\n", 1, "never closed"),
        ("CHARGE\nh2o 1.0 1 0.3\nENERGY\n1 + h2o/1 2\nENDENERGY\n", 3, "missing ENDCHARGE"),
        ("CHARGE\nENDENERGY\n", 2, "closes ENERGY but the open section is CHARGE"),
        ("ENDCHARGE\n", 1, "no section is open"),
        ("FORCES\nh2o 1 1 0 0 0\nh2o 1 2 0 0 0\nENDFORCES\n", 2, "missing atom(s) 3"),
        ("FORCES\nh2o 1 1 0 0 0\nh2o 1 3 0 0 0\noh 1 1 0 0 0\noh 1 2 0 0 0\nENDFORCES\n", 2,
         "give 2 of its 3 atoms; missing atom(s) 2"),
        ("FORCES\nh2o 1 1 0 0 0\nh2o 1 1 0 0 0\nh2o 1 2 0 0 0\n", 3,
         "atom 1 of 'h2o' is already given on line 2"),
        ("FORCES\noh 1 0 0 0 1 1 1\noh 1 2 0 0 0\n", 3,
         "atom 2 of 'oh' is already given on line 2"),
        ("FORCES\noh 1 1 0 0 0\noh 1 2 0 0 0\nh2o 1 0 0 0 1 1 1 2 2 2\noh 1 1 0 0 0\n", 5,
         "already given on line 2"),
    ],
)  # fmt: skip
def test_structure_of_the_file_errors(tmp_path, text, lineno, word):
    path = _write(tmp_path, text)
    with pytest.raises(TrainsetError) as info:
        read_trainset(path, SIZES)
    assert info.value.lineno == lineno and word in str(info.value), str(info.value)


def test_without_geo_sizes_gaps_in_a_forces_block_are_still_errors(tmp_path):
    path = _write(tmp_path, "FORCES\nbig 1 1 0 0 0\nbig 1 2 0 0 0\nbig 1 4 0 0 0\nENDFORCES\n")
    with pytest.raises(TrainsetError) as info:
        read_trainset(path)
    assert info.value.lineno == 2 and "missing atom(s) 3" in str(info.value)
    ok = _write(tmp_path, "FORCES\nbig 1 2 0 0 0\nbig 1 1 0 0 0\nENDFORCES\n", "ok.in")
    assert [i.atoms for i in read_trainset(ok).items] == [(1,), (0,)]
    with pytest.raises(TrainsetError, match="missing atom"):
        read_trainset(ok, {"big": 3})


def test_non_strict_drops_absent_structures_with_a_warning_only(tmp_path):
    text = "ENERGY\n1.0 + h2o/1 - gone/1 2.0\n1.0 + h2o/1 - oh/1 3.0\nENDENERGY\n"
    path = _write(tmp_path, text)
    with pytest.warns(TrainsetWarning, match="line 2: ENERGY: structure 'gone'"):
        trainset = read_trainset(path, SIZES, strict=False)
    assert [i.line for i in trainset.items] == [3]
    bad = _write(tmp_path, "CELL PARAMETERS\ngone 1.0 q 2.0\nENDCELL PARAMETERS\n", "bad.in")
    with pytest.raises(TrainsetError) as info:  # other errors stay errors
        read_trainset(bad, SIZES, strict=False)
    assert info.value.lineno == 2 and "cell parameter 'q'" in str(info.value)
