"""Building polygons from a probability raster, block by block, joined across block edges.

A city-scale raster does not fit in memory, so it is read in blocks that tile it without
overlap. Each block is thresholded (:func:`~benchmark.inference.forward.probability_to_mask`,
the rule every other stage uses), its 4-connected components labelled, and each component
traced (GDAL's polygonize) in pixel coordinates of the whole raster, which are whole numbers:
parts of one building in two blocks share their edge exactly. A component that does not touch
an internal block edge is a whole building and is yielded at once; the others are kept and,
after the last block, joined with those they share an edge with (4-connected, as within a
block). Every pixel lies in one block, so no building comes out twice, and memory holds one
block plus the parts of the buildings cut by block edges.

Each building carries the sum of its probabilities and its pixel count, so its confidence is
the mean probability over all its pixels, wherever the edges cut it.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.features import shapes
from rasterio.windows import Window
from scipy import ndimage

from benchmark.data.windows import plan_windows
from benchmark.inference.forward import probability_to_mask

# Block side: a 2048 px block costs ~30 MB (probabilities, labels, mask).
BLOCK_SIZE = 2048


@dataclass
class PixelBuilding:
    """One building in the raster's pixel coordinates (x = column, y = row)."""

    polygon: shapely.Polygon
    prob_sum: float  # sum of the uint8 probabilities of its pixels
    pixels: int

    @property
    def confidence(self) -> float:
        """Mean P(building) over its pixels."""
        return self.prob_sum / (255.0 * self.pixels)


def _labels_on_inner_sides(labels: np.ndarray, inner: tuple[bool, bool, bool, bool]) -> set[int]:
    """Labels on the block's sides that face another block (top, bottom, left, right)."""
    sides = (labels[0], labels[-1], labels[:, 0], labels[:, -1])
    found: set[int] = set()
    for side, is_inner in zip(sides, inner, strict=True):
        if is_inner:
            found.update(np.unique(side[side > 0]).tolist())
    return found


def block_buildings(
    prob: np.ndarray, threshold: float, block: Window, inner: tuple[bool, bool, bool, bool]
) -> tuple[list[PixelBuilding], list[PixelBuilding]]:
    """(whole, cut): the block's buildings, split by whether they touch an ``inner`` side.

    Args:
        prob: the block's uint8 probabilities.
        threshold: a pixel is a building when P > threshold.
        block: where the block is in the raster (its polygons are in the raster's pixels).
        inner: whether its top, bottom, left and right sides face another block.
    """
    mask = probability_to_mask(prob, threshold).astype(bool)
    labels, count = ndimage.label(mask)  # 4-connected, as GDAL's polygonize
    if count == 0:
        return [], []
    inside = labels[mask]  # counted over the buildings' pixels, not the whole block's
    sums = np.bincount(inside, weights=prob[mask], minlength=count + 1)
    pixels = np.bincount(inside, minlength=count + 1)
    on_edges = _labels_on_inner_sides(labels, inner)
    transform = Affine.translation(block.col_off, block.row_off)
    whole, cut = [], []
    for geom, value in shapes(labels, mask=mask, connectivity=4, transform=transform):
        label = int(value)
        building = PixelBuilding(
            shapely.geometry.shape(geom), float(sums[label]), int(pixels[label])
        )
        (cut if label in on_edges else whole).append(building)
    return whole, cut


def join_cut_buildings(parts: list[PixelBuilding]) -> Iterator[PixelBuilding]:
    """Join parts sharing an edge (not just a corner) into buildings; union-find over pairs."""
    if not parts:
        return
    polygons = np.array([p.polygon for p in parts], dtype=object)
    left, right = shapely.STRtree(polygons).query(polygons, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    shared = shapely.length(shapely.intersection(polygons[left], polygons[right])) > 0
    parent = list(range(len(parts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(left[shared], right[shared], strict=True):
        parent[root(int(a))] = root(int(b))
    groups: dict[int, list[int]] = {}
    for i in range(len(parts)):
        groups.setdefault(root(i), []).append(i)
    for members in groups.values():
        joined = shapely.union_all(polygons[members])
        pieces = list(joined.geoms) if isinstance(joined, shapely.MultiPolygon) else [joined]
        prob_sum = sum(parts[i].prob_sum for i in members)
        pixels = sum(parts[i].pixels for i in members)
        for piece in pieces:  # a corner-only contact inside the union: one building each
            share = piece.area / joined.area
            yield PixelBuilding(piece, prob_sum * share, max(1, round(pixels * share)))


def vectorize_probabilities(
    prob_path: str, threshold: float, block_size: int | None = None
) -> Iterator[PixelBuilding]:
    """Every building of the uint8 probability raster at ``prob_path``, each exactly once.

    Args:
        prob_path: one band of ``round(255 * P)`` (local path or anything rasterio opens).
        threshold: a pixel is a building when P > threshold.
        block_size: side of the blocks read at a time; bounds memory (default
            :data:`BLOCK_SIZE`).
    """
    cut: list[PixelBuilding] = []
    with rasterio.open(prob_path) as src:
        for block in plan_windows(src.width, src.height, block_size or BLOCK_SIZE):
            col, row = int(block.col_off), int(block.row_off)
            inner = (
                row > 0,
                row + int(block.height) < src.height,
                col > 0,
                col + int(block.width) < src.width,
            )
            whole, cut_here = block_buildings(src.read(1, window=block), threshold, block, inner)
            yield from whole
            cut += cut_here
    yield from join_cut_buildings(cut)
