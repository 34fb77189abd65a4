"""``eval`` on a finished tiny run: the decision threshold each choice asks for, and its report."""

import pytest

from benchmark.data import layout
from benchmark.data.uris import read_json, uri_exists, write_json
from benchmark.evaluation.evaluate import THRESHOLDS
from tests.fixtures.cli import EXPERIMENT
from tests.fixtures.runs import build_pipeline, copy_run


@pytest.mark.slow
def test_eval_decides_with_the_threshold_asked_for(finished_run, tmp_path, fake_gpus):
    parts = [f"{command}/{EXPERIMENT}" for command in ("chip", "train", "predict")]
    root = copy_run(finished_run, tmp_path, "split_images", *parts)
    pipeline = build_pipeline(root, preprocess=False, tmp_path=tmp_path)
    cfg = pipeline.config

    def evaluate() -> dict:
        pipeline.eval()
        return read_json(layout.eval_report_uri(cfg.eval_uri))

    report = evaluate()
    assert report["decision_threshold"] == 0.5
    assert report["threshold_choice"] == "fixed" and report["threshold_tuned"] is False
    assert uri_exists(layout.thresholds_picture_uri(cfg.eval_uri))

    cfg.threshold_value = 0.42  # off eval's sweep: scored all the same
    report = evaluate()
    assert report["decision_threshold"] == 0.42
    assert report["best_threshold"]["threshold"] in THRESHOLDS

    cfg.threshold = "share"
    report = evaluate()
    shared = report["share_threshold"]
    assert report["decision_threshold"] == shared["threshold"]
    assert 0 < shared["training_share"] < 1 and shared["chips"] > 0
    assert abs(shared["predicted_share"] - shared["training_share"]) < 0.1
    assert report["best_threshold"]["threshold"] in THRESHOLDS  # validation's, still reported

    cfg.threshold = "train"  # the training chips' choice, and it alone runs
    report = evaluate()
    chosen = report["training_threshold"]
    assert "share_threshold" not in report
    assert report["decision_threshold"] == chosen["threshold"] in THRESHOLDS
    assert chosen["chips"] > 0 and len(chosen["sweep"]) == len(THRESHOLDS)
    recorded = read_json(layout.execution_record_uri(cfg.predict_uri))
    assert chosen["execution"] == recorded["execution"]  # the training chips run as predict ran
    write_json(
        {"execution": "fp16", "device": "cuda"}, layout.execution_record_uri(cfg.predict_uri)
    )
    fake_gpus(0)  # predict ran on the GPU queue, eval on the CPU queue
    assert evaluate()["training_threshold"]["execution"] == "fp32"

    cfg.threshold = "tune"  # the validation scenes' choice: neither of the others runs
    report = evaluate()
    assert "training_threshold" not in report and "share_threshold" not in report
    assert report["decision_threshold"] == report["best_threshold"]["threshold"]
    assert report["threshold_tuned"] is True
