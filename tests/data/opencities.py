"""Generate a tiny catalog in the Open Cities layout, for tests (like torchgeo's data.py files).

``train_tier_1/catalog.json`` -> ``{area}/collection.json`` -> image items ``{id}/{id}.json``
(RGBA uint8 GeoTIFF at 7.5 cm, alpha 0 in a corner notch) and label items
``{id}-labels/{id}-labels.json`` (GeoJSON in EPSG:4326 with a legacy ``crs`` member, one
feature per line, one polygon running past the image edge). The STAC JSON copies the fields,
key order and link style of ``data/kampala_sample`` (itself a copy of the real competition's
0.8.1 files). Test chips are ``test/{id}/{id}.tif`` without georeferencing, listed by a
``test/catalog.json`` whose items point at them, as the competition's test catalog does.
Buildings are bright rectangles on darker textured ground, so a model can learn them.

Run ``python -m tests.data.opencities DIR`` to write one for a look.
"""

import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin

PIXEL = 0.075  # metres, as the Kampala sample and the competition imagery
# Kampala in UTM 36N as the sample; a same-shaped place near the equator for other CRSs.
ORIGIN = {"EPSG:32636": (455_000.0, 39_000.0), "EPSG:32737": (530_000.0, 9_960_000.0)}
DEFAULT_ORIGIN = (500_000.0, 40_000.0)
CRS84 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
DATE = "2022-12-12"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
LABEL_SCHEMA = "https://stac-extensions.github.io/label/v1.0.1/schema.json"


@dataclass
class FixtureCatalog:
    """Where the generated catalog is and what it holds."""

    root: Path
    catalog_uri: str  # train_tier_1/catalog.json
    test_dir: str  # holds {id}/{id}.tif and catalog.json
    test_catalog_uri: str
    train_keys: list[str]  # "area/id"
    valid_keys: list[str]
    test_chip_ids: list[str]

    @property
    def scene_keys(self) -> list[str]:
        """Every scene, training then validation."""
        return self.train_keys + self.valid_keys

    def scene_args(self, root_uri: str, train_stac_uri: str | None = None) -> dict[str, str]:
        """Experiment arguments for this catalog: its first training and validation scenes."""
        return {
            "root_uri": root_uri,
            "train_stac_uri": train_stac_uri or self.catalog_uri,
            "train_ids": self.train_keys[0],
            "valid_ids": self.valid_keys[0],
        }


def cli_args(args: dict[str, str]) -> list[str]:
    """Experiment arguments as the ``rastervision`` CLI takes them: ``-a key value ...``."""
    return [item for key, value in args.items() for item in ("-a", key, value)]


def _link(rel: str, href: str) -> dict:
    return {"rel": rel, "href": href, "type": "application/json"}


class _Stac:
    """Writes STAC JSON in the style of the given version (0.8.1 as the competition, or 1.x)."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.legacy = version.startswith("0.")

    def datetime(self) -> str:
        # The competition writes "YYYY-MM-DD 00:00:00Z"; 1.x requires RFC 3339.
        return f"{DATE} 00:00:00Z" if self.legacy else f"{DATE}T00:00:00Z"

    def label_extension(self) -> list[str]:
        return ["label"] if self.legacy else [LABEL_SCHEMA]

    def write(self, path: Path, obj: dict, kind: str) -> None:
        """``kind``: "Catalog", "Collection" or "Feature" (0.8 catalogs carry no type)."""
        if kind != "Feature" and not self.legacy:
            obj = {"type": kind, **obj}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=4))


def _paint(rng: np.random.Generator, height: int, width: int, extra: tuple = ()) -> tuple:
    """RGBA pixels with bright roofs, and the roofs' pixel boxes (row0, col0, row1, col1).

    ``extra`` boxes are painted too (clipped to the image) and returned with the others.
    """
    ground = rng.integers(40, 110, (3, height, width), dtype=np.uint8)
    biggest = max(2, min(16, height // 2, width // 2))  # tiny chips get tiny roofs
    boxes = []
    for _ in range(max(2, height * width // 900)):
        h, w = rng.integers(max(1, min(6, biggest - 1)), biggest, 2)
        r0, c0 = int(rng.integers(0, height - h)), int(rng.integers(0, width - w))
        boxes.append((r0, c0, r0 + int(h), c0 + int(w)))
    boxes += extra
    for r0, c0, r1, c1 in boxes:
        ground[:, r0:r1, c0:c1] = rng.integers(190, 250, (3, 1, 1), dtype=np.uint8)
    alpha = np.full((1, height, width), 255, dtype=np.uint8)
    alpha[:, : height // 5, : width // 4] = 0  # a notch without imagery, as scene 94f080
    ground[:, alpha[0] == 0] = 0  # RGB is 0 where alpha is, as in the sample
    return np.concatenate([ground, alpha]), boxes


def _lonlat_ring(pixels: list, transform: Affine, to_wgs84, decimals: int) -> list:
    """(col, row) pixel corners -> closed lon/lat ring."""
    ring = [to_wgs84(*(transform @ p)) for p in [*pixels, pixels[0]]]
    return [[round(x, decimals), round(y, decimals)] for x, y in ring]


def _labels_geojson(boxes: list, transform: Affine, to_wgs84) -> tuple[str, int]:
    """The real files' style: GDAL-like, crs member, one feature per line, 7 decimals (1 cm)."""
    lines = []
    for i, (r0, c0, r1, c1) in enumerate(boxes):
        ring = _lonlat_ring([(c0, r0), (c1, r0), (c1, r1), (c0, r1)], transform, to_wgs84, 7)
        feature = {
            "type": "Feature",
            "properties": {"osm_id": 600_000_000 + i, "building": "yes"},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }
        lines.append(json.dumps(feature))
    text = (
        '{\n"type": "FeatureCollection",\n'
        f'"crs": {json.dumps(CRS84)},\n"features": [\n' + ",\n".join(lines) + "\n]\n}\n"
    )
    return text, len(lines)


def _footprint(width: int, height: int, transform: Affine, to_wgs84) -> tuple[dict, list]:
    """The alpha-255 outline (the image less its notch) in EPSG:4326, and its bbox."""
    notch_w, notch_h = width // 4, height // 5
    corners = [(width, 0), (width, height), (0, height), (0, notch_h), (notch_w, notch_h)]
    ring = _lonlat_ring([*corners, (notch_w, 0)], transform, to_wgs84, 12)
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return {"type": "Polygon", "coordinates": [ring]}, [min(xs), min(ys), max(xs), max(ys)]


def _write_scene(
    area_dir: Path, area: str, scene_id: str, index: int, rng, size, crs, stac: _Stac
) -> list:
    """Image, labels and both STAC items of one scene; returns the scene's bbox."""
    width, height = size
    x0, y0 = ORIGIN.get(crs, DEFAULT_ORIGIN)
    transform = from_origin(x0 + index * (width + 40) * PIXEL, y0, PIXEL, PIXEL)  # side by side
    to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform
    # One building runs off the right edge of the image, as real labels do.
    pixels, boxes = _paint(rng, height, width, extra=((2, width - 6, 12, width + 10),))
    image = area_dir / scene_id / f"{scene_id}.tif"
    image.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="GTiff", width=width, height=height, count=4, dtype="uint8", crs=crs,
        transform=transform, compress="deflate", predictor=2, photometric="RGB", alpha="YES",
    )  # fmt: skip
    with rasterio.open(image, "w", **profile) as dst:
        dst.write(pixels)
    geojson, count = _labels_geojson(boxes, transform, to_wgs84)
    labels = area_dir / f"{scene_id}-labels" / f"{scene_id}.geojson"
    labels.parent.mkdir(parents=True, exist_ok=True)
    labels.write_text(geojson)

    geometry, bbox = _footprint(width, height, transform, to_wgs84)
    links = [
        _link("collection", "../collection.json"),
        _link("root", "../../catalog.json"),
        _link("parent", "../collection.json"),
    ]
    stac.write(
        image.with_suffix(".json"),
        {
            "type": "Feature",
            "stac_version": stac.version,
            "id": scene_id,
            "properties": {"area": area, "license": "CC-BY-4.0", "datetime": stac.datetime()},
            "geometry": geometry,
            "bbox": bbox,
            "links": links,
            "assets": {"image": {"href": f"./{scene_id}.tif", "type": COG, "title": "GeoTIFF"}},
            "collection": area,
        },
        "Feature",
    )
    overview = {"property_key": ["building"] if stac.legacy else "building"}
    stac.write(
        labels.parent / f"{scene_id}-labels.json",
        {
            "type": "Feature",
            "stac_version": stac.version,
            "id": f"{scene_id}-labels",
            "properties": {
                "label:description": f"Geojson building labels for scene {scene_id}",
                "area": area,
                "label:type": "vector",
                "label:properties": ["building"],
                "label:overviews": [{**overview, "counts": [{"name": "yes", "count": count}]}],
                "license": "ODbL-1.0",
                "datetime": stac.datetime(),
            },
            "geometry": geometry,
            "bbox": bbox,
            "links": [*links, _link("source", f"../{scene_id}/{scene_id}.json")],
            "assets": {"labels": {"href": f"./{scene_id}.geojson", "type": "application/geo+json"}},
            "stac_extensions": stac.label_extension(),
        },
        "Feature",
    )
    return bbox


def _write_train_catalog(train_dir: Path, scenes, rng, size, crs, stac: _Stac) -> None:
    areas: dict[str, list[tuple[str, list]]] = {}
    for index, (area, scene_id, _) in enumerate(scenes):
        bbox = _write_scene(train_dir / area, area, scene_id, index, rng, size, crs, stac)
        areas.setdefault(area, []).append((scene_id, bbox))
    for area, members in areas.items():
        west, south, east, north = zip(*(bbox for _, bbox in members), strict=True)
        stac.write(
            train_dir / area / "collection.json",
            {
                "id": area,
                "stac_version": stac.version,
                "description": f"Tier 1 training data from {area}",
                "links": [
                    *(
                        _link("item", f"./{i}{suffix}/{i}{suffix}.json")
                        for i, _ in members
                        for suffix in ("", "-labels")
                    ),
                    _link("parent", "../catalog.json"),
                    _link("root", "../catalog.json"),
                ],
                "extent": {
                    "spatial": {"bbox": [[min(west), min(south), max(east), max(north)]]},
                    "temporal": {"interval": [[f"{DATE}T00:00:00Z", None]]},
                },
                "license": "various",
                "stac_extensions": stac.label_extension(),
            },
            "Collection",
        )
    stac.write(
        train_dir / "catalog.json",
        {
            "id": "train_tier_1",
            "stac_version": stac.version,
            "description": "Tier 1 training data and labels",
            "links": [
                *(_link("child", f"./{area}/collection.json") for area in areas),
                _link("root", "./catalog.json"),
            ],
        },
        "Catalog",
    )


def _write_test_chips(test_dir: Path, chip_ids, size: int, rng, stac: _Stac) -> None:
    """Chips without CRS or transform (as the real ones), and the catalog listing them."""
    profile = dict(
        driver="GTiff", width=size, height=size, count=4, dtype="uint8", photometric="RGB"
    )
    for chip_id in chip_ids:
        chip = test_dir / chip_id / f"{chip_id}.tif"
        chip.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(chip, "w", **profile) as dst:
                dst.write(_paint(rng, size, size)[0])
        stac.write(
            chip.with_suffix(".json"),
            {
                "type": "Feature",
                "stac_version": stac.version,
                "id": chip_id,
                "properties": {"datetime": stac.datetime()},
                "geometry": None,  # the chips are not georeferenced
                "links": [_link("root", "../catalog.json"), _link("parent", "../catalog.json")],
                "assets": {
                    "image": {
                        "href": f"./{chip_id}.tif",
                        "type": "image/tiff; application=geotiff",
                        "title": "GeoTIFF",
                    }
                },
            },
            "Feature",
        )
    stac.write(
        test_dir / "catalog.json",
        {
            "id": "test",
            "stac_version": stac.version,
            "description": "Test chips",
            "links": [
                *(_link("item", f"./{i}/{i}.json") for i in chip_ids),
                _link("root", "./catalog.json"),
            ],
        },
        "Catalog",
    )


def make_opencities_catalog(
    root: Path,
    *,
    scenes: tuple[tuple[str, str, str], ...] = (
        ("kam", "aaa111", "train"),
        ("kam", "bbb222", "valid"),
    ),
    scene_size: tuple[int, int] = (96, 80),
    crs: str = "EPSG:32636",
    test_chip_ids: tuple[str, ...] = ("c0ffee", "decade"),
    test_chip_size: int = 1024,
    seed: int = 0,
    stac_version: str = "0.8.1",
) -> FixtureCatalog:
    """Write the catalog under ``root`` (see the module docstring) and say what it holds.

    Args:
        root: output directory (``train_tier_1/`` and ``test/`` are made in it).
        scenes: (area, id, "train" or "valid") for each scene; scenes lie side by side.
        scene_size: (width, height) of every scene in pixels.
        crs: the scenes' projected CRS (any; UTM 36N as Kampala by default).
        test_chip_ids: ids of the un-georeferenced test chips.
        test_chip_size: their side in pixels (1024 in the competition; tests that run a
            model use small ones).
        seed: seeds the imagery.
        stac_version: "0.8.1" as the competition, or e.g. "1.0.0".
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    stac = _Stac(stac_version)
    train_dir = root / "train_tier_1"
    _write_train_catalog(train_dir, scenes, rng, scene_size, crs, stac)
    test_dir = root / "test"
    _write_test_chips(test_dir, test_chip_ids, test_chip_size, rng, stac)
    return FixtureCatalog(
        root=root,
        catalog_uri=str(train_dir / "catalog.json"),
        test_dir=str(test_dir),
        test_catalog_uri=str(test_dir / "catalog.json"),
        train_keys=[f"{a}/{i}" for a, i, role in scenes if role == "train"],
        valid_keys=[f"{a}/{i}" for a, i, role in scenes if role == "valid"],
        test_chip_ids=list(test_chip_ids),
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.data.opencities OUT_DIR")
    sys.stdout.write(f"{make_opencities_catalog(Path(sys.argv[1]))}\n")
