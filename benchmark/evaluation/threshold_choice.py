"""How ``eval`` picks the decision threshold: one setting, one choice, one place that decides it.

Until plugin version 3 the choice was three flags (``tune_threshold``, ``train_threshold``,
``share_threshold``) with a precedence among them, spelled out in two places. It is now one
setting, ``threshold``, of four choices (and ``threshold_value``, the threshold of ``fixed``);
:func:`choice_from_flags` says what the old flags meant, for saved configs, model bundles and
run scripts written before (tune won over train, which won over share; none: fixed).
"""

from typing import Literal

ThresholdChoice = Literal["fixed", "tune", "train", "share"]

THRESHOLD_HELP = (
    "How eval picks the decision threshold POSTPROCESS and the bundle use: fixed = "
    "threshold_value; tune = the best Jaccard on the validation scenes (reads their labels); "
    "train = the best Jaccard on the training chips, which eval predicts with the trained model "
    "(or ensemble) as predict ran it (no validation label is read; see "
    "benchmark.evaluation.training_threshold); share = the one at which the validation scenes' "
    "predicted share of building pixels is the training chips' labelled share (no validation "
    "label is read; see benchmark.evaluation.share_threshold)."
)

# The flags ``threshold`` replaced, by their names in configs and ``-a`` arguments.
THRESHOLD_FLAGS = ("tune_threshold", "train_threshold", "share_threshold")


def choice_from_flags(
    tune_threshold: bool = False, train_threshold: bool = False, share_threshold: bool = False
) -> ThresholdChoice:
    """The choice the flags of plugin version 2 and before made (their names are the flags').

    They were not exclusive: tune won over train, which won over share; none set was 0.5,
    the default ``fixed``.
    """
    if tune_threshold:
        return "tune"
    if train_threshold:
        return "train"
    if share_threshold:
        return "share"
    return "fixed"


def decide_threshold(
    choice: ThresholdChoice,
    *,
    fixed: float,
    best: float,
    training: float | None = None,
    shared: float | None = None,
) -> float:
    """The decision threshold ``choice`` asks for, among the candidates eval found.

    Args:
        choice: the ``threshold`` setting.
        fixed: ``threshold_value``.
        best: the threshold of eval's sweep with the best validation Jaccard.
        training: the one chosen on the training chips (needed by ``train`` only: it costs a
            prediction of every training chip, so the pipeline computes it for ``train`` alone).
        shared: the one predicting the training chips' building share (needed by ``share``).

    Raises:
        ValueError: ``choice``'s candidate was not given (a caller's mistake, not a user's).
    """
    chosen = {"fixed": fixed, "tune": best, "train": training, "share": shared}[choice]
    if chosen is None:
        raise ValueError(f"threshold {choice}: its candidate threshold was not computed")
    return chosen
