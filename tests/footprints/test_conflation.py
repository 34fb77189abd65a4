"""Footprint statuses against existing buildings: new, mapped, changed; seen, not seen."""

import pytest

from benchmark.footprints.conflation import ConflationRules, conflate
from benchmark.footprints.osm_input import ExistingBuildings
from tests.footprints.conftest import metre_box as box


def existing(*polygons) -> ExistingBuildings:
    return ExistingBuildings(polygons, tuple(f"way/{i}" for i in range(len(polygons))), "t")


def test_each_rule():
    found = [
        box(0, 0, 10, 10),  # mapped: the first existing building, 1 m off (IoU 0.82)
        box(20, 0, 30, 10),  # new: nothing there
        box(40, 0, 60, 10),  # changed: two mapped houses merged into one footprint
        box(0, 20, 10, 30),  # new: touches its mapped neighbour by 0.3 m only
    ]
    known = existing(
        box(1, 0, 11, 10),
        box(40, 0, 49, 10),
        box(51, 0, 60, 10),
        box(9.7, 20, 19.7, 30),  # the neighbour: seen? no, only touched
        box(100, 100, 105, 105),  # nothing found there
    )
    result = conflate(found, known)
    assert result.status == ["mapped", "new", "changed", "new"]
    assert result.osm_id == ["way/0", "", "", ""]
    assert result.iou[0] == pytest.approx(9 / 11, abs=0.01)
    assert result.existing_status == ["seen", "seen", "seen", "not_seen", "not_seen"]


def test_thresholds_are_arguments():
    found, known = [box(0, 0, 10, 10)], existing(box(4, 0, 14, 10))  # IoU 6/14 = 0.43
    assert conflate(found, known).status == ["changed"]
    assert conflate(found, known, ConflationRules(match_iou=0.4)).status == ["mapped"]
    assert conflate(found, known, ConflationRules(min_overlap=0.7)).status == ["new"]


def test_nothing_on_either_side():
    assert conflate([], existing(box(0, 0, 5, 5))).existing_status == ["not_seen"]
    assert conflate([box(0, 0, 5, 5)], existing()).status == ["new"]
