"""``benchmark-footprints --osm/--overpass``: every OSM output; a bad source loses nothing."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pyogrio
import pytest
import shapely

from benchmark.cli.footprints import main
from benchmark.footprints.osm_input import read_osm_file
from tests.fixtures.models import bundle_loader
from tests.footprints.conftest import MAPPED_BOX, SHED_BOX, lonlat_box, osm_xml, overpass_answer

FOOTPRINTS = ["utm_buildings.geojson", "utm_buildings.gpkg", "utm_prob.tif"]
OSM_OUTPUTS = [
    "utm_conflation.gpkg", "utm_coverage.json", "utm_coverage.png", "utm_maproulette.geojson",
    "utm_new.osc", "utm_new.osm", "utm_review.html",
]  # fmt: skip
EXISTING = [lonlat_box(MAPPED_BOX), lonlat_box(SHED_BOX)]


@pytest.fixture(autouse=True)
def fresh_cache():
    read_osm_file.cache_clear()


def outline(image: str, out: Path, *more: str) -> int:
    args = ["b.zip", image, str(out), "--no-fast", "--device", "cpu", *more]
    return main(args, load_bundle=bundle_loader(window=64))


def written(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_file())


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_osm_extract_gives_every_output(make_scene, tmp_path):
    image = make_scene("utm")
    extract = tmp_path / "kampala.osm"
    extract.write_text(osm_xml(EXISTING, bounds=shapely.box(32.5, 0.3, 32.7, 0.4)))
    out = tmp_path / "out"
    assert outline(image, out, "--osm", str(extract)) == 0
    assert written(out) == sorted(FOOTPRINTS + OSM_OUTPUTS)

    found = pyogrio.read_dataframe(out / "utm_conflation.gpkg", layer="footprints")
    by_area = found.sort_values("area_m2", ascending=False)
    assert list(by_area.status) == ["mapped", "new"]
    assert list(by_area.osm_id) == ["way/1000", ""]
    known = pyogrio.read_dataframe(out / "utm_conflation.gpkg", layer="existing")
    assert dict(zip(known.osm_id, known.status, strict=True)) == {
        "way/1000": "seen", "way/1001": "not_seen"
    }  # fmt: skip
    new = ET.parse(out / "utm_new.osm").getroot()
    assert len(new.findall("way")) == 1
    task, end = (out / "utm_maproulette.geojson").read_text().split("\n")  # \x1e splits lines
    assert end == ""
    assert len(json.loads(task.lstrip("\x1e"))["features"]) == 1
    coverage = json.loads((out / "utm_coverage.json").read_text())
    assert (coverage["found"], coverage["in_osm"], coverage["new"]) == (2, 1, 1)


def test_overpass_asked_for_the_image(make_scene, tmp_path, overpass):
    overpass.answer_json(overpass_answer(EXISTING))
    out = tmp_path / "out"
    assert outline(make_scene("utm"), out, "--overpass", overpass.url) == 0
    assert written(out) == sorted(FOOTPRINTS + OSM_OUTPUTS)
    assert len(overpass.queries) == 1


@pytest.mark.parametrize("source", ["unreadable", "overpass_timeout"])
def test_bad_source_keeps_the_footprints_and_a_rerun_adds_the_rest(
    make_scene, tmp_path, overpass, capsys, source
):
    image = make_scene("utm")
    out = tmp_path / "out"
    if source == "unreadable":
        extract = tmp_path / "broken.osm"
        extract.write_text("<osm><node id=")
        args = ["--osm", str(extract)]
    else:
        overpass.hang = True
        args = ["--overpass", overpass.url, "--overpass-timeout", "0.2"]
    assert outline(image, out, *args) == 1
    (line,) = error_lines(capsys.readouterr().err)
    named = str(extract) if source == "unreadable" else overpass.url
    assert line.startswith(f"error: 1 image(s) without OSM outputs: {named}: ")
    assert written(out) == FOOTPRINTS
    traced = (out / "utm_prob.tif").stat().st_mtime_ns

    good = tmp_path / "good.osm"
    good.write_text(osm_xml(EXISTING))
    assert outline(image, out, "--osm", str(good)) == 0
    assert written(out) == sorted(FOOTPRINTS + OSM_OUTPUTS)
    assert (out / "utm_prob.tif").stat().st_mtime_ns == traced  # not traced again
    assert outline(image, out, "--osm", str(good)) == 0  # all done: skipped
