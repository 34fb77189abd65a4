"""A survey's footprints through the real ``rastervision`` CLI: OUTLINE, MERGE, resume, batch.

The survey and the stand-in bundle are ``tests/fixtures/surveys.py``'s: three overlapping images
holding five buildings, two of them in overlaps, outlined by a model that finds exactly the
bright roofs. The first test runs the CLI as a user does, in a process of its own; the others
run it in the test's process (a subprocess only starts torch and Raster Vision again), the
bundle loader patched. The S3 run loads a real (untrained) bundle from moto.
"""

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import geopandas as gpd
import numpy as np
import pytest

from benchmark.data import layout
from benchmark.footprints.merge import MergeOutputs
from benchmark.footprints.run import FootprintOutputs
from tests.fixtures.aws import parse_dry_run
from tests.fixtures.rasters import write_raster
from tests.fixtures.surveys import (
    BUILDINGS,
    IMAGES,
    REPO,
    buildings_in,
    rastervision,
    rastervision_here,
    stand_in_bundle,
    write_survey,
    write_tiny_bundle,
)

EXPERIMENT = "benchmark.experiments.footprints"
# fp32: the plain PyTorch plan, not the machine's fastest measured first.
FAST = ["-a", "plan", "fp32"]


def survey_args(
    *commands: str,
    root: str,
    input_uri: str,
    bundle: str,
    runner: str = "inprocess",
    more: Sequence[str] = (),
) -> list[str]:
    """``run RUNNER benchmark.experiments.footprints COMMANDS -a ... [MORE] -s 2``."""
    return [
        "run", runner, EXPERIMENT, *commands, "-a", "root_uri", root,
        "-a", "bundle_uri", bundle, "-a", "input_uri", input_uri, *FAST, *more, "-s", "2",
    ]  # fmt: skip


@pytest.fixture
def run_here(monkeypatch, tmp_path):
    """``run_here(*commands, root=, input_uri=, bundle=)``: the survey run in this process,
    every bundle loaded as the stand-in; click's result (``exit_code``, ``stderr``)."""
    import benchmark.pipeline.bundle

    monkeypatch.setattr(benchmark.pipeline.bundle, "load_bundle", stand_in_bundle)

    def run(*commands: str, **uris: Any):
        return rastervision_here(*survey_args(*commands, **uris), tmp_path=tmp_path)

    return run


def error_line(stderr: str) -> str:
    """The last line: our one error line, after the progress bars and log lines."""
    return stderr.rstrip("\n").splitlines()[-1]


@pytest.fixture
def survey(tmp_path: Path) -> dict[str, str]:
    """The survey's images in ``in/``, a bundle file to name (the stand-in loads it) and a root."""
    write_survey(tmp_path / "in")
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(b"the stand-in bundle is loaded instead")
    return {"input_uri": str(tmp_path / "in"), "bundle": str(bundle), "root": str(tmp_path / "out")}


def merged_layer(footprints_dir: str) -> gpd.GeoDataFrame:
    return gpd.read_parquet(MergeOutputs.of(footprints_dir).parquet)


def test_outline_and_merge_a_survey_in_two_splits(survey, tmp_path):
    done = rastervision(*survey_args("OUTLINE", "MERGE", **survey), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "OUTLINE split 1/2: ['a', 'b']" in done.stderr
    assert "OUTLINE split 2/2: ['c']" in done.stderr
    footprints = layout.survey_footprints_dir(survey["root"])
    for name, extent in IMAGES.items():
        outputs = FootprintOutputs.of(footprints, name)
        assert outputs.all_exist()
        assert len(gpd.read_file(outputs.gpkg)) == len(buildings_in(extent))
    merged = merged_layer(footprints)
    assert len(merged) == len(BUILDINGS)  # the two in overlaps once each
    areas = [(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in BUILDINGS]
    assert sorted(merged.area) == pytest.approx(sorted(areas), rel=0.05)
    config = json.loads(Path(layout.survey_config_uri(survey["root"])).read_text())
    assert [(i["name"], i["image_uri"]) for i in config["images"]] == [
        (name, f"{survey['input_uri']}/{name}.tif") for name in IMAGES
    ]
    assert config["listed_from"] == survey["input_uri"] and config["threshold"] is None


def test_a_rerun_redoes_only_unfinished_images_and_merges_the_same_layer(survey, run_here, caplog):
    footprints = layout.survey_footprints_dir(survey["root"])
    first = run_here("OUTLINE", "MERGE", **survey)
    assert first.exit_code == 0, first.output[-3000:]
    layer = Path(MergeOutputs.of(footprints).parquet).read_bytes()
    outputs = {name: FootprintOutputs.of(footprints, name) for name in IMAGES}
    written = {name: Path(o.geojson).stat().st_mtime_ns for name, o in outputs.items()}
    Path(outputs["b"].prob).unlink()  # a split killed while publishing b's outputs
    caplog.clear()
    again = run_here("OUTLINE", "MERGE", **survey)
    assert again.exit_code == 0, again.output[-3000:]
    redone = [n for n, o in outputs.items() if Path(o.geojson).stat().st_mtime_ns != written[n]]
    assert redone == ["b"] and outputs["b"].all_exist()
    assert "OUTLINE split 1/2 done: 1 image(s) outlined (3 buildings), 1 already done" in (
        caplog.text
    )
    assert Path(MergeOutputs.of(footprints).parquet).read_bytes() == layer


def test_an_image_that_fails_fails_its_split_after_the_others_and_merge_waits(survey, run_here):
    # "a0" sorts first, into split 1 with "a": not georeferenced.
    write_raster(Path(survey["input_uri"]) / "a0.tif", np.zeros((3, 32, 32), np.uint8), crs=None)
    done = run_here("OUTLINE", "MERGE", **survey)
    assert done.exit_code == 2, done.output[-3000:]
    line = error_line(done.stderr)
    assert line.startswith("error: 1 image(s) not outlined (the others are; a re-run outlines ")
    assert f"{survey['input_uri']}/a0.tif" in line
    footprints = layout.survey_footprints_dir(survey["root"])
    assert FootprintOutputs.of(footprints, "a").all_exist()  # the split went on after a0
    assert not Path(MergeOutputs.of(footprints).gpkg).exists()


def test_merge_before_every_image_is_outlined_is_one_line(survey, run_here):
    done = run_here("MERGE", **survey)
    assert done.exit_code == 2, done.output[-3000:]
    footprints = layout.survey_footprints_dir(survey["root"])
    assert done.stderr == (
        f"error: {footprints}: 3 of 3 image(s) not outlined yet, run OUTLINE first: a; b; c\n"
    )
    assert not Path(MergeOutputs.of(footprints).gpkg).exists()


def test_merge_leaves_out_another_runs_footprints_in_the_folder(survey, run_here, caplog):
    # An earlier run on other images into the same root left "old"'s footprints there.
    footprints = layout.survey_footprints_dir(survey["root"])
    done = run_here("OUTLINE", **survey)
    assert done.exit_code == 0, done.output[-3000:]
    earlier = FootprintOutputs.of(footprints, "a")
    shutil.copy(earlier.gpkg, f"{footprints}/old_buildings.gpkg")
    shutil.copy(earlier.prob, f"{footprints}/old_prob.tif")
    caplog.clear()
    done = run_here("MERGE", **survey)
    assert done.exit_code == 0, done.output[-3000:]
    images = merged_layer(footprints)["image"]  # "a", or "a+b" for pieces joined
    assert not any("old" in name.split("+") for name in images)
    assert len(images) == len(BUILDINGS)
    assert f"{footprints}: 1 other image(s)' footprints left out of the merge" in caplog.text


@pytest.mark.parametrize(
    ("change", "args", "expected"),
    [
        ({"bundle": "nowhere/bundle.zip"}, [],
         "error: nowhere/bundle.zip: model bundle not found"),
        ({"input_uri": "nowhere"}, [], "error: nowhere: no such image, folder or STAC file"),
        ({}, ["-a", "crs", "99999"],
         "error: bad experiment arguments: -a crs: 99999 is not a known EPSG code"),
        ({}, ["-a", "plan", "fp16"], "error: bad experiment arguments: -a plan fp16 cannot "
         "run with -a gpu false (execution 'fp16' runs on cuda)"),
        ({}, ["-a", "plan", "int8", "-a", "gpu", "true"], "error: bad experiment arguments: "
         "-a plan int8 cannot run with -a gpu true (execution 'int8' runs on cpu)"),
    ],
    ids=["no-bundle", "no-input", "unknown-crs", "fp16-on-cpu", "int8-on-gpu"],
)  # fmt: skip
def test_bad_arguments_are_one_line_and_exit_2(survey, run_here, change, args, expected):
    done = run_here("OUTLINE", "MERGE", **{**survey, **change}, more=args)
    assert done.exit_code == 2, done.output[-3000:]
    assert done.stderr.startswith(expected) and done.stderr.count("\n") == 1
    assert not Path(survey["root"]).exists()


@pytest.mark.slow
def test_the_local_runner_with_a_real_bundle(tmp_path):
    """Each split and MERGE a process of its own, rebuilding the config from its JSON."""
    write_survey(tmp_path / "in")
    bundle = write_tiny_bundle(tmp_path / "bundle" / "model-bundle.zip", predict_window=256)
    root = str(tmp_path / "out")
    args = survey_args(
        "OUTLINE", "MERGE", root=root, input_uri=str(tmp_path / "in"), bundle=bundle,
        runner="local",
    )  # fmt: skip
    (tmp_path / "tmp").mkdir()
    done = rastervision(
        *args, tmp_path=tmp_path, stand_in=False, env={"TMPDIR": str(tmp_path / "tmp")}
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    footprints = layout.survey_footprints_dir(root)
    assert all(FootprintOutputs.of(footprints, name).all_exist() for name in IMAGES)
    assert Path(MergeOutputs.of(footprints).parquet).exists()


# ---- on S3 (moto) --------------------------------------------------------------------------

BUCKET = "survey-bucket"


@pytest.fixture
def s3_survey(aws_env, s3_upload, tmp_path) -> dict[str, str]:
    """The survey's images and a real tiny bundle on moto's S3, and a root there."""
    write_survey(tmp_path / "survey" / "images")
    write_tiny_bundle(tmp_path / "survey" / "bundle" / "model-bundle.zip", predict_window=256)
    data = s3_upload(tmp_path / "survey", f"s3://{BUCKET}/data")
    return {
        "input_uri": f"{data}/images",
        "bundle": f"{data}/bundle/model-bundle.zip",
        "root": f"s3://{BUCKET}/out",
    }


def s3_key(uri: str) -> str:
    return uri.removeprefix(f"s3://{BUCKET}/")


def s3_keys(prefix: str) -> set[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"] for o in listed.get("Contents", [])}


@pytest.mark.aws
@pytest.mark.slow
def test_a_survey_on_s3_with_a_real_bundle(s3_survey, tmp_path):
    """Images, bundle and outputs on S3; the untrained network's buildings are whatever it finds."""
    args = survey_args("OUTLINE", "MERGE", **s3_survey)
    done = rastervision(*args, tmp_path=tmp_path, stand_in=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "OUTLINE split 2/2: ['c']" in done.stderr
    footprints = layout.survey_footprints_dir(s3_survey["root"])
    assert all(FootprintOutputs.of(footprints, name).all_exist() for name in IMAGES)
    merged = MergeOutputs.of(footprints)
    assert {s3_key(merged.gpkg), s3_key(merged.parquet)} <= s3_keys("out/")
    local = tmp_path / "merged.parquet"
    boto3.client("s3").download_file(BUCKET, s3_key(merged.parquet), str(local))
    images = gpd.read_parquet(local)["image"]  # "a", or "a+b" for pieces joined
    assert all(set(name.split("+")) <= set(IMAGES) for name in images)


# ---- AWS Batch: the job graph (a dry run) and local paths refused ------------------------------

ROOT = "s3://my-bucket/survey"
S3_ARGS = ["-a", "root_uri", ROOT, "-a", "bundle_uri", "s3://my-bucket/bundle.zip",
           "-a", "input_uri", "s3://my-bucket/images/"]  # fmt: skip


@pytest.fixture
def batch_dry_run(aws_env, monkeypatch, tmp_path):
    """``batch_dry_run(*args)``: ``rastervision -p wbbenchmark run batch ... -s 4``, dry.

    With the repository's profile, and moto without AWS credentials: the dry run assumes what
    it cannot read.
    """
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("RV_CONFIG_DIR", str(REPO / ".rastervision"))
    monkeypatch.setenv("BENCHMARK_BATCH_DRY_RUN", "1")

    def run(*args: str):
        return rastervision_here(
            "-p", "wbbenchmark", "run", "batch", EXPERIMENT, "OUTLINE", "MERGE", *args,
            "-s", "4", tmp_path=tmp_path,
        )  # fmt: skip

    return run


@pytest.mark.aws
@pytest.mark.parametrize(("gpu", "queue"), [(False, "Cpu"), (True, "Gpu")], ids=["cpu", "gpu"])
def test_batch_outline_is_an_array_job_and_merge_follows(batch_dry_run, caplog, gpu, queue):
    done = batch_dry_run(*S3_ARGS, *(["-a", "gpu", "true"] if gpu else []))
    assert done.exit_code == 0, done.output[-3000:]
    outline, merge = parse_dry_run(done.stdout)
    assert (outline["step"], outline["array_size"], outline["depends_on"]) == ("OUTLINE", "4", "-")
    assert outline["queue"] == f"RasterVision{queue}JobQueue"
    assert (merge["step"], merge["array_size"], merge["depends_on"]) == ("MERGE", "-", "dry-run-1")
    assert merge["queue"] == "RasterVisionCpuJobQueue"
    config = layout.survey_config_uri(ROOT)
    assert shlex.split(outline["command"])[4:] == [
        config, "OUTLINE", "--runner", "batch", "--num-splits", "4"
    ]  # fmt: skip
    assert "the job graph assumes no images" in caplog.text


@pytest.mark.aws
def test_batch_refuses_local_images_and_bundle_in_one_line(batch_dry_run, survey):
    local = ["-a", "root_uri", ROOT, "-a", "bundle_uri", survey["bundle"],
             "-a", "input_uri", survey["input_uri"]]  # fmt: skip
    done = batch_dry_run(*local)
    assert done.exit_code == 2, done.output[-3000:]
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(
        "error: 4 local paths, but batch jobs run on AWS and cannot reach this machine's files: "
        f"bundle_uri {survey['bundle']}; "
        f"images[a].image_uri {survey['input_uri']}/a.tif (from -a input_uri); "
    )
    assert not parse_dry_run(done.stdout)


def write_catalog(folder: Path, image_uris: list[str]) -> str:
    """A local STAC catalog of one item per image, and its path."""
    folder.mkdir(parents=True)
    links = []
    for uri in image_uris:
        name = Path(uri).stem
        item = {"type": "Feature", "stac_version": "1.0.0", "id": name, "properties": {},
                "geometry": None, "links": [], "assets": {"image": {"href": uri}}}  # fmt: skip
        (folder / f"{name}.json").write_text(json.dumps(item))
        links.append({"rel": "item", "href": f"./{name}.json"})
    catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": "survey",
               "description": "a survey", "links": links}  # fmt: skip
    (folder / "catalog.json").write_text(json.dumps(catalog))
    return str(folder / "catalog.json")


@pytest.mark.aws
def test_batch_takes_a_local_catalog_of_images_on_s3_but_not_of_local_ones(batch_dry_run, tmp_path):
    # The catalog is read here, once, when the config is built; the jobs read only the images.
    on_s3 = write_catalog(tmp_path / "s3", [f"s3://my-bucket/images/{n}.tif" for n in "ab"])
    args = ["-a", "root_uri", ROOT, "-a", "bundle_uri", "s3://my-bucket/bundle.zip"]
    done = batch_dry_run(*args, "-a", "input_uri", on_s3)
    assert done.exit_code == 0, done.output[-3000:]
    assert [job["step"] for job in parse_dry_run(done.stdout)] == ["OUTLINE", "MERGE"]
    image = str(tmp_path / "images" / "a.tif")
    local = write_catalog(tmp_path / "local", [image])
    done = batch_dry_run(*args, "-a", "input_uri", local)
    assert done.exit_code == 2, done.output[-3000:]
    assert done.stderr == (
        f"error: images[a].image_uri {image} (from -a input_uri): a local path, but batch jobs "
        "run on AWS and cannot reach this machine's files: put it on S3 (aws s3 sync) and give "
        "its s3:// URI (nothing was submitted)\n"
    )


@pytest.mark.aws
@pytest.mark.slow
def test_the_survey_script_prints_the_graph_and_where_the_merged_layer_goes(
    aws_env, monkeypatch, tmp_path
):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    env = {
        **os.environ,
        "RV_CONFIG_DIR": str(REPO / ".rastervision"),
        "RV_TMP_DIR": str(tmp_path / "rvtmp"),
        "ROOT_URI": ROOT,
        "BUNDLE_URI": "s3://my-bucket/bundle.zip",
        "INPUT_URI": "s3://my-bucket/images/",
    }
    for name in ("SPLITS", "PROFILE", "COMMANDS", "RASTER_VISION_DEBUG"):
        env.pop(name, None)
    done = subprocess.run(
        [str(REPO / "wb_scripts/survey"), "--dry-run", "--splits", "3", "--", "gpu=true"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    outline, _ = parse_dry_run(done.stdout)
    assert outline["array_size"] == "3" and outline["queue"] == "RasterVisionGpuJobQueue"
    merged = MergeOutputs.of(layout.survey_footprints_dir(ROOT)).gpkg
    assert done.stdout.splitlines()[-1] == f"The merged layer would be {merged}"
