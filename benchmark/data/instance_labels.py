"""An instance target's labels: each building's body, its border and the contact between two.

A binary label (building or not) teaches a model nothing about where one building ends and the
next begins: buildings that share a wall, common in dense neighbourhoods, come out as one blob.
The SpaceNet 4 and 6 winners (selim_sef) trained three outputs per pixel instead, and separated
buildings with a marker watershed: seeds are the body without its border and contact pixels.
Here the three are rasterized from the label polygons at the chip's pixel grid and stored as
bits of one uint8 band (:data:`~benchmark.data.constants.BODY_BIT`, ``BORDER_BIT``,
``CONTACT_BIT``), which Raster Vision's chips keep as they are:

- **body**: the building, exactly as the binary label rasterizes it (pixel centres inside).
- **border**: a building's own pixels whose centre lies within ``border_px`` of its outline.
  Inside only: the watershed's seeds are body minus border, so only a band inside the body
  separates them; a band outside would teach the border channel about background the seeds
  never reach. Each building's outline counts on its own, so where two buildings share a wall,
  each has its border along it (selim_sef's border is the building minus its erosion, inside
  too).
- **contact**: pixels within ``contact_px / 2`` of two or more different buildings: where the
  buildings, dilated by half the contact width, overlap (selim_sef's SpaceNet 6 contact). Two
  buildings less than ``contact_px`` apart have contact pixels across the gap; two that share
  a wall, a band ``contact_px`` wide straddling it, in both bodies. Body pixels are kept: the
  buildings that most need separating touch, with no background pixel between them, so a
  contact outside the bodies would be empty exactly there.

Distances are between pixel centres, and a pixel's centre is half a pixel from the outline it
lies along, so a band of ``n`` pixels is ``n`` pixels wide (``border_px`` 2: two rows).
"""

import math
from collections.abc import Iterable

import numpy as np
import rasterio
from rasterio.features import rasterize
from scipy.ndimage import distance_transform_edt
from shapely import affinity
from shapely.geometry.base import BaseGeometry

from benchmark.data.constants import BODY_BIT, BORDER_BIT, CONTACT_BIT, IGNORE_LABEL
from benchmark.errors import InputError


def _local_box(
    bounds: tuple[float, float, float, float], pad: int, height: int, width: int
) -> tuple[int, int, int, int] | None:
    """Rows and columns (r0, r1, c0, c1) around ``bounds`` plus ``pad``, within the grid."""
    minx, miny, maxx, maxy = bounds
    r0, r1 = max(0, math.floor(miny) - pad), min(height, math.ceil(maxy) + pad)
    c0, c1 = max(0, math.floor(minx) - pad), min(width, math.ceil(maxx) + pad)
    return (r0, r1, c0, c1) if r0 < r1 and c0 < c1 else None


def instance_reach(border_px: float, contact_px: float) -> int:
    """Pixels past a grid within which a building can still change the grid's bits.

    A border lies inside its own building (a building off the grid draws none on it) and
    within ``border_px`` of the outline; a contact pixel is within ``contact_px / 2`` of each
    building making it (each is dilated by half the contact width). Past the farther of the
    two, plus half a pixel between centre and outline and a pixel to spare, a building counts
    for nothing on the grid, and a cut there draws no outline the grid sees.
    """
    return math.ceil(max(border_px, contact_px / 2)) + 2


def instance_bits(
    polygons: Iterable[BaseGeometry], shape: tuple[int, int], border_px: float, contact_px: float
) -> np.ndarray:
    """uint8 body, border and contact bits of ``polygons`` on a ``shape`` (H, W) pixel grid.

    Args:
        polygons: each building, in the grid's pixel coordinates (x the column, y the row);
            they may reach past the grid (their outline there is not drawn, and a building just
            beyond the grid still makes contact with one on it).
        shape: the grid's height and width.
        border_px: width of the border band, in pixels.
        contact_px: width of the contact band between two buildings, in pixels.
    """
    height, width = shape
    radius = contact_px / 2
    # Past the grid by more than any band reaches: buildings there count, their cuts are far.
    margin = instance_reach(border_px, contact_px)
    grid_h, grid_w = height + 2 * margin, width + 2 * margin
    bits = np.zeros((grid_h, grid_w), dtype=np.uint8)
    near = np.zeros((grid_h, grid_w), dtype=np.uint8)  # dilated buildings over a pixel, up to 2
    pad = math.ceil(radius) + 1  # a local box's edge is outside the building (unless clipped)
    for polygon in polygons:
        shifted = affinity.translate(polygon, margin, margin)
        box = _local_box(shifted.bounds, pad, grid_h, grid_w)
        if shifted.is_empty or box is None:
            continue
        r0, r1, c0, c1 = box
        mask = rasterize(
            [affinity.translate(shifted, -c0, -r0)], out_shape=(r1 - r0, c1 - c0), dtype=np.uint8
        ).astype(bool)
        if not mask.any():  # no pixel centre inside
            continue
        local = bits[r0:r1, c0:c1]
        local[mask] |= BODY_BIT
        # The box's clipped edges hold no zeros: a cut by the padded grid draws no outline.
        # (A building over the whole box has none in it: scipy's distances are then undefined.)
        if not mask.all():
            local[mask & (distance_transform_edt(mask) <= border_px + 0.5)] |= BORDER_BIT
        dilated = distance_transform_edt(~mask) <= radius + 0.5  # building pixels are at 0
        near[r0:r1, c0:c1] = np.minimum(near[r0:r1, c0:c1] + dilated, 2)
    bits[near >= 2] |= CONTACT_BIT
    return bits[margin : margin + height, margin : margin + width]


def body_labels(labels: np.ndarray) -> np.ndarray:
    """The body of instance labels as binary labels (0, 1, IGNORE_LABEL kept); binary unchanged.

    NumPy, for labels read from rasters; :func:`benchmark.training.losses.body_target` is the
    same rule in torch, for a training batch's labels (both are tested on one table).
    """
    return np.where(labels == IGNORE_LABEL, labels, labels & BODY_BIT).astype(labels.dtype)


def pixel_metres(src: rasterio.DatasetReader) -> float:
    """The side of ``src``'s pixels in metres: its CRS's units, as PREPROCESS's GSD reads them.

    Raises:
        InputError: ``src`` is in degrees (PREPROCESS's windows keep the scene's CRS, projected
            for every Open Cities scene), where the widths in metres have no pixel size.
    """
    if src.crs is not None and src.crs.is_geographic:
        raise InputError(f"{src.name}: pixels in degrees; border and contact widths need metres")
    x_res, y_res = src.res
    return (x_res + y_res) / 2
