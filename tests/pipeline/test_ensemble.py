"""``-a ensemble``: predict averages models, bundle packs them, every loader gets the average."""

import zipfile

import pytest

from benchmark.data import layout
from benchmark.errors import InputError
from benchmark.inference.ensemble import EnsembleModel
from benchmark.pipeline.bundle import add_bundle_info, load_bundle
from tests.fixtures.cli import EXPERIMENT
from tests.fixtures.runs import build_pipeline, copy_run, differences

pytestmark = pytest.mark.slow


def test_an_ensemble_of_a_model_with_itself_predicts_as_the_model(finished_run, tmp_path):
    root = copy_run(finished_run, tmp_path, "split_images", f"train/{EXPERIMENT}")
    pipeline = build_pipeline(root, preprocess=False, tmp_path=tmp_path)
    learner_bundle = layout.model_bundle_uri(pipeline.config.train_uri)
    pipeline.config.inference.ensemble = [learner_bundle]
    pipeline.predict()
    pipeline.bundle()

    # Averaging a model with itself changes nothing, beyond float rounding.
    assert differences(root, finished_run, f"predict/{EXPERIMENT}", tolerance=1) == []
    bundle_uri = pipeline.config.get_model_bundle_uri()
    loaded = load_bundle(bundle_uri)
    assert isinstance(loaded.model, EnsembleModel) and len(loaded.model.members) == 2
    assert loaded.info["ensemble"] == [layout.ensemble_member_name(1)]

    # A bundle that lists a member it lacks is refused, naming it.
    add_bundle_info(bundle_uri, {**loaded.info, "ensemble": ["gone.zip"]}, str(tmp_path))
    with pytest.raises(InputError, match=r"ensemble member gone\.zip is missing"):
        load_bundle(bundle_uri)
    with zipfile.ZipFile(bundle_uri) as zf:  # the rewrite drops nothing it was not asked to
        assert layout.ensemble_member_name(1) in zf.namelist()
