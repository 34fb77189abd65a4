"""The demo's recipe, written once: ``wb_scripts/demo`` runs it, the ablation varies it.

The Kampala sample shipped in ``data/kampala_sample`` (drone imagery at 7.5 cm, OpenStreetMap
buildings): one training scene, one validation scene, a few test chips; and the benchmark
experiment's ``-a`` arguments tuned for a 2-core CPU and that tiny sample. Run by
:mod:`benchmark.cli.demo`; ``tools/ablation.py --recipe demo`` makes it the baseline its
variants change one thing of, so what the demo shows and what the ablation measures cannot drift
apart. The arguments are strings, as ``-a`` passes them (Raster Vision's command line and the
ablation's table show them as written); a test checks that they are valid
:class:`~benchmark.experiments.benchmark_args.BenchmarkArgs`.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Final

# In the repository beside the package (the Docker image leaves data/ out).
SAMPLE_DIR: Final = Path(__file__).resolve().parents[2] / "data" / "kampala_sample"
TRAIN_STAC_URI: Final = SAMPLE_DIR / "train_tier_1" / "catalog.json"
TRAIN_IDS: Final = "kam/94f080"
VALID_IDS: Final = "kam/8a5983"
TEST_IMG_DIR: Final = SAMPLE_DIR / "test"
# The test chips carry no georeferencing: their GSD, the sample's, is given so that they are
# resized to GSD for the model as the scenes are.
TEST_CHIP_GSD: Final = "0.075"
# Train and predict at 30 cm (the sample is 7.5 cm): a 128 px chip sees what 512 px see at
# 7.5 cm, for 1/16 of the compute per step. PREPROCESS resamples the scenes to it.
GSD: Final = "0.3"
EXPERIMENT_ID: Final = "kampala"

# How to train, predict and threshold: about 300 steps of batch 8 (the experiment's default) on
# a 2-core CPU; the model and encoder are the experiment's defaults, U-Net and ResNet-18.
ARGS: Final[Mapping[str, str]] = {
    # From scratch: ImageNet weights need internet (wb_scripts/demo --pretrained downloads them).
    "pretrained": "false",
    # Random 112-160 px crops resized to 128: the one training scene seen at many positions
    # and a little scale jitter.
    "chip_method": "random",
    "chip_sz": "128",
    "random_sz_min": "112",
    "random_sz_max": "160",
    "chips_per_scene": "600",
    "num_epochs": "5",
    # From scratch, the original's 1e-4 barely moves a model in a few hundred steps.
    "lr": "1e-3",
    "loss": "lovasz",  # Lovasz hinge: optimises the Jaccard that scores the run
    "aug": "d4",  # flips and rotations
    # Predicted in 128 px windows (the size it trained on) blended over 64 px.
    "predict_window": "128",
    "predict_overlap": "64",
    # Bundles an average of the weights: less dependent on the seed than the last step's.
    "ema_decay": "0.99",
    # Thresholded where the validation scene holds the training chips' share of buildings: no
    # validation label read, and the seed matters far less than at 0.5.
    "threshold": "share",
}
