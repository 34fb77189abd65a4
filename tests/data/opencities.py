"""Generate a tiny catalog in the Open Cities layout, for tests (like torchgeo's data.py files).

``train_tier_1/catalog.json`` -> ``{area}/collection.json`` -> image items (RGBA uint8 GeoTIFF
at 7.5 cm, alpha 0 in a corner notch) and label items (GeoJSON in EPSG:4326 with a legacy
``crs`` member, one feature per line, a polygon crossing the image edge), mirroring the STAC
0.8.1 files of the real competition; plus ``test/{id}/{id}.tif`` chips without georeferencing
and a ``test/catalog.json`` listing them. Buildings are bright rectangles on darker ground.

Run ``python -m tests.data.opencities DIR`` to write one for a look.
"""

import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin

PIXEL = 0.075  # metres, as the Kampala sample
# Kampala-ish origin in UTM 36N (EPSG:32636); other CRSs get a same-shaped grid near 0.35 N.
ORIGIN = {"EPSG:32636": (455_000.0, 39_000.0), "EPSG:32737": (530_000.0, 9_250_000.0)}
CRS84 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}


@dataclass
class FixtureCatalog:
    """Where the generated catalog is and what it holds."""

    root: Path
    catalog_uri: str
    test_dir: str
    test_catalog_uri: str
    train_keys: list[str]
    valid_keys: list[str]
    test_chip_ids: list[str]


def _link(rel: str, href: str) -> dict:
    return {"rel": rel, "href": href, "type": "application/json"}


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if "type" not in obj and not obj["stac_version"].startswith("0."):
        # STAC 1.x catalogs and collections say what they are (0.8 ones do not).
        obj = {"type": "Collection" if "extent" in obj else "Catalog", **obj}
    path.write_text(json.dumps(obj, indent=4))


def _scene_pixels(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, list]:
    """RGBA image with bright rectangular roofs, and the roofs' pixel boxes (r0, c0, r1, c1)."""
    ground = rng.integers(40, 110, (3, height, width), dtype=np.uint8)
    boxes = []
    for _ in range(max(2, height * width // 900)):
        biggest = max(2, min(16, height // 2, width // 2))  # tiny chips get tiny roofs
        h, w = rng.integers(max(1, min(6, biggest - 1)), biggest, 2)
        r0, c0 = rng.integers(0, height - h), rng.integers(0, width - w)
        boxes.append((int(r0), int(c0), int(r0 + h), int(c0 + w)))
        ground[:, r0 : r0 + h, c0 : c0 + w] = rng.integers(190, 250, (3, 1, 1), dtype=np.uint8)
    alpha = np.full((1, height, width), 255, dtype=np.uint8)
    alpha[:, : height // 5, : width // 4] = 0  # the notch outside the imagery
    ground[:, alpha[0] == 0] = 0
    return np.concatenate([ground, alpha]), boxes


def _labels_geojson(boxes: list, transform, crs: str, width: int) -> str:
    to_wgs84 = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform
    # One building runs off the right edge of the image, as real labels do.
    boxes = [*boxes, (2, width - 6, 12, width + 10)]
    lines = []
    for i, (r0, c0, r1, c1) in enumerate(boxes):
        corners = [(c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0)]
        ring = [list(to_wgs84(*(transform @ corner))) for corner in corners]
        feature = {
            "type": "Feature",
            "properties": {"osm_id": 1000 + i, "building": "yes"},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }
        lines.append(json.dumps(feature))
    return (
        '{\n"type": "FeatureCollection",\n'
        f'"crs": {json.dumps(CRS84)},\n"features": [\n' + ",\n".join(lines) + "\n]\n}\n"
    )


def _write_scene(area_dir: Path, area: str, scene_id: str, rng, size, crs, stac_version) -> None:
    width, height = size
    x0, y0 = ORIGIN.get(crs, (500_000.0, 40_000.0))
    transform = from_origin(x0 + rng.integers(0, 1000) * PIXEL * 100, y0, PIXEL, PIXEL)
    pixels, boxes = _scene_pixels(rng, height, width)
    image = area_dir / scene_id / f"{scene_id}.tif"
    image.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=width, height=height, count=4, dtype="uint8")
    with rasterio.open(image, "w", crs=crs, transform=transform, **profile) as dst:
        dst.write(pixels)
    labels = area_dir / f"{scene_id}-labels" / f"{scene_id}.geojson"
    labels.parent.mkdir(parents=True, exist_ok=True)
    labels.write_text(_labels_geojson(boxes, transform, crs, width))

    common = {"stac_version": stac_version, "type": "Feature", "geometry": None}
    links = [_link("collection", "../collection.json"), _link("root", "../../catalog.json")]
    _write_json(
        image.with_suffix(".json"),
        {
            **common,
            "id": scene_id,
            "properties": {
                "area": area,
                "license": "CC-BY-4.0",
                "datetime": "2022-12-12 00:00:00Z",
            },
            "links": [*links, _link("parent", "../collection.json")],
            "assets": {"image": {"href": f"./{scene_id}.tif", "type": "image/tiff"}},
            "collection": area,
        },
    )
    _write_json(
        labels.parent / f"{scene_id}-labels.json",
        {
            **common,
            "id": f"{scene_id}-labels",
            "properties": {
                "label:description": f"Geojson building labels for scene {scene_id}",
                "area": area,
                "label:type": "vector",
                "license": "ODbL-1.0",
                "datetime": "2022-12-12 00:00:00Z",
            },
            "links": [*links, _link("parent", "../collection.json")],
            "assets": {"labels": {"href": f"./{scene_id}.geojson", "type": "application/geo+json"}},
        },
    )


def _write_test_chips(test_dir: Path, chip_ids, size: int, rng, stac_version: str) -> None:
    item_links = []
    for chip_id in chip_ids:
        pixels, _ = _scene_pixels(rng, size, size)
        chip = test_dir / chip_id / f"{chip_id}.tif"
        chip.parent.mkdir(parents=True, exist_ok=True)
        profile = dict(driver="GTiff", width=size, height=size, count=4, dtype="uint8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(chip, "w", **profile) as dst:
                dst.write(pixels)
        _write_json(
            chip.with_suffix(".json"),
            {
                "stac_version": stac_version,
                "type": "Feature",
                "id": chip_id,
                "geometry": None,
                "properties": {"datetime": "2020-01-01 00:00:00Z"},
                "links": [_link("root", "../catalog.json"), _link("parent", "../catalog.json")],
                "assets": {"image": {"href": f"./{chip_id}.tif", "type": "image/tiff"}},
            },
        )
        item_links.append(_link("item", f"./{chip_id}/{chip_id}.json"))
    _write_json(
        test_dir / "catalog.json",
        {
            "id": "test",
            "stac_version": stac_version,
            "description": "Test chips",
            "links": [*item_links, _link("root", "./catalog.json")],
        },
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
        root: output directory.
        scenes: (area, id, "train" or "valid") for each scene.
        scene_size: (width, height) of every scene in pixels.
        crs: the scenes' projected CRS.
        test_chip_ids: ids of the un-georeferenced test chips.
        test_chip_size: their side in pixels (1024 in the competition).
        seed: seeds the imagery.
        stac_version: "0.8.1" as the competition, or e.g. "1.0.0".
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    train_dir = root / "train_tier_1"
    areas: dict[str, list[str]] = {}
    for area, scene_id, _ in scenes:
        _write_scene(train_dir / area, area, scene_id, rng, scene_size, crs, stac_version)
        areas.setdefault(area, []).append(scene_id)
    for area, ids in areas.items():
        items = [
            _link("item", f"./{i}{suffix}/{i}{suffix}.json")
            for i in ids
            for suffix in ("", "-labels")
        ]
        _write_json(
            train_dir / area / "collection.json",
            {
                "id": area,
                "stac_version": stac_version,
                "description": f"Tier 1 training data from {area}",
                "links": [
                    *items,
                    _link("parent", "../catalog.json"),
                    _link("root", "../catalog.json"),
                ],
                "extent": {
                    "spatial": {"bbox": [[-180, -90, 180, 90]]},
                    "temporal": {"interval": [["2022-12-12T00:00:00Z", None]]},
                },
                "license": "various",
            },
        )
    _write_json(
        train_dir / "catalog.json",
        {
            "id": "train_tier_1",
            "stac_version": stac_version,
            "description": "Tier 1 training data and labels",
            "links": [_link("child", f"./{a}/collection.json") for a in areas]
            + [_link("root", "./catalog.json")],
        },
    )
    test_dir = root / "test"
    _write_test_chips(test_dir, test_chip_ids, test_chip_size, rng, stac_version)
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
    print(make_opencities_catalog(Path(sys.argv[1])))
