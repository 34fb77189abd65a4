"""Sharing a command's work among ``-s N`` parallel splits."""

from collections.abc import Sequence
from typing import TypeVar

from rastervision.pipeline.utils import split_into_groups

T = TypeVar("T")


def share_of_work(items: Sequence[T], split_ind: int, num_splits: int) -> list[T]:
    """The items split ``split_ind`` of ``num_splits`` handles (maybe none: more splits than items).

    Uses RV's own grouping so our split commands divide work the way RV's do.
    """
    groups = split_into_groups(list(items), num_splits)
    return list(groups[split_ind]) if split_ind < len(groups) else []
