"""Building polygons from a probability raster, block by block, joined across block edges.

A city-scale raster does not fit in memory, so it is read in blocks that tile it without
overlap, and every pixel ends in the building of the block it lies in: no pixel, and so no
building, comes out twice. Polygons are traced (GDAL's polygonize) in pixel coordinates of the
whole raster, which are whole numbers: parts of one building in two blocks share their edge
exactly. A building that does not touch an internal block edge is whole and yielded at once;
the others are kept and, after the last block, joined. Memory holds one block (with its halo)
plus the parts of the buildings cut by block edges.

How pixels become buildings depends on the raster's bands:

- **one band**, P(building) (a binary model): each block is thresholded
  (:func:`~benchmark.inference.forward.probability_to_mask`, the rule every other stage uses)
  and its 4-connected components are the buildings; parts cut by block edges are joined with
  those they share an edge with (:func:`join_cut_buildings`), so touching roofs are one
  building.
- **three bands**, P(body), P(border), P(contact) (an instance model,
  :data:`~benchmark.networks.targets.INSTANCE_BANDS`): each block is read with a halo of
  context on its sides that face another block and decoded by a marker watershed
  (:func:`~benchmark.footprints.instances.instance_labels`); its own pixels keep the labels
  the window gave them. A part cut by a block edge is joined with a part across it where both
  blocks see the pixel pairs straddling the edge in one building each, so two touching
  buildings stay two. A blob of touching buildings smaller than the halo lies wholly in the
  window of every block it has pixels in, and a whole blob is labelled as in the whole raster,
  so its buildings do not depend on the block size. A larger blob is labelled from what each
  window sees: where two windows disagree (a seed only one of them sees), a building may be
  split along a block edge; the halo makes that rare.

Each building carries the sum of its P(building) and its pixel count, so its confidence is
the mean probability over all its pixels, wherever the edges cut it.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.features import shapes
from rasterio.windows import Window
from scipy import ndimage

from benchmark.data.windows import plan_windows
from benchmark.footprints.instances import InstanceOptions, instance_labels
from benchmark.inference.forward import probability_to_mask
from benchmark.networks.targets import check_probability_bands

# Block side: a 2048 px block costs ~30 MB (probabilities, labels, mask) for one band; with
# three bands and a 256 px halo, ~100 MB (the window, its labels and seeds).
BLOCK_SIZE = 2048

Sides = tuple[bool, bool, bool, bool]  # top, bottom, left, right: does it face another block?


@dataclass
class PixelBuilding:
    """One building in the raster's pixel coordinates (x = column, y = row)."""

    polygon: shapely.Polygon  # a MultiPolygon only in a cut part, before joining
    prob_sum: float  # sum of the uint8 probabilities of its pixels
    pixels: int

    @property
    def confidence(self) -> float:
        """Mean P(building) over its pixels."""
        return self.prob_sum / (255.0 * self.pixels)


def _inner_sides(block: Window, src: rasterio.DatasetReader) -> Sides:
    """Whether the block's top, bottom, left and right sides face another block of ``src``."""
    col, row = int(block.col_off), int(block.row_off)
    return (
        row > 0,
        row + int(block.height) < src.height,
        col > 0,
        col + int(block.width) < src.width,
    )


def _labels_on_inner_sides(labels: np.ndarray, inner: Sides) -> set[int]:
    """Labels on the block's sides that face another block (top, bottom, left, right)."""
    sides = (labels[0], labels[-1], labels[:, 0], labels[:, -1])
    found: set[int] = set()
    for side, is_inner in zip(sides, inner, strict=True):
        if is_inner:
            found.update(np.unique(side[side > 0]).tolist())
    return found


def _traced(
    labels: np.ndarray, prob: np.ndarray, block: Window
) -> Iterator[tuple[int, PixelBuilding]]:
    """(label, building) for each label of a block, in the raster's pixels.

    A label in pieces (a building cut by the block's edge into a U's two arms) is one
    :class:`PixelBuilding` with a MultiPolygon: the pixels and probabilities are the label's.
    """
    mask = labels > 0
    if not mask.any():
        return
    count = int(labels.max())
    inside = labels[mask]  # counted over the buildings' pixels, not the whole block's
    sums = np.bincount(inside, weights=prob[mask], minlength=count + 1)
    pixels = np.bincount(inside, minlength=count + 1)
    transform = Affine.translation(block.col_off, block.row_off)
    pieces: dict[int, list[shapely.Polygon]] = {}
    for geom, value in shapes(labels, mask=mask, connectivity=4, transform=transform):
        pieces.setdefault(int(value), []).append(shapely.geometry.shape(geom))
    for label, polygons in pieces.items():
        polygon = polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)
        yield label, PixelBuilding(polygon, float(sums[label]), int(pixels[label]))


def block_buildings(
    prob: np.ndarray, threshold: float, block: Window, inner: Sides
) -> tuple[list[PixelBuilding], list[PixelBuilding]]:
    """(whole, cut): the block's buildings, split by whether they touch an ``inner`` side.

    Args:
        prob: the block's uint8 probabilities.
        threshold: a pixel is a building when P > threshold.
        block: where the block is in the raster (its polygons are in the raster's pixels).
        inner: whether its top, bottom, left and right sides face another block.
    """
    labels, _ = ndimage.label(probability_to_mask(prob, threshold))  # 4-connected, as GDAL's
    on_edges = _labels_on_inner_sides(labels, inner)
    whole, cut = [], []
    for label, building in _traced(labels.astype(np.int32), prob, block):
        (cut if label in on_edges else whole).append(building)
    return whole, cut


def _groups(count: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """The sets of ``range(count)`` that ``pairs`` connect (union-find), each in order."""
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in range(count):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def merge_parts(parts: list[PixelBuilding]) -> Iterator[PixelBuilding]:
    """One building of parts sharing edges (pieces meeting at a corner only: one each)."""
    if len(parts) == 1 and isinstance(parts[0].polygon, shapely.Polygon):
        yield parts[0]
        return
    joined = shapely.union_all([p.polygon for p in parts])
    pieces = list(joined.geoms) if isinstance(joined, shapely.MultiPolygon) else [joined]
    prob_sum = sum(p.prob_sum for p in parts)
    pixels = sum(p.pixels for p in parts)
    for piece in pieces:
        share = piece.area / joined.area
        yield PixelBuilding(piece, prob_sum * share, max(1, round(pixels * share)))


def join_cut_buildings(parts: list[PixelBuilding]) -> Iterator[PixelBuilding]:
    """Join parts sharing an edge (not just a corner) into buildings."""
    if not parts:
        return
    polygons = np.array([p.polygon for p in parts], dtype=object)
    left, right = shapely.STRtree(polygons).query(polygons, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    shared = shapely.length(shapely.intersection(polygons[left], polygons[right])) > 0
    links = zip(left[shared].tolist(), right[shared].tolist(), strict=True)
    for members in _groups(len(parts), links):
        yield from merge_parts([parts[i] for i in members])


Node = tuple[int, int]  # (block index, label in that block's window)


@dataclass
class InstanceJoiner:
    """The parts of buildings cut by block edges, and which parts across an edge are one.

    Each block reports the labels its window gave the pixel rows (or columns) on either side
    of each internal edge of its own: ``inside`` its block and ``outside`` it, in its halo.
    Once both blocks of an edge have reported, a part of one is joined to the part of the
    other where a pixel pair straddling the edge is one building for both windows.
    """

    parts: list[tuple[Node, PixelBuilding]] = field(default_factory=list)
    links: list[tuple[Node, Node]] = field(default_factory=list)
    _waiting: dict[tuple[str, int, int], tuple[int, np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False
    )

    def edge(
        self, key: tuple[str, int, int], block: int, inside: np.ndarray, outside: np.ndarray
    ) -> None:
        """Report a block's labels along the internal edge ``key`` (the same from both sides)."""
        other = self._waiting.pop(key, None)
        if other is None:
            self._waiting[key] = (block, inside, outside)
            return
        other_block, other_inside, other_outside = other
        # Pixel pair (p on this side, q on the other): this block's labels of p and q are
        # inside and outside, the other block's are other_outside and other_inside.
        one = (inside > 0) & (inside == outside) & (other_inside > 0)
        one &= other_inside == other_outside
        for a, b in set(zip(inside[one].tolist(), other_inside[one].tolist(), strict=True)):
            self.links.append(((block, a), (other_block, b)))

    def buildings(self) -> Iterator[PixelBuilding]:
        """The cut buildings, joined."""
        index = {node: i for i, node in enumerate(dict.fromkeys(n for n, _ in self.parts))}
        pairs = ((index[a], index[b]) for a, b in self.links if a in index and b in index)
        by_node: list[list[PixelBuilding]] = [[] for _ in index]
        for node, part in self.parts:
            by_node[index[node]].append(part)
        for members in _groups(len(index), pairs):
            yield from merge_parts([part for i in members for part in by_node[i]])


def _instance_block(
    src: rasterio.DatasetReader,
    block_index: int,
    block: Window,
    threshold: float,
    options: InstanceOptions,
    joiner: InstanceJoiner,
) -> Iterator[PixelBuilding]:
    """The block's whole buildings; its cut parts and edge labels go to ``joiner``."""
    col, row, width, height = (
        int(v) for v in (block.col_off, block.row_off, block.width, block.height)
    )
    row0, col0 = max(0, row - options.halo), max(0, col - options.halo)
    row1 = min(src.height, row + height + options.halo)
    col1 = min(src.width, col + width + options.halo)
    body, border, contact = src.read([1, 2, 3], window=Window(col0, row0, col1 - col0, row1 - row0))
    labels = instance_labels(body, border, contact, threshold, options.seed_threshold)
    top, left = row - row0, col - col0  # the block in its window
    bottom, right = top + height, left + width
    rows, cols = slice(top, bottom), slice(left, right)
    faces_top, faces_bottom, faces_left, faces_right = _inner_sides(block, src)
    edges = []  # key, inside, outside: an internal edge's pixel rows or columns, in the window
    if faces_top:
        edges.append((("row", row, col), labels[top, cols], labels[top - 1, cols]))
    if faces_bottom:
        edges.append((("row", row + height, col), labels[bottom - 1, cols], labels[bottom, cols]))
    if faces_left:
        edges.append((("col", col, row), labels[rows, left], labels[rows, left - 1]))
    if faces_right:
        edges.append((("col", col + width, row), labels[rows, right - 1], labels[rows, right]))
    on_edges: set[int] = set()
    for key, inside, outside in edges:
        joiner.edge(key, block_index, inside.copy(), outside.copy())
        on_edges.update(np.unique(inside[inside > 0]).tolist())
    own = np.ascontiguousarray(labels[rows, cols])
    for label, building in _traced(own, body[rows, cols], block):
        if label in on_edges:
            joiner.parts.append(((block_index, label), building))
        else:
            yield building


def vectorize_probabilities(
    prob_path: str,
    threshold: float,
    block_size: int | None = None,
    instances: InstanceOptions | None = None,
) -> Iterator[PixelBuilding]:
    """Every building of the uint8 probability raster at ``prob_path``, each exactly once.

    Args:
        prob_path: ``round(255 * P)``: one band, P(building), or three, P(body), P(border)
            and P(contact) (local path or anything rasterio opens).
        threshold: a pixel is a building when P(building) (or P(body)) > threshold.
        block_size: side of the blocks read at a time; bounds memory (default
            :data:`BLOCK_SIZE`).
        instances: how three bands are decoded (default :class:`InstanceOptions`()).
    """
    with rasterio.open(prob_path) as src:
        check_probability_bands(src.count, prob_path)
        blocks = plan_windows(src.width, src.height, block_size or BLOCK_SIZE)
        if src.count == 1:
            cut: list[PixelBuilding] = []
            for block in blocks:
                prob = src.read(1, window=block)
                whole, cut_here = block_buildings(prob, threshold, block, _inner_sides(block, src))
                yield from whole
                cut += cut_here
            joined = join_cut_buildings(cut)
        else:
            joiner = InstanceJoiner()
            options = instances or InstanceOptions()
            for index, block in enumerate(blocks):
                yield from _instance_block(src, index, block, threshold, options, joiner)
            joined = joiner.buildings()
    yield from joined
