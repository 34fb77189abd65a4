"""Counts of hits, false alarms and misses, and the scores made from them.

Pixel scores (:class:`~benchmark.evaluation.metrics.ConfusionCounts`) and per-building scores
(:class:`~benchmark.evaluation.buildings.BuildingCounts`) are the same arithmetic over different
things counted, so both keep raw counts, add them up per scene, city and overall, and only
divide at the end (micro averages).
"""

from dataclasses import asdict, astuple, dataclass
from typing import ClassVar, Self


def ratio(num: int, den: int) -> float:
    """Num / den, with 0 / 0 = 1.

    A denominator of 0 means there was nothing to get wrong: Jaccard and F1 of a scene with
    no buildings and none predicted, precision with nothing predicted, recall with nothing to
    find. 1.0 keeps such a scene from reading as a failure in per-scene tables; the overall
    (micro) score is unaffected, as it only divides summed counts.
    """
    return num / den if den else 1.0


@dataclass(frozen=True)
class DetectionCounts:
    """True positives (tp), false positives (fp) and false negatives (fn)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    SCORES: ClassVar[tuple[str, ...]] = ("precision", "recall", "f1")

    def __add__(self, other: Self) -> Self:
        return type(self)(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @property
    def precision(self) -> float:
        """Share of what was predicted that is right."""
        return ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """Share of what is there that was found."""
        return ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall (= Dice for pixels)."""
        return ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def to_dict(self) -> dict:
        """Scores and counts, for eval.json."""
        return {**{name: getattr(self, name) for name in self.SCORES}, **asdict(self)}
