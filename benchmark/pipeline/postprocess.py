"""The POSTPROCESS command: test-chip probabilities -> a checked, packed submission.

``predict`` saves each test chip's building probability; POSTPROCESS applies the decision
threshold chosen by ``eval`` (0.5 unless ``tune_threshold``), writes the submission format
(``{id}.tif``, single band uint8, 1 = building) to ``{root_uri}/postprocess/{experiment_id}``,
validates the whole set and packs ``submission.tgz``. A re-run skips masks already written
with the same threshold; a changed threshold rewrites them all.
"""

import logging
from concurrent.futures import ThreadPoolExecutor

import rasterio
from tqdm.auto import tqdm

from benchmark.data.submission import pack_submission, write_mask
from benchmark.data.uris import read_json, uri_exists, write_json
from benchmark.evaluation.evaluate import read_decision_threshold
from benchmark.evaluation.plots import plot_chip_predictions
from benchmark.inference.predict import probability_to_mask
from benchmark.pipeline.benchmark_config import BenchmarkConfig

log = logging.getLogger(__name__)


def _threshold_marker_uri(cfg: BenchmarkConfig) -> str:
    return f"{cfg.postprocess_uri.rstrip('/')}.json"


def write_submission(cfg: BenchmarkConfig, num_threads: int = 4) -> None:
    """Write every test chip's mask, then validate and pack (see the module docstring)."""
    threshold = read_decision_threshold(cfg)
    marker = _threshold_marker_uri(cfg)
    same_threshold = uri_exists(marker) and read_json(marker).get("threshold") == threshold
    write_json({"threshold": threshold}, marker)

    def write_one(chip_id: str) -> bool:
        prob_uri = f"{cfg.predict_uri}/test/{chip_id}.tif"
        out_uri = f"{cfg.postprocess_uri}/{chip_id}.tif"
        if same_threshold and uri_exists(out_uri):
            return False
        if not uri_exists(prob_uri):
            return False  # reported by the validation below
        with rasterio.open(prob_uri) as src:
            prob = src.read(1)
        write_mask(probability_to_mask(prob, threshold), out_uri)
        return True

    ids = [chip.id for chip in cfg.test_chips]
    with ThreadPoolExecutor(num_threads) as pool:
        written = sum(tqdm(pool.map(write_one, ids), total=len(ids), desc="POSTPROCESS"))
    log.info("Wrote %d of %d submission masks (threshold %.2f)", written, len(ids), threshold)

    pack_submission(cfg.postprocess_uri, ids, cfg.submission_uri, size=cfg.test_chip_size)
    log.info("Submission: %s", cfg.submission_uri)
    shown = ids[:8]
    plot_chip_predictions(
        [chip.uri for chip in cfg.test_chips[:8]],
        [f"{cfg.postprocess_uri}/{i}.tif" for i in shown],
        cfg.submission_uri.replace(".tgz", "_preview.png"),
    )
