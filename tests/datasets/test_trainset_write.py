"""Tests for reaxgrad.datasets.trainset_write: every category written and read back equal."""
import dataclasses

import pytest

from reaxgrad.datasets.trainset import TrainItem, read_trainset
from reaxgrad.datasets.trainset_write import trainset_text, write_trainset

SIZES = {"bulk": 4, "mol-1.5": 3, "atom": 1}
ITEMS = [
    TrainItem("FORCE", 11.86, (0.1, -2.5e-7, 3.0), ("mol-1.5",), atoms=(0,)),
    TrainItem("FORCE", 11.86, (1.0 / 3.0, 0.0, -0.0), ("mol-1.5",), atoms=(1,)),
    TrainItem("FORCE", 5.0, (1e5, 2.0, -3.0), ("mol-1.5",), atoms=(2,)),
    TrainItem("ENERGY", 2.0, (-29.79,), ("bulk", "atom"), (0.25, -1.0)),
    TrainItem("ENERGY", 1.0, (46.121096024138986,), ("mol-1.5", "bulk", "atom"),
              (1.0, -1.0 / 3.0, 1.0)),
    TrainItem("CHARGE", 0.1, (-0.597,), ("bulk",), atoms=(3,)),
    TrainItem("HEATFO", 2.0, (-12.5,), ("atom",)),
    TrainItem("DISTANCE", 0.02, (1.66,), ("mol-1.5",), atoms=(0, 1)),
    TrainItem("ANGLE", 2.0, (114.62,), ("mol-1.5",), atoms=(1, 0, 2)),
    TrainItem("TORSION", 3.0, (-179.5,), ("bulk",), atoms=(0, 1, 2, 3)),
    TrainItem("RMSG", 40.0, (0.01,), ("bulk",)),
    TrainItem("CELL", 0.05, (4.913,), ("bulk",), cell_parameter="alpha"),
]
SECTION = {"CHARGE": 0, "HEATFO": 1, "DISTANCE": 2, "ANGLE": 2, "TORSION": 2, "RMSG": 2,
           "CELL": 3, "ENERGY": 4, "FORCE": 5}  # GEOMETRY holds four categories, in file order


def _plain(item):
    return dataclasses.replace(item, path="", line=0, text="")


def test_items_read_back_equal_in_standard_section_order(tmp_path):
    write_trainset(tmp_path / "trainset.in", ITEMS)
    back = [_plain(i) for i in read_trainset(tmp_path / "trainset.in", SIZES).items]
    expected = sorted(ITEMS, key=lambda i: SECTION[i.category])  # stable: order kept
    assert back == expected
    text = (tmp_path / "trainset.in").read_text()
    headers = [line for line in text.splitlines() if line.isupper() or line.isalpha()]
    assert headers == ["CHARGE", "ENDCHARGE", "HEATFO", "ENDHEATFO", "GEOMETRY",
                       "ENDGEOMETRY", "CELL PARAMETERS", "ENDCELL PARAMETERS", "ENERGY",
                       "ENDENERGY", "FORCES", "ENDFORCES"]
    assert "2.0 + bulk/4 - atom/1 -29.79" in text


@pytest.mark.parametrize("name", ["disulfide", "silica", "cobalt"])
def test_public_trainsets_read_back_equal(tmp_path, jaxreaxff_data, name):
    original = read_trainset(jaxreaxff_data / name / "trainset.in")
    write_trainset(tmp_path / "t.in", original)
    back = read_trainset(tmp_path / "t.in")
    expected = sorted(map(_plain, original.items), key=lambda i: SECTION[i.category])
    assert [_plain(i) for i in back.items] == expected


@pytest.mark.parametrize("item, match", [
    (TrainItem("ENERGY", 0.0, (1.0,), ("a",)), "weight"),
    (TrainItem("ENERGY", 1.0, (1.0,), ("a b",)), "trainset word"),
    (TrainItem("ENERGY", 1.0, (1.0,), ("a", "b"), (1.0,)), "one factor"),
    (TrainItem("DISTANCE", 1.0, (1.0,), ("a",), atoms=(0,)), "needs 2 atoms"),
    (TrainItem("CELL", 1.0, (1.0,), ("a",), cell_parameter="d"), "cell parameter"),
    (TrainItem("STRESS", 1.0, (1.0,), ("a",)), "category"),
])
def test_bad_items_are_refused(item, match):
    with pytest.raises(ValueError, match=match):
        trainset_text([item])
