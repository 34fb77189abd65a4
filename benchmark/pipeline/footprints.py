"""OUTLINE and MERGE: a drone survey's building footprints, on any Raster Vision runner.

``benchmark footprints`` then ``benchmark merge-footprints`` as one pipeline
(``benchmark.experiments.footprints``): OUTLINE outlines each image of the survey
(:func:`~benchmark.footprints.run.footprints_for_images`), ``-s N`` sharing the images among N
splits (parallel jobs: an array job on AWS Batch, on the GPU queue with ``-a gpu true``); MERGE
then merges every image's footprints into the survey's one layer
(:func:`~benchmark.footprints.merge.merge_footprints`). Both are resumable: a split run again
outlines only the images it had not finished (their outputs are atomic), and MERGE run again
writes the same layer.

An image that cannot be outlined (not georeferenced, truncated...) does not stop its split: the
others are outlined, then the split fails in one line listing them, so MERGE does not run; a
re-run once they are mended outlines only them. MERGE itself refuses, in one line, a survey
whose images are not all outlined: a layer without some of them would look whole.
"""

import logging

from rastervision.pipeline.pipeline import Pipeline

from benchmark.errors import InputError, listed_problems
from benchmark.footprints.inputs import ImageRef
from benchmark.footprints.merge import merge_footprints
from benchmark.footprints.osm_outputs import MappingSettings
from benchmark.footprints.outlines import DEFAULT_MIN_AREA
from benchmark.footprints.run import (
    FootprintOutputs,
    FootprintReport,
    FootprintSettings,
    footprints_for_images,
)
from benchmark.inference.execution import InferenceOptions
from benchmark.pipeline import bundle as bundles  # looked up when called: tests stand a model in
from benchmark.pipeline.bundle import LoadedBundle
from benchmark.pipeline.footprints_config import FootprintsConfig
from benchmark.pipeline.work_split import share_of_work

log = logging.getLogger(__name__)


def footprint_settings(
    bundle: LoadedBundle,
    inference: InferenceOptions,
    *,
    threshold: float | None = None,
    window: int | None = None,
    overlap: int | None = None,
    min_area: float = DEFAULT_MIN_AREA,
    simplify: float | None = None,
    regularize: bool = False,
    overwrite: bool = False,
    mapping: MappingSettings | None = None,
) -> FootprintSettings:
    """How to outline with ``bundle``: its threshold, GSD and windows, unless given.

    Shared by ``benchmark footprints`` and OUTLINE, so both outline an image alike.
    """
    return FootprintSettings(
        threshold=bundle.threshold if threshold is None else threshold,
        simplify=simplify,
        regularize=regularize,
        min_area=min_area,
        prediction=bundle.prediction(inference, window, overlap),
        overwrite=overwrite,
        mapping=mapping,
    )


def outline_with_bundle(
    bundle: LoadedBundle,
    images: list[ImageRef],
    out_dir: str,
    settings: FootprintSettings,
    tmp_dir: str | None = None,
) -> FootprintReport:
    """Outline ``images`` into ``out_dir`` with ``bundle``'s model, saying how first."""
    log.info(
        "%d image(s) -> %s; threshold %.3f, model GSD %s, window %d px, overlap %d px",
        len(images), out_dir, settings.threshold, settings.prediction.gsd,
        settings.prediction.scene_window, settings.prediction.overlap,
    )  # fmt: skip
    return footprints_for_images(bundle.model, images, out_dir, settings, tmp_dir)


class SurveyFootprints(Pipeline):
    """OUTLINE (split: each image's footprints) then MERGE (the survey's one layer)."""

    commands = ["OUTLINE", "MERGE"]
    split_commands = ["OUTLINE"]
    gpu_commands: list[str] = []
    config: FootprintsConfig

    def __init__(self, config: FootprintsConfig, tmp_dir: str) -> None:
        super().__init__(config, tmp_dir)
        # Per run, not per class: the batch runner reads it to choose OUTLINE's queue.
        self.gpu_commands = ["OUTLINE"] if config.gpu else []

    def OUTLINE(self, split_ind: int = 0, num_splits: int = 1) -> None:
        """Outline this split's share of the images (finished ones are skipped).

        Raises:
            InputError: some images could not be outlined (the others were): one line
                listing them.
        """
        cfg = self.config
        images = [
            ImageRef(image.name, image.image_uri)
            for image in share_of_work(cfg.images, split_ind, num_splits)
        ]
        log.info("OUTLINE split %d/%d: %s", split_ind + 1, num_splits, [i.name for i in images])
        if not images:
            return
        inference = InferenceOptions(
            device="cuda" if cfg.gpu else "cpu", execution=cfg.plan, num_threads=cfg.threads
        )
        bundle = bundles.load_bundle(cfg.bundle_uri, self.tmp_dir, inference.device)
        settings = footprint_settings(
            bundle,
            inference,
            threshold=cfg.threshold,
            window=cfg.window,
            overlap=cfg.overlap,
            min_area=cfg.min_area,
            simplify=cfg.simplify,
            regularize=cfg.regularize,
            overwrite=cfg.overwrite,
        )
        report = outline_with_bundle(bundle, images, cfg.footprints_dir, settings, self.tmp_dir)
        if report.failed:
            problems = listed_problems([report.failed[n] for n in sorted(report.failed)])
            raise InputError(
                f"{len(report.failed)} image(s) not outlined (the others are; a re-run "
                f"outlines only these): {problems}"
            )
        log.info("OUTLINE split %d/%d done: %s", split_ind + 1, num_splits, report.summary())

    def MERGE(self) -> None:
        """Merge the survey's images' footprints into its one layer (``merged/``).

        Only this survey's: footprints an earlier run on other images left in the folder are
        left out (one warning says how many).

        Raises:
            InputError: some images of the survey are not outlined (OUTLINE has not finished
                them): a layer without them would look whole.
        """
        cfg = self.config
        missing = [
            image.name
            for image in cfg.images
            if not FootprintOutputs.of(cfg.footprints_dir, image.name).all_exist()
        ]
        if missing:
            raise InputError(
                f"{cfg.footprints_dir}: {len(missing)} of {len(cfg.images)} image(s) not "
                f"outlined yet, run OUTLINE first: {listed_problems(missing)}"
            )
        names = [image.name for image in cfg.images]  # not another run's left in the folder
        report = merge_footprints(cfg.footprints_dir, cfg.crs, cfg.margin, names)
        log.info("MERGE: %s", report.summary())
