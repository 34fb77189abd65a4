"""``wb_scripts/bench --only footprints``: footprints against their limits, and against RV 0.31.

- peak_rss_mb_footprints_40k: ``benchmark-footprints``' work (prediction at the bundle's GSD,
  tracing, outlines, GeoJSON, GeoPackage, COG) on a generated 40,000 x 40,000 px scene, in a
  fresh process with the demo's bundle.
- footprints_vs_raster_ratio: its wall time / that of the probability raster alone on the same
  scene (prediction at the GSD, brought back onto the scene's grid), each in a fresh process.
- The same two vectorizations of one probability raster, ours and Raster Vision 0.31's
  ``PolygonVectorOutputConfig.vectorize`` (what ``rastervision predict`` runs: the whole
  scene's mask in memory, no simplification): seconds and peak memory on the 40,000 px scene's
  raster, and on the Kampala validation scene's also per-building F1 at IoU >= 0.5 against the
  OpenStreetMap labels.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pyogrio.raw
import rasterio
import shapely

from tools.measure import python_in_child

if TYPE_CHECKING:
    from benchmark.pipeline.bundle import LoadedBundle

GOALS = {
    "peak_rss_mb_footprints_40k": ("<=", 2000.0),
    "footprints_vs_raster_ratio": ("<=", 1.3),
}

_SETTINGS = """
import sys
from benchmark.footprints.inputs import ImageRef
from benchmark.footprints.run import FootprintSettings
from benchmark.inference.execution import InferenceOptions, prepare_model
from benchmark.pipeline.bundle import load_bundle
bundle = load_bundle(sys.argv[1])
settings = FootprintSettings(
    threshold=bundle.threshold, prediction=bundle.prediction(InferenceOptions()), overwrite=True
)
model = prepare_model(bundle.model, settings.prediction.options)
"""
FOOTPRINTS = (
    _SETTINGS
    + """
from benchmark.footprints.run import footprints_for_images
footprints_for_images(model, [ImageRef("scene", sys.argv[2])], sys.argv[3], settings)
"""
)
RASTER_ONLY = (
    _SETTINGS
    + """
from benchmark.footprints.probabilities import predict_on_image_grid
predict_on_image_grid(model, sys.argv[2], sys.argv[3], settings.prediction)
"""
)
OUR_VECTORIZE = """
import sys
from benchmark.footprints.outlines import OutlineOptions, footprints_of_raster
from benchmark.footprints.write import write_footprints
import rasterio
import time
start = time.perf_counter()
prob, threshold, gsd, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
with rasterio.open(prob) as src:
    crs = src.crs.to_wkt()
found = footprints_of_raster(prob, threshold, OutlineOptions(simplify=gsd))
write_footprints(found, out + ".geojson", out + ".gpkg", crs)
print(f"WORK_S={time.perf_counter() - start}", file=sys.stderr)
"""
RV_VECTORIZE = """
import json, sys
import numpy as np, rasterio, shapely
from shapely.affinity import affine_transform
from rastervision.core.data.label_store.semantic_segmentation_label_store_config import (
    PolygonVectorOutputConfig,
)
from benchmark.inference.forward import probability_to_mask
import time
start = time.perf_counter()
prob, threshold, out = sys.argv[1], float(sys.argv[2]), sys.argv[4]
with rasterio.open(prob) as src:
    mask = probability_to_mask(src.read(1), threshold)
    transform = src.transform.to_shapely()
polygons = PolygonVectorOutputConfig(class_id=1).vectorize(mask)
placed = [affine_transform(p, transform) for p in polygons]
with open(out + ".geojson", "w") as f:
    json.dump([shapely.to_geojson(p) for p in placed], f)
print(f"WORK_S={time.perf_counter() - start}", file=sys.stderr)
"""


def measure_city_scale(bundle: Path, loaded: "LoadedBundle", scene: Path, out: Path) -> dict:
    """Footprints' peak memory and time vs the probability raster alone, on ``scene``.

    Then both vectorizations of that raster (``vectorize_40k_s_ours``, ``..._rv``). ``loaded``
    is ``bundle`` loaded (its threshold and GSD); the children load it themselves.
    """
    with rasterio.open(scene) as src:
        size = src.width
    prob = out / "p.tif"
    raster_s, raster_mb = python_in_child(RASTER_ONLY, str(bundle), str(scene), str(prob))
    foot_s, foot_mb = python_in_child(FOOTPRINTS, str(bundle), str(scene), str(out / "fp"))
    vectorized = {
        f"vectorize_40k_{measure}_{name}": value
        for name, (polygons, seconds, peak) in _vectorize_both(prob, loaded, out / "big").items()
        for measure, value in (("s", seconds), ("peak_rss_mb", peak), ("buildings", len(polygons)))
    }
    return {
        "footprints_scene_px": size,
        "raster_only_s": raster_s,
        "peak_rss_mb_raster_only": raster_mb,
        "footprints_s": foot_s,
        "peak_rss_mb_footprints_40k": foot_mb,
        "footprints_vs_raster_ratio": foot_s / raster_s,
        **vectorized,
    }


def _vectorize_both(prob: Path, bundle: "LoadedBundle", stem: Path) -> dict[str, tuple]:
    """Ours and RV's vectorization of ``prob``, each in its own process: (polygons, s, MB)."""
    results = {}
    for name, code, suffix in (("ours", OUR_VECTORIZE, ".gpkg"), ("rv", RV_VECTORIZE, ".geojson")):
        out = Path(f"{stem}_{name}")
        seconds, peak = python_in_child(
            code, str(prob), str(bundle.threshold), str(bundle.gsd or 0.0), str(out)
        )
        results[name] = (_read_polygons(out.with_suffix(suffix)), seconds, peak)
    return results


def _read_polygons(path: Path) -> list:
    """Polygons of our GeoPackage or of the RV script's list of GeoJSON geometries."""
    if path.suffix == ".gpkg":
        _, _, wkb, _ = pyogrio.raw.read(str(path))
        return list(shapely.from_wkb(wkb))
    return [shapely.from_geojson(g) for g in json.loads(path.read_text())]


def measure_against_rv(
    bundle: Path, loaded: "LoadedBundle", image: Path, labels: Path, out: Path
) -> dict:
    """Ours vs RV 0.31's vectorization of one probability raster: time, memory, F1."""
    from benchmark.data.labels import LabelRasterizer, read_building_labels
    from benchmark.evaluation.buildings import count_buildings, truth_in_raster
    from benchmark.footprints.outlines import DEFAULT_MIN_AREA

    prob = out / "kampala_prob.tif"
    python_in_child(RASTER_ONLY, str(bundle), str(image), str(prob))
    geoms, _ = read_building_labels(str(labels))
    with rasterio.open(prob) as src:
        truth = truth_in_raster(LabelRasterizer(geoms, src.crs).geoms, src, DEFAULT_MIN_AREA)
    results: dict = {}
    for name, (polygons, seconds, peak) in _vectorize_both(prob, loaded, out / "kampala").items():
        counts = count_buildings(polygons, truth)
        results |= {
            f"kampala_vectorize_s_{name}": seconds,
            f"kampala_vectorize_peak_rss_mb_{name}": peak,
            f"kampala_building_f1_{name}": counts.f1,
            f"kampala_buildings_{name}": counts.tp + counts.fp,
        }
    results["kampala_true_buildings"] = len(truth)
    return results
