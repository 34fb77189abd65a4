"""Window arithmetic, written once: where windows fall on a raster.

Two kinds of windows cut a raster. PREPROCESS windows and read blocks *tile* it
(:func:`plan_windows`): every pixel once, the last window on an axis shorter. Prediction windows
*slide* (:func:`window_starts`): all of one side, ``window``, neighbours sharing ``overlap``
pixels, the last one flush with the raster's end, so a CNN always sees a whole window. The seam
picture draws and measures where prediction windows meet (:func:`window_edges`) on a crop that
windows with and without overlap both tile exactly (:func:`centred_exact_tiling`).
"""

import math
from collections.abc import Sequence

from rasterio.windows import Window


def plan_windows(width: int, height: int, size: int) -> list[Window]:
    """Row-major windows of at most ``size`` pixels that cover every pixel exactly once."""
    if min(width, height, size) <= 0:
        raise ValueError(f"bad window plan: {width}x{height} in windows of {size}")
    return [
        Window(col, row, min(size, width - col), min(size, height - row))
        for row in range(0, height, size)
        for col in range(0, width, size)
    ]


def window_starts(length: int, window: int, overlap: int = 0) -> list[int]:
    """Origins on one axis of ``window`` px windows sharing ``overlap`` px with the next.

    Every pixel is covered and the last window is flush with the end (so it may share more
    than ``overlap``); a side no longer than a window gets one window at 0.
    """
    if not 0 <= overlap < window:
        raise ValueError(f"overlap {overlap} must be at least 0 and less than the window {window}")
    if length <= window:
        return [0]
    return [*range(0, length - window, window - overlap), length - window]


def window_edges(length: int, window: int, overlap: int) -> list[int]:
    """Where prediction windows start or end inside a side: the boundaries a seam would follow.

    Edge ``e`` is the boundary between pixels ``e - 1`` and ``e``; the side's own ends are not
    edges.
    """
    starts = window_starts(length, window, overlap)
    return sorted({*starts[1:], *(start + window for start in starts[:-1])})


def exact_tiling_period(window: int, overlaps: Sequence[int]) -> int:
    """Step between the lengths that windows at every one of ``overlaps`` tile exactly.

    A length is tiled exactly (no window flush with the end sharing more than ``overlap``) when
    it is ``window`` plus a multiple of the stride ``window - overlap``; for several overlaps, a
    multiple of every stride.
    """
    return math.lcm(*(window - overlap for overlap in overlaps))


def centred_exact_tiling(region: Window, window: int, overlaps: Sequence[int]) -> Window:
    """The largest window centred in ``region`` that windows at each of ``overlaps`` tile exactly.

    Each side holds at least two windows; raises ValueError when ``region`` is too small.
    """
    period = exact_tiling_period(window, overlaps)

    def side(available: int) -> int:
        length = window + (available - window) // period * period
        if length <= window:
            raise ValueError(
                f"a {available} px side holds no two {window} px windows in every tiling "
                f"(overlaps {', '.join(map(str, overlaps))}): "
                f"it needs at least {window + period} px"
            )
        return length

    height, width = side(int(region.height)), side(int(region.width))
    row = int(region.row_off) + (int(region.height) - height) // 2
    col = int(region.col_off) + (int(region.width) - width) // 2
    return Window(col, row, width, height)
