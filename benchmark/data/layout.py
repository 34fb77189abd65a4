"""Where every command writes: the one module that spells output URIs.

A run keeps Raster Vision's layout, ``{root_uri}/{command}/{experiment_id}``, which resumed
runs, model bundles and ``wb_scripts`` rely on; PREPROCESS's windows sit beside it, shared by
every experiment at their GSD::

    {root}/split_images[_gsd{gsd}]/{area}/{id}/  PREPROCESS: windows {id}_{i}.tif, labels,
                                                 manifest.json (benchmark.data.scene_windows)
    {root}/split_images-config.json              PREPROCESS's pipeline config
    {root}/pipeline-config/{exp}.json            the benchmark's pipeline config
    {root}/{analyze,chip,train}/{exp}/           Raster Vision's own (train: model-bundle.zip,
                                                 log.csv, and ours: train-state.pth)
    {root}/train/{exp}/self-training/round-{r}/  self-training: each earlier round's learner
                                                 output; pseudo-labels/ (probabilities of the
                                                 unlabeled imagery) and pseudo-chips.zip made by
                                                 the round before; round.json, its score
    {root}/train/{exp}/self-training.json        self-training: every round's score
    {root}/predict/{exp}/{window}.tif            predict: validation-window probabilities
    {root}/predict/{exp}/test/{chip}.tif         predict: test-chip probabilities
    {root}/predict/{exp}/execution.json          predict: the plan it ran (eval reruns it)
    {root}/eval/{exp}/eval.json                  eval: the report; {window}.png overlays,
                                                 training_curves.png, thresholds.png
    {root}/bundle/{exp}/model-bundle.zip         bundle: RV's bundle plus benchmark.json
    {root}/postprocess/{exp}/{chip}.tif          POSTPROCESS: the submission masks
    {root}/postprocess/{exp}.json                POSTPROCESS: the threshold they were made with
    {root}/submission/{exp}/submission.tgz       POSTPROCESS: the packed masks (and a
                                                 submission_preview.png)

Every ``*_uri`` of the benchmark config can be overridden, so the functions for what lies in a
command's folder take that folder (``cfg.eval_uri``...), not the root. Nothing here imports
Raster Vision, so the shell scripts ask it quickly too (:mod:`benchmark.cli.locate`). One input
path is spelled here too: where the Open Cities catalog keeps a scene's files, which a dry run
assumes when it cannot read the catalog (:mod:`benchmark.pipeline.dry_run`).
"""

# Members of a model bundle (``{bundle}/model-bundle.zip``), and the files train writes.
MODEL_BUNDLE_NAME = "model-bundle.zip"
BUNDLE_INFO_NAME = "benchmark.json"
TRAINING_LOG_NAME = "log.csv"
TRAIN_STATE_NAME = "train-state.pth"  # what a killed train resumes from (training.learner)
LAST_MODEL_NAME = "last-model.pth"  # RV's: the weights train ends with
# Inside Raster Vision's chip zips: the training chips' images and labels, N.png each.
TRAIN_CHIP_IMAGES = "train/img"
TRAIN_CHIP_LABELS = "train/labels"
# The benchmark's commands that write to ``{root}/{command}/{experiment_id}`` (RV's *_uri).
RV_COMMAND_DIRS = ("analyze", "chip", "train", "predict", "eval", "bundle")
POSTPROCESS_DIR = "postprocess"
# PREPROCESS's module and output folder share the name, which users' runs depend on.
WINDOWS_DIR = "split_images"
MANIFEST_NAME = "manifest.json"
SELF_TRAINING_DIR = "self-training"


def _join(*parts: str) -> str:
    return "/".join([parts[0].rstrip("/"), *parts[1:]])


def run_experiment_id(experiment_id: str, test: bool) -> str:
    """The id a run's outputs go under: ``-a test true`` adds ``-TEST``, apart from a real run's."""
    return experiment_id + ("-TEST" if test else "")


def command_dir(root_uri: str, command: str, experiment_id: str) -> str:
    """``{root}/{command}/{experiment_id}``: one command's outputs for one experiment."""
    return _join(root_uri, command, experiment_id)


def pipeline_config_uri(root_uri: str, experiment_id: str) -> str:
    """The benchmark's saved config: one per experiment, so experiments can share a root."""
    return _join(root_uri, "pipeline-config", f"{experiment_id}.json")


def preprocess_config_uri(root_uri: str) -> str:
    """PREPROCESS's saved config, apart from the benchmark's."""
    return _join(root_uri, f"{WINDOWS_DIR}-config.json")


def default_windows_dir(root_uri: str, gsd: float | None = None) -> str:
    """``{root}/split_images[_gsd{gsd}]``: where PREPROCESS writes windows by default.

    Windows at different GSDs get different folders, so a run at one GSD never finds (and
    refuses) the windows of a run at another.
    """
    suffix = "" if gsd is None else f"_gsd{gsd:g}"
    return _join(root_uri, f"{WINDOWS_DIR}{suffix}")


def scene_windows_dir(windows_dir: str, area: str, scene_id: str) -> str:
    """Where PREPROCESS writes one scene's windows, labels and manifest."""
    return _join(windows_dir, area, scene_id)


def window_file_uri(scene_dir: str, scene_id: str, index: int) -> str:
    """PREPROCESS's ``index``-th window of a scene (counting those holding imagery)."""
    return _join(scene_dir, f"{scene_id}_{index}.tif")


def window_labels_uri(scene_dir: str, scene_id: str) -> str:
    """The scene's cleaned building labels PREPROCESS writes beside its windows."""
    return _join(scene_dir, f"{scene_id}.geojson")


def manifest_uri(scene_dir: str) -> str:
    """PREPROCESS's record of a scene's windows, written last: the scene is done."""
    return _join(scene_dir, MANIFEST_NAME)


def catalog_scene_uris(catalog_uri: str, area: str, scene_id: str) -> tuple[str, str]:
    """(image, labels) of a scene where the Open Cities catalog keeps them, beside ``catalog.json``.

    ``{area}/{id}/{id}.tif`` and ``{area}/{id}-labels/{id}.geojson``: what a dry run assumes
    when it cannot read the catalog (the catalog's own links are what a real run follows).
    """
    catalog_dir = catalog_uri.rsplit("/", 1)[0]
    return (
        _join(catalog_dir, area, scene_id, f"{scene_id}.tif"),
        _join(catalog_dir, area, f"{scene_id}-labels", f"{scene_id}.geojson"),
    )


def window_probability_uri(predict_dir: str, window_id: str) -> str:
    """Predict's probability raster of one validation window (what eval scores)."""
    return _join(predict_dir, f"{window_id}.tif")


def test_probability_dir(predict_dir: str) -> str:
    """Where predict writes the test chips' probabilities, ``{chip}.tif``."""
    return _join(predict_dir, "test")


def execution_record_uri(predict_dir: str) -> str:
    """Which execution plan predict ran (eval's ``-a threshold train`` runs the model the same)."""
    return _join(predict_dir, "execution.json")


def chip_file_uri(folder: str, chip_id: str) -> str:
    """``{folder}/{chip}.tif``: a test chip's probability, or its mask in the submission format."""
    return _join(folder, f"{chip_id}.tif")


def eval_report_uri(eval_dir: str) -> str:
    """Eval's report: Jaccard per scene, city and overall, and the decision threshold."""
    return _join(eval_dir, "eval.json")


def footprints_uri(eval_dir: str, window_id: str, extension: str) -> str:
    """Eval's building footprints traced from one validation window (``geojson``, ``gpkg``)."""
    return _join(eval_dir, f"{window_id}_buildings.{extension}")


def overlay_uri(eval_dir: str, window_id: str) -> str:
    """Eval's picture of one validation window's prediction against its labels."""
    return _join(eval_dir, f"{window_id}.png")


def thresholds_picture_uri(eval_dir: str) -> str:
    """Eval's plot of the validation probabilities and the Jaccard at each threshold."""
    return _join(eval_dir, "thresholds.png")


def training_curves_uri(eval_dir: str) -> str:
    """Eval's plot of RV's training log."""
    return _join(eval_dir, "training_curves.png")


def training_log_uri(train_dir: str) -> str:
    """The metrics RV's train writes every epoch."""
    return _join(train_dir, TRAINING_LOG_NAME)


def self_training_round_dir(train_dir: str, round_index: int) -> str:
    """Self-training round ``round_index``'s folder (the last round's learner writes train's)."""
    return _join(train_dir, SELF_TRAINING_DIR, f"round-{round_index}")


def last_model_uri(train_dir: str) -> str:
    """The weights a train (or a self-training round) ended with; the next round starts there."""
    return _join(train_dir, LAST_MODEL_NAME)


def pseudo_probability_dir(round_dir: str) -> str:
    """The previous round's probabilities of the unlabeled imagery a round trains on."""
    return _join(round_dir, "pseudo-labels")


def pseudo_chips_uri(round_dir: str) -> str:
    """A round's pseudo-labelled chips, in Raster Vision's chip layout."""
    return _join(round_dir, "pseudo-chips.zip")


def round_record_uri(round_dir: str) -> str:
    """A finished round's score: written last, so its presence means the round is done."""
    return _join(round_dir, "round.json")


def self_training_record_uri(train_dir: str) -> str:
    """Every self-training round's score (eval copies it into eval.json)."""
    return _join(train_dir, f"{SELF_TRAINING_DIR}.json")


def model_bundle_uri(command_output_dir: str) -> str:
    """``model-bundle.zip`` in train's folder (the learner's) or bundle's (ours, with RV's)."""
    return _join(command_output_dir, MODEL_BUNDLE_NAME)


def ensemble_member_name(index: int) -> str:
    """The name of an ensemble's ``index``-th other member in its bundle (1 is the first)."""
    return f"ensemble-{index}-{MODEL_BUNDLE_NAME}"


def postprocess_dir(root_uri: str, experiment_id: str) -> str:
    """Where POSTPROCESS writes the submission masks (``wb_scripts/submit`` collects them)."""
    return command_dir(root_uri, POSTPROCESS_DIR, experiment_id)


def threshold_record_uri(masks_dir: str) -> str:
    """Beside the masks: the threshold they were made with (a changed one redoes them all)."""
    return f"{masks_dir.rstrip('/')}.json"


def submission_uri(root_uri: str, experiment_id: str) -> str:
    """The packed submission POSTPROCESS writes (``wb_scripts/submit``'s default too)."""
    return _join(command_dir(root_uri, "submission", experiment_id), "submission.tgz")


def submission_preview_uri(submission: str) -> str:
    """A picture of the first test chips and their masks, beside the packed submission."""
    return submission.removesuffix(".tgz") + "_preview.png"


# ---- benchmark.experiments.footprints: a survey's footprints (SURVEY_FOOTPRINTS_DIR) -------
#
#     {root}/footprints-config.json                 the survey pipeline's config
#     {root}/footprints/{name}_prob.tif, _buildings.{geojson,gpkg}   OUTLINE: each image's
#     {root}/footprints/merged/                     MERGE: the survey's one layer
#                                                   (benchmark.footprints.merge.MergeOutputs)
SURVEY_FOOTPRINTS_DIR = "footprints"


def survey_config_uri(root_uri: str) -> str:
    """The survey footprints pipeline's saved config, apart from the benchmark's."""
    return _join(root_uri, f"{SURVEY_FOOTPRINTS_DIR}-config.json")


def survey_footprints_dir(root_uri: str) -> str:
    """``{root}/footprints``: OUTLINE's per-image outputs, and MERGE's ``merged/`` in it."""
    return _join(root_uri, SURVEY_FOOTPRINTS_DIR)


def join_uri(folder: str, *names: str) -> str:
    """``folder/name/...``, local or ``s3://``: the one join of every URI spelled here."""
    return _join(folder, *names)
