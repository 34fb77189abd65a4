"""Self-training's prediction of the unlabeled imagery, with no model (rounds: tests/pipeline)."""

from types import SimpleNamespace

import pytest

from benchmark.inference.chips import ChipFolderReport
from benchmark.inference.execution import InferenceOptions
from benchmark.training import self_training


@pytest.fixture
def config() -> SimpleNamespace:
    """What ``_predict_unlabeled`` reads of a benchmark config: two test chips, no image."""
    chips = [SimpleNamespace(id=name, uri=f"/chips/{name}.tif") for name in ("good", "broken")]
    return SimpleNamespace(
        self_training=SimpleNamespace(test_chips=True, image_uris=[]),
        inference=SimpleNamespace(options=InferenceOptions, window=None, overlap=0),
        test_chips=chips,
        test_chip_gsd=None,
        gsd=None,
        test_chip_size=1024,
    )


def test_an_unreadable_test_chip_is_left_out_not_fatal(config, monkeypatch, tmp_path):
    report = ChipFolderReport(written=["good"], bad={"broken": "not a GeoTIFF"})
    monkeypatch.setattr(self_training, "load_learner_models", lambda *_: None)
    monkeypatch.setattr(self_training, "predict_chip_folder", lambda *_, **__: report)

    images = self_training._predict_unlabeled(config, "model", str(tmp_path), str(tmp_path))

    assert [image.name for image in images] == ["good"]
