"""The review page in a real headless Chromium, offline: drawn, clickable, saves what is kept."""

import xml.etree.ElementTree as ET

import pytest

from benchmark.footprints.osm_write import building_fragments
from benchmark.footprints.review import ReviewFeature, write_review_page
from tests.footprints.conftest import BUILDINGS, SHED_BOX, lonlat_box
from tools.offline_browser import chromium_missing, offline_page

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))

COUNT_PATHS = "document.querySelectorAll('.leaflet-overlay-pane path').length"
LAYER_SIZES = (
    "Object.fromEntries(Object.entries(window.review.layers)"
    ".map(([k, v]) => [k, v.getLayers().length]))"
)


@pytest.fixture
def review_page(make_scene, tmp_path) -> str:
    """A page over the utm scene: two new buildings, one mapped, one changed, one not seen."""
    image = make_scene("utm", height=300, width=400, boxes=[*BUILDINGS, (20, 20, 60, 50)])
    new = [lonlat_box(BUILDINGS[1]), lonlat_box((20, 20, 60, 50))]
    fragments = building_fragments(new, "test")
    props = {"area_m2": 30.0, "confidence": 0.97}
    features = [
        *(ReviewFeature(p, "new", props, f) for p, f in zip(new, fragments, strict=True)),
        ReviewFeature(lonlat_box(BUILDINGS[0]), "mapped", {**props, "osm_id": "way/1000"}),
        ReviewFeature(lonlat_box((100, 60, 120, 90)), "changed", props),
        ReviewFeature(lonlat_box(SHED_BOX), "not_seen", {"osm_id": "way/1001"}),
    ]
    path = tmp_path / "utm_review.html"
    write_review_page("utm", image, features, str(path))
    return path.as_uri()


def test_offline_drawn_clicked_and_saved(review_page):
    with offline_page() as offline:
        page = offline.page
        page.goto(review_page)
        assert page.evaluate(COUNT_PATHS) == 5  # every building drawn
        assert page.evaluate(LAYER_SIZES) == {"new": 2, "mapped": 1, "changed": 1, "not_seen": 1}
        assert page.locator(".leaflet-image-layer").count() == 1  # the imagery overview

        page.locator("path.building-mapped").click()
        popup = page.locator(".leaflet-popup-content").inner_text()
        assert "mapped" in popup and "30.0 m²" in popup and "0.97" in popup
        assert "way/1000" in popup

        page.locator("path.building-new").first.click()
        page.locator("input.keep").uncheck()
        assert page.locator("#kept-count").inner_text() == "1 of 2 new buildings kept"
        with page.expect_download() as download:
            page.locator("#save-osm").click()
        assert download.value.suggested_filename == "utm_kept.osm"
        with open(download.value.path(), encoding="utf-8") as saved:
            root = ET.fromstring(saved.read())
        assert len(root.findall("way")) == 1 and len(root.findall("node")) == 4
        assert offline.blocked == [] and offline.errors == []
        page.evaluate("fetch('http://127.0.0.1:9/probe').catch(() => null)")  # the guard works
        assert offline.blocked == ["http://127.0.0.1:9/probe"]
