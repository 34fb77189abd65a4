"""The POSTPROCESS command: test-chip probabilities -> a checked, packed submission.

``predict`` saves each test chip's building probability; POSTPROCESS applies the decision
threshold ``eval`` chose (as the config's ``threshold`` asks; 0.5 before eval has run), writes
the submission format (``{id}.tif``, single band uint8, 1 = building) to ``postprocess_uri``,
validates the whole set and packs it to ``submission_uri`` (see :mod:`benchmark.data.layout`).
A re-run skips masks already written with the same threshold; a changed threshold rewrites them
all. The threshold is recorded once every mask is written with it, so a run stopped part way
(killed, disk full) never leaves masks of two thresholds that a re-run would take for one set.
"""

import logging
from concurrent.futures import ThreadPoolExecutor

import rasterio
from rasterio.errors import RasterioError
from tqdm.auto import tqdm

from benchmark.data import layout
from benchmark.data.submission import pack_submission, write_mask
from benchmark.data.uris import read_json, uri_exists, write_json
from benchmark.errors import InputError
from benchmark.evaluation.evaluate import read_decision_threshold
from benchmark.evaluation.plots import plot_chip_predictions
from benchmark.inference.forward import probability_to_mask
from benchmark.pipeline.benchmark_config import BenchmarkConfig

log = logging.getLogger(__name__)


def write_submission(cfg: BenchmarkConfig, num_threads: int = 4) -> None:
    """Write every test chip's mask, then validate and pack (see the module docstring)."""
    threshold = read_decision_threshold(cfg.eval_uri)
    marker = layout.threshold_record_uri(cfg.postprocess_uri)
    same_threshold = uri_exists(marker) and read_json(marker).get("threshold") == threshold
    if not same_threshold:  # masks are about to change: no record until they all have
        write_json({"threshold": None}, marker)

    def write_one(chip_id: str) -> bool:
        prob_uri = layout.chip_file_uri(layout.test_probability_dir(cfg.predict_uri), chip_id)
        out_uri = layout.chip_file_uri(cfg.postprocess_uri, chip_id)
        if same_threshold and uri_exists(out_uri):
            return False
        if not uri_exists(prob_uri):
            return False  # reported by the validation below
        try:
            with rasterio.open(prob_uri) as src:
                prob = src.read(1)
        except RasterioError as exc:  # gone since it was listed, or damaged
            raise InputError(f"{prob_uri}: cannot read ({' '.join(str(exc).split())})") from None
        write_mask(probability_to_mask(prob, threshold), out_uri)
        return True

    ids = [chip.id for chip in cfg.test_chips]
    with ThreadPoolExecutor(num_threads) as pool:
        written = sum(tqdm(pool.map(write_one, ids), total=len(ids), desc="POSTPROCESS"))
    log.info("Wrote %d of %d submission masks (threshold %.2f)", written, len(ids), threshold)
    if not same_threshold:
        write_json({"threshold": threshold}, marker)

    pack_submission(cfg.postprocess_uri, ids, cfg.submission_uri, size=cfg.test_chip_size)
    log.info("Submission: %s", cfg.submission_uri)
    shown = ids[:8]
    plot_chip_predictions(
        [chip.uri for chip in cfg.test_chips[:8]],
        [layout.chip_file_uri(cfg.postprocess_uri, i) for i in shown],
        layout.submission_preview_uri(cfg.submission_uri),
    )
