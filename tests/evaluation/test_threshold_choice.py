"""The one setting of the decision threshold: what each choice decides, what the old flags meant."""

import pytest

from benchmark.evaluation.threshold_choice import choice_from_flags, decide_threshold

CANDIDATES = {"fixed": 0.42, "best": 0.3, "training": 0.55, "shared": 0.2}


@pytest.mark.parametrize(
    ("choice", "decided"),
    [("fixed", 0.42), ("tune", 0.3), ("train", 0.55), ("share", 0.2)],
)
def test_each_choice_decides_its_own_candidate(choice, decided):
    assert decide_threshold(choice, **CANDIDATES) == decided


@pytest.mark.parametrize(("choice", "missing"), [("train", "training"), ("share", "shared")])
def test_a_choice_without_its_candidate_is_an_error(choice, missing):
    given = {name: value for name, value in CANDIDATES.items() if name != missing}
    with pytest.raises(ValueError, match=f"threshold {choice}: its candidate"):
        decide_threshold(choice, **given)


# Every combination of the flags before plugin version 3, and what eval decided with them.
OLD_FLAG_DECISIONS = [
    ((False, False, False), "fixed"),
    ((False, False, True), "share"),
    ((False, True, False), "train"),
    ((False, True, True), "train"),
    ((True, False, False), "tune"),
    ((True, False, True), "tune"),
    ((True, True, False), "tune"),
    ((True, True, True), "tune"),
]


@pytest.mark.parametrize(("flags", "choice"), OLD_FLAG_DECISIONS)
def test_the_old_flags_make_the_choice_they_made(flags, choice):
    names = ("tune_threshold", "train_threshold", "share_threshold")  # as configs and -a say
    assert choice_from_flags(**dict(zip(names, flags, strict=True))) == choice


def test_no_flag_is_the_fixed_threshold():
    assert choice_from_flags() == "fixed"
