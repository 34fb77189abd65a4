"""Fixtures of the data tests: catalogs (read only through our STAC I/O), label sources."""

from collections.abc import Callable
from pathlib import Path

import pystac
import pytest
from rastervision.core.data import ClassConfig, LabelSource, RasterioSourceConfig, SceneConfig

from benchmark.data.label_source import NoDataAsBackgroundLabelSourceConfig
from benchmark.experiments.benchmark import training_labels_config
from tests.fixtures.opencities import make_opencities_catalog

CLASSES = ClassConfig(names=["background", "building"], null_class="background")


class _NoDefaultStacIO(pystac.StacIO):
    """Fails any read pystac makes without our StacIO (it could not read s3:// offline)."""

    def read_text(self, source, *args, **kwargs):
        raise AssertionError(f"pystac's default StacIO read {source}")

    def write_text(self, dest, txt, *args, **kwargs):
        raise AssertionError(f"pystac's default StacIO wrote {dest}")


@pytest.fixture(autouse=True)
def _only_our_stac_io(monkeypatch):
    monkeypatch.setattr(pystac.StacIO, "_default_io", _NoDefaultStacIO)


@pytest.fixture
def catalog(tmp_path):
    return make_opencities_catalog(tmp_path, test_chip_size=8)


@pytest.fixture
def label_source(tmp_path: Path) -> Callable[..., LabelSource]:
    """``label_source(image_uri, labels_uri, config=NoDataAsBackgroundLabelSourceConfig)``.

    The training label source of a scene, as the benchmark experiment configures it: the
    buildings of a GeoJSON rasterized on the image's grid.
    """

    def build(image_uri: str, labels_uri: str, config: type = NoDataAsBackgroundLabelSourceConfig):
        labels = training_labels_config(labels_uri)
        scene = SceneConfig(
            id="s",
            raster_source=RasterioSourceConfig(uris=[image_uri], channel_order=[0, 1, 2]),
            label_source=config(raster_source=labels, image_uri=image_uri),
        )
        return scene.build(CLASSES, str(tmp_path)).label_source

    return build
