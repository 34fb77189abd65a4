"""Orthomosaics with known buildings: bright boxes on a dark ground, in UTM, 3857 and 4326.

The stand-in model (``tests.fixtures.models.pointwise_model``) calls a pixel a building when
it is bright, so the boxes are the buildings to find, whatever CRS or resolution the scene has.
All three grids have pixels of about 10 cm on the ground near Kampala. Below them, the
OpenStreetMap stand-ins: existing buildings as an ``.osm`` extract and a local Overpass API,
and the outputs of a footprints run on a folder of overlapping images (a survey to merge).
"""

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pyogrio.raw
import pytest
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.transform import from_origin

from tests.fixtures.rasters import write_raster

GRIDS = {
    "utm": ("EPSG:32636", from_origin(455_000.0, 39_000.0, 0.1, 0.1)),
    "webmercator": ("EPSG:3857", from_origin(3_617_000.0, 33_400.0, 0.1, 0.1)),
    "lonlat": ("EPSG:4326", from_origin(32.5, 0.3, 0.9e-6, 0.9e-6)),
}
GROUND, ROOF = 25, 230
# (row0, col0, row1, col1) pixel boxes: two buildings of 80 x 140 and 60 x 50 px.
BUILDINGS = [(50, 60, 130, 200), (200, 250, 260, 300)]

SceneMaker = Callable[..., str]


def scene_pixels(
    height: int = 300,
    width: int = 400,
    boxes: list[tuple[int, int, int, int]] = BUILDINGS,
    alpha_off: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """RGBA: dark ground, bright ``boxes``, alpha 0 (and RGB 0) in ``alpha_off`` if given."""
    data = np.full((4, height, width), GROUND, np.uint8)
    data[3] = 255
    for r0, c0, r1, c1 in boxes:
        data[:3, r0:r1, c0:c1] = ROOF
    if alpha_off:
        r0, c0, r1, c1 = alpha_off
        data[:, r0:r1, c0:c1] = 0
    return data


@pytest.fixture
def make_scene(tmp_path: Path) -> SceneMaker:
    """``make_scene(name, grid="utm", data=None, **pixels)``: a GeoTIFF under ``tmp_path/in``."""

    def make(
        name: str,
        grid: str = "utm",
        data: np.ndarray | None = None,
        transform: Affine | None = None,
        **pixels,
    ) -> str:
        crs, grid_transform = GRIDS[grid]
        return write_raster(
            tmp_path / "in" / f"{name}.tif",
            scene_pixels(**pixels) if data is None else data,
            crs=crs,
            transform=transform or grid_transform,
            tiled=True,
            blockxsize=256,
            blockysize=256,
        )

    return make


# ---- OpenStreetMap stand-ins: existing buildings as files and as an Overpass server ----------

# Existing buildings around the utm scene, as pixel boxes: the first scene building as mapped
# (shifted by 2 px: IoU ~0.93), and a shed where the imagery shows nothing (not seen).
MAPPED_BOX = (52, 60, 132, 200)
SHED_BOX = (20, 330, 50, 370)


# Near Kampala a micro-degree is ~11 cm both ways.
_METRE = 1e-5 / 1.1132


def metre_box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A box given in metres east and north of (32.6 E, 0.35 N), in lon/lat."""
    return shapely.box(
        32.6 + x0 * _METRE, 0.35 + y0 * _METRE, 32.6 + x1 * _METRE, 0.35 + y1 * _METRE
    )


def lonlat_box(pixel_box: tuple[int, int, int, int], grid: str = "utm") -> shapely.Polygon:
    """The (row0, col0, row1, col1) pixel box of a ``GRIDS`` scene as a lon/lat polygon."""
    crs, transform = GRIDS[grid]
    r0, c0, r1, c1 = pixel_box
    corners = [transform * (c, r) for c, r in ((c0, r0), (c1, r0), (c1, r1), (c0, r1))]
    lons, lats = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        [x for x, _ in corners], [y for _, y in corners]
    )
    return shapely.Polygon(list(zip(lons, lats, strict=True)))


def osm_xml(
    polygons: list[shapely.Polygon], bounds: shapely.Polygon | None = None, first_id: int = 1000
) -> str:
    """An OpenStreetMap XML extract: each polygon a closed way tagged building=yes."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    if bounds is not None:
        west, south, east, north = bounds.bounds
        lines.append(f'<bounds minlat="{south}" minlon="{west}" maxlat="{north}" maxlon="{east}"/>')
    ways, node_id = [], first_id
    for way_id, polygon in enumerate(polygons, start=first_id):
        refs = []
        for lon, lat in polygon.exterior.coords[:-1]:
            lines.append(f'<node id="{node_id}" version="1" lat="{lat:.8f}" lon="{lon:.8f}"/>')
            refs.append(node_id)
            node_id += 1
        nds = "".join(f'<nd ref="{ref}"/>' for ref in [*refs, refs[0]])
        ways.append(f'<way id="{way_id}" version="1">{nds}<tag k="building" v="yes"/></way>')
    return "\n".join([*lines, *ways, "</osm>", ""])


def overpass_answer(polygons: list[shapely.Polygon], first_id: int = 1000) -> dict:
    """What Overpass answers to ``[out:json]...out geom;``: ways with their geometry, a node."""

    def geometry(ring: shapely.LinearRing) -> list[dict]:
        return [{"lat": round(lat, 7), "lon": round(lon, 7)} for lon, lat in ring.coords]

    elements: list[dict] = [{"type": "node", "id": 1, "lat": 0.3, "lon": 32.5}]  # not an area
    for way_id, polygon in enumerate(polygons, start=first_id):
        west, south, east, north = polygon.bounds
        elements.append(
            {
                "type": "way",
                "id": way_id,
                "bounds": {"minlat": south, "minlon": west, "maxlat": north, "maxlon": east},
                "nodes": [*range(way_id * 10, way_id * 10 + 4), way_id * 10],
                "geometry": geometry(polygon.exterior),
                "tags": {"building": "yes"},
            }
        )
    return {
        "version": 0.6,
        "generator": "Overpass API 0.7.62.1 084b4234",
        "osm3s": {
            "timestamp_osm_base": "2026-12-07T18:00:00Z",
            "copyright": "The data included in this document is from www.openstreetmap.org. "
            "The data is made available under ODbL.",
        },
        "elements": elements,
    }


@dataclass
class OverpassStandIn:
    """A local Overpass API: answers every POST with ``status`` and ``body`` (or never)."""

    url: str
    status: int = 200
    body: bytes = b""
    hang: bool = False  # hold every answer until the test ends (a timeout, whatever the speed)
    queries: list[str] = field(default_factory=list)

    def answer_json(self, answer: dict) -> None:
        """Answer ``answer`` as JSON with 200."""
        self.status, self.body = 200, json.dumps(answer).encode()


@pytest.fixture
def overpass() -> Iterator[OverpassStandIn]:
    """An :class:`OverpassStandIn` on 127.0.0.1 in a thread, for the test's duration."""
    released = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            stand_in.queries.append(parse_qs(self.rfile.read(length).decode())["data"][0])
            if stand_in.hang:
                released.wait()
                return
            self.send_response(stand_in.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(stand_in.body)))
            self.end_headers()
            self.wfile.write(stand_in.body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stand_in = OverpassStandIn(f"http://127.0.0.1:{server.server_port}/api/interpreter")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        released.set()
        server.shutdown()
        server.server_close()


# ---- A footprints run on a folder of overlapping images: outputs to merge -------------------

# Surveys are laid out in metres east and north of this UTM point (EPSG:32636, near Kampala).
SURVEY_ORIGIN = (455_000.0, 38_000.0)
SURVEY_PIXEL = 0.5  # metres: the probability COGs' pixels (an edge tolerance of 1 m)

SurveyImageMaker = Callable[..., Path]


def survey_box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A box given in metres east and north of :data:`SURVEY_ORIGIN`, in EPSG:32636."""
    east, north = SURVEY_ORIGIN
    return shapely.box(east + x0, north + y0, east + x1, north + y1)


@pytest.fixture
def survey_dir(tmp_path: Path) -> Path:
    """The footprints run's output folder."""
    return tmp_path / "out"


@pytest.fixture
def make_survey_image(survey_dir: Path) -> SurveyImageMaker:
    """``make_survey_image(name, (x0, y0, x1, y1), buildings, value=128, valid_x1=None)``.

    One image's outputs: ``{name}_prob.tif`` covers the box (metres from
    :data:`SURVEY_ORIGIN`) with ``value`` (with ``valid_x1``, only west of it: nodata 0
    beyond, a valid-data mask smaller than the bounds), and ``{name}_buildings.gpkg`` holds
    ``buildings`` (EPSG:32636 polygons), each with ``area_m2`` its area and ``confidence``
    0.5 + its index / 100, as footprints writes.
    """

    def make(
        name: str,
        extent: tuple[float, float, float, float],
        buildings: list[shapely.Polygon],
        value: int = 128,
        valid_x1: float | None = None,
    ) -> Path:
        x0, y0, x1, y1 = extent
        east, north = SURVEY_ORIGIN
        width, height = round((x1 - x0) / SURVEY_PIXEL), round((y1 - y0) / SURVEY_PIXEL)
        data = np.full((1, height, width), value, np.uint8)
        if valid_x1 is not None:
            data[:, :, round((valid_x1 - x0) / SURVEY_PIXEL) :] = 0
        write_raster(
            survey_dir / f"{name}_prob.tif",
            data,
            nodata=None if valid_x1 is None else 0,
            transform=from_origin(east + x0, north + y1, SURVEY_PIXEL, SURVEY_PIXEL),
        )
        gpkg = survey_dir / f"{name}_buildings.gpkg"
        pyogrio.raw.write(
            str(gpkg),
            geometry=shapely.to_wkb(np.array(buildings, dtype=object)),
            field_data=[
                np.full(len(buildings), "yes", dtype=object),
                np.array([round(b.area, 2) for b in buildings], np.float64),
                np.array([0.5 + k / 100 for k in range(len(buildings))], np.float64),
            ],
            fields=["building", "area_m2", "confidence"],
            layer="buildings",
            driver="GPKG",
            geometry_type="Polygon",
            crs="EPSG:32636",
        )
        return gpkg

    return make
