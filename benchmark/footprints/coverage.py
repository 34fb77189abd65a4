"""Where mapping is missing, at a glance: per grid cell, buildings found and how many OSM has.

The image's box is cut into square cells of ``cell_size`` metres (in the local UTM zone, from
the box's south-west corner). Each footprint counts in the cell of its centroid: ``found``,
and of those ``mapped`` (OSM has the building), ``changed`` (OSM has something there, drawn
differently) and ``new`` (OSM has nothing). ``{name}_coverage.json`` lists the cells with
buildings; ``{name}_coverage.png`` colours each by the share OSM has (mapped or changed), red
where it has none, outlines the image's box (dashed), and writes "found / in OSM" in the cell
while the grid is small enough to read.
"""

import json
import math
from dataclasses import dataclass

import numpy as np
import shapely
from matplotlib.figure import Figure
from pyproj import Transformer

from benchmark.data.uris import atomic_output
from benchmark.footprints.conflation import CHANGED, MAPPED, NEW, to_metric
from benchmark.footprints.ground import WGS84

DEFAULT_CELL_SIZE = 100.0  # metres: a city block
MAX_LABELLED_CELLS = 400  # counts written in the cells up to this many (else unreadable)


@dataclass(frozen=True)
class CoverageGrid:
    """Counts per cell: arrays of shape (rows, cols), row 0 the northernmost."""

    cell_size: float
    crs: str
    origin: tuple[float, float]  # (x, y) of the grid's north-west corner in ``crs``
    image_size: tuple[float, float]  # the image's box, metres east and south of the origin
    found: np.ndarray
    mapped: np.ndarray
    changed: np.ndarray
    new: np.ndarray

    def to_json(self) -> dict:
        """The grid and its non-empty cells (lon/lat bounds and counts), totals first."""
        back = Transformer.from_crs(self.crs, WGS84, always_xy=True)
        x0, y0 = self.origin
        cells = []
        for row, col in zip(*np.nonzero(self.found), strict=True):
            west, north = x0 + col * self.cell_size, y0 - row * self.cell_size
            box = back.transform_bounds(west, north - self.cell_size, west + self.cell_size, north)
            cells.append(
                {
                    "row": int(row),
                    "col": int(col),
                    "bounds_lonlat": [round(v, 7) for v in box],
                    "found": int(self.found[row, col]),
                    "in_osm": int(self.mapped[row, col] + self.changed[row, col]),
                    "mapped": int(self.mapped[row, col]),
                    "changed": int(self.changed[row, col]),
                    "new": int(self.new[row, col]),
                }
            )
        return {
            "cell_size_m": self.cell_size,
            "crs": self.crs,
            "origin": list(self.origin),
            "shape": list(self.found.shape),
            "found": int(self.found.sum()),
            "in_osm": int(self.mapped.sum() + self.changed.sum()),
            "new": int(self.new.sum()),
            "cells": cells,
        }


def coverage_grid(
    lonlat: list[shapely.Geometry],
    status: list[str],
    lonlat_box: tuple[float, float, float, float],
    cell_size: float = DEFAULT_CELL_SIZE,
) -> CoverageGrid:
    """Count ``lonlat`` footprints by ``status`` in cells of ``cell_size`` m over the box."""
    (box, *metric), crs = to_metric([shapely.box(*lonlat_box), *lonlat])
    west, south, east, north = box.bounds
    shape = (
        max(1, math.ceil((north - south) / cell_size)),
        max(1, math.ceil((east - west) / cell_size)),
    )
    counts = {key: np.zeros(shape, np.int64) for key in (MAPPED, CHANGED, NEW)}
    if metric:
        xy = shapely.get_coordinates(shapely.centroid(np.asarray(metric, dtype=object)))
        rows = np.clip(((north - xy[:, 1]) // cell_size).astype(int), 0, shape[0] - 1)
        cols = np.clip(((xy[:, 0] - west) // cell_size).astype(int), 0, shape[1] - 1)
        for row, col, value in zip(rows, cols, status, strict=True):
            counts[value][row, col] += 1
    return CoverageGrid(
        cell_size=cell_size,
        crs=crs.to_string(),
        origin=(west, north),
        image_size=(east - west, north - south),
        found=counts[MAPPED] + counts[CHANGED] + counts[NEW],
        mapped=counts[MAPPED],
        changed=counts[CHANGED],
        new=counts[NEW],
    )


def write_coverage(grid: CoverageGrid, json_uri: str, png_uri: str, title: str) -> None:
    """The grid as JSON and as a picture (see the module docstring)."""
    with atomic_output(json_uri) as path, open(path, "w") as out:
        json.dump(grid.to_json(), out, indent=1)
        out.write("\n")
    in_osm = grid.mapped + grid.changed
    share = np.where(grid.found > 0, in_osm / np.maximum(grid.found, 1), np.nan)
    rows, cols = share.shape
    fig = Figure(figsize=(7, max(3.0, 6 * rows / cols) + 0.8))
    ax = fig.subplots()
    extent = (0, cols * grid.cell_size, 0, rows * grid.cell_size)
    shown = ax.imshow(share, cmap="RdYlGn", vmin=0, vmax=1, extent=extent, interpolation="nearest")
    ax.set_facecolor("0.9")
    width, height = grid.image_size
    top = rows * grid.cell_size
    ax.plot([0, width, width, 0, 0], [top, top, top - height, top - height, top], "k--", lw=1)
    fig.colorbar(shown, ax=ax, label="share of found buildings OSM has")
    if rows * cols <= MAX_LABELLED_CELLS:
        for row, col in zip(*np.nonzero(grid.found), strict=True):
            x = (col + 0.5) * grid.cell_size
            y = (rows - row - 0.5) * grid.cell_size
            label = f"{grid.found[row, col]}/{in_osm[row, col]}"
            ax.text(x, y, label, ha="center", va="center", fontsize=8)
    ax.set_xlabel("metres east")
    ax.set_ylabel("metres north")
    ax.set_title(
        f"{title}: found / in OSM per {grid.cell_size:g} m cell\n"
        f"{int(grid.found.sum())} found, {int(in_osm.sum())} in OSM, {int(grid.new.sum())} new"
    )
    fig.tight_layout()
    with atomic_output(png_uri) as path:
        fig.savefig(path, format="png", dpi=100)
