"""``{name}_review.html``: one self-contained page to review an image's footprints offline.

A reviewer opens it from disk with no network: Leaflet (vendored from the npm package
``leaflet`` 1.9.4 with its licence in ``review_assets/``), the data and the imagery are all in
the file. The imagery is an overview picture (at most :data:`OVERVIEW_SIDE` px, warped to
lon/lat, a base64 PNG) placed by its bounds on plain lon/lat axes: no tiles, no web map
projection. Layers: new, mapped, changed footprints and the OSM buildings not seen; a click
shows a building's status, area and confidence (and its OSM id); each new building has a
"keep" checkbox, and "Save kept as .osm" downloads the kept ones as JOSM XML, made of the
same fragments as ``{name}_new.osm`` (:mod:`benchmark.footprints.osm_write`).
"""

import base64
import io
import json
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np
import rasterio
import shapely
from PIL import Image
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject

from benchmark.data.uris import atomic_output
from benchmark.footprints.ground import WGS84
from benchmark.footprints.osm_write import OSM_FOOTER, OSM_HEADER

OVERVIEW_SIDE = 1600  # px: sharp on a screen, a few hundred kB as PNG
_ASSETS = resources.files("benchmark.footprints") / "review_assets"
# Leaflet's CSS points at marker and layer-switcher icons in images/; the page uses neither
# (no markers, the layer list always open), and a missing file would be a request for nothing.
_CSS_IMAGES = re.compile(r"url\(images/[^)]*\)")
_PLACEHOLDER = re.compile(r"__(LEAFLET_CSS|LEAFLET_JS|TITLE|DATA)__")


@dataclass(frozen=True)
class ReviewFeature:
    """A building on the page: lon/lat outline, status, and what its popup shows."""

    lonlat: shapely.Geometry  # a Polygon or MultiPolygon
    status: str
    properties: dict  # area_m2, confidence, osm_id (any may be missing)
    fragment: str = ""  # its OSM XML, for new buildings


def overview_png(image_uri: str, side: int = OVERVIEW_SIDE) -> tuple[str, list[float]]:
    """The image downsampled and warped to lon/lat: a ``data:`` URL and [W, S, E, N]."""
    with rasterio.open(image_uri) as src:
        scale = min(1.0, side / max(src.width, src.height))
        height, width = max(1, round(src.height * scale)), max(1, round(src.width * scale))
        rgb = src.read([1, 2, 3], out_shape=(3, height, width), resampling=Resampling.average)
        valid = src.dataset_mask(out_shape=(height, width), resampling=Resampling.nearest)
        transform = src.transform * src.transform.scale(src.width / width, src.height / height)
        bounds = rasterio.transform.array_bounds(height, width, transform)
        dst_transform, dst_w, dst_h = calculate_default_transform(
            src.crs, WGS84, width, height, *bounds
        )
        rgba = np.zeros((4, dst_h, dst_w), np.uint8)
        for band, data in enumerate([*rgb, valid]):
            reproject(
                data, rgba[band], src_transform=transform, src_crs=src.crs,
                dst_transform=dst_transform, dst_crs=WGS84, resampling=Resampling.bilinear,
            )  # fmt: skip
    buffer = io.BytesIO()
    Image.fromarray(np.moveaxis(rgba, 0, -1), "RGBA").save(buffer, format="PNG", optimize=True)
    west, north = dst_transform * (0, 0)
    east, south = dst_transform * (dst_w, dst_h)
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return url, [west, south, east, north]


def _rings(geom: shapely.Geometry) -> list:
    """Leaflet's nesting: a polygon's rings of [lon, lat], or a list of those (multipolygon)."""
    if isinstance(geom, shapely.MultiPolygon):
        return [_rings(part) for part in geom.geoms]
    rings = [geom.exterior, *geom.interiors]
    return [np.round(np.asarray(r.coords), 7).tolist() for r in rings]


def review_page(name: str, image_uri: str, features: list[ReviewFeature]) -> str:
    """The page's HTML (see the module docstring)."""
    overview, bounds = overview_png(image_uri)
    data = {
        "name": name,
        "bounds": bounds,
        "overview": overview,
        "osm_header": OSM_HEADER,
        "osm_footer": OSM_FOOTER,
        "features": [
            {"status": f.status, "rings": _rings(f.lonlat), "fragment": f.fragment, **f.properties}
            for f in features
        ],
    }
    css = _CSS_IMAGES.sub("none", (_ASSETS / "leaflet.css").read_text(encoding="utf-8"))
    # "</" inside a <script> would end it early; JSON allows "<\/".
    embedded = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    values = {
        "LEAFLET_CSS": css,
        "LEAFLET_JS": (_ASSETS / "leaflet.js").read_text(encoding="utf-8"),
        "TITLE": name.replace("&", "&amp;").replace("<", "&lt;"),
        "DATA": embedded,
    }
    template = (_ASSETS / "review.html").read_text(encoding="utf-8")
    # One pass, so nothing inserted (Leaflet's code, the data) is searched for placeholders.
    page = _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
    return page


def write_review_page(name: str, image_uri: str, features: list[ReviewFeature], uri: str) -> None:
    """Write the review page to ``uri`` (local or s3://), atomically."""
    page = review_page(name, image_uri, features)
    with atomic_output(uri) as path, open(path, "w", encoding="utf-8") as out:
        out.write(page)
