"""The ``batch`` runner against a local moto AWS Batch: the jobs it submits and its dry run.

In-process tests drive :class:`BenchmarkBatchRunner` with a tiny pipeline; the ``slow`` ones run
the real ``rastervision`` CLI and ``wb_scripts`` on the benchmark's own pipelines (a generated
Open Cities catalog) and compare what was submitted with what the dry run printed.
"""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from rastervision.aws_batch import AWSBatchRunner
from rastervision.aws_batch import register_plugin as register_aws_batch
from rastervision.pipeline import registry_, rv_config_
from rastervision.pipeline.pipeline import Pipeline
from rastervision.pipeline.registry import Registry

import rastervision.benchmark
from benchmark.data.aws_errors import AwsError
from benchmark.data.scene_windows import cut_scene_into_windows
from benchmark.data.stac import read_training_scenes
from benchmark.errors import InputError
from benchmark.pipeline.batch_runner import BenchmarkBatchRunner
from benchmark.pipeline.dry_run import DRY_RUN_ENV
from benchmark.pipeline.runner_registration import batch_runner, register
from tests.fixtures.aws import make_batch_resources, parse_dry_run
from tests.fixtures.opencities import make_opencities_catalog

pytestmark = pytest.mark.aws

REPO = Path(__file__).resolve().parents[2]
PROFILE = "bench"
QUEUES = {"cpu": "bench-cpu-queue", "gpu": "bench-gpu-queue"}
JOB_DEFS = {"cpu": "bench-cpu-def", "gpu": "bench-gpu-def"}
BUCKET = "bench-batch"
ROOT = f"s3://{BUCKET}/root"


def profile_text(**batch: object) -> str:
    settings = {
        "cpu_job_queue": QUEUES["cpu"],
        "cpu_job_def": JOB_DEFS["cpu"],
        "gpu_job_queue": QUEUES["gpu"],
        "gpu_job_def": JOB_DEFS["gpu"],
        "attempts": 3,
        **batch,
    }
    lines = [f"{k} = {v}" for k, v in settings.items() if v is not None]
    return "[BATCH]\n" + "\n".join(lines) + "\n\n[AWS_S3]\nrequester_pays = False\n"


@pytest.fixture
def use_profile(tmp_path, monkeypatch):
    """Write an RV profile into a config dir of the test's own; make it the active one."""
    config_dir = tmp_path / "rv-config"
    config_dir.mkdir()
    monkeypatch.setenv("RV_CONFIG_DIR", str(config_dir))

    def use(**batch: object) -> Path:
        path = config_dir / PROFILE
        path.write_text(profile_text(**batch))
        rv_config_.set_everett_config(profile=PROFILE)
        return path

    yield use
    monkeypatch.delenv("RV_CONFIG_DIR")
    rv_config_.set_everett_config()


@pytest.fixture
def batch_resources(aws_env):
    """A compute environment, CPU and GPU job queues and job definitions in moto."""
    make_batch_resources(
        list(QUEUES.values()), {JOB_DEFS[device]: f"bench-{device}" for device in QUEUES}
    )
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return aws_env


def submitted_jobs(server) -> list[dict]:
    """The SubmitJob requests moto received, in order, each with the id moto gave the job."""
    batch = boto3.client("batch")
    ids = {}
    for queue in QUEUES.values():
        listed = batch.list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": ["*"]}])
        # Children of array jobs are "<parent id>:<index>".
        ids.update(
            {j["jobName"]: j["jobId"] for j in listed["jobSummaryList"] if ":" not in j["jobId"]}
        )
    requests = [
        json.loads(r["body"])
        for r in server.recorded_requests()
        if r["url"].endswith("/v1/submitjob")
    ]
    return [{**r, "jobId": ids[r["jobName"]]} for r in requests]


class TinyPipeline(Pipeline):
    """Three commands: one split, one on the GPU, one plain."""

    commands = ["prepare", "fit", "score"]
    split_commands = ["prepare"]
    gpu_commands = ["fit"]

    def prepare(self, split_ind: int = 0, num_splits: int = 1) -> None: ...

    def fit(self) -> None: ...

    def score(self) -> None: ...


# It stands in for one of our pipelines: the runner leaves any other to Raster Vision's runner.
TinyPipeline.__module__ = "benchmark.pipeline.tiny"


CFG = f"{ROOT}/pipeline-config.json"


def run_tiny(commands: list[str], num_splits: int = 3) -> None:
    BenchmarkBatchRunner().run(CFG, TinyPipeline(None, "/tmp"), commands, num_splits=num_splits)


class TestRegister:
    def test_replaces_rvs_runner_registered_before(self):
        registry = Registry()
        register_aws_batch(registry)
        register(registry)
        assert registry.get_runner("batch") is batch_runner

    def test_wins_over_rvs_runner_registered_after(self):
        registry = Registry()
        register(registry)
        register_aws_batch(registry)
        assert registry.get_runner("batch") is batch_runner

    def test_rastervision_uses_it(self):
        runner = registry_.get_runner("batch")()
        assert type(runner) is BenchmarkBatchRunner
        assert isinstance(runner, AWSBatchRunner)


def test_profile_template_has_every_setting_rv_reads(monkeypatch):
    monkeypatch.setenv("RV_CONFIG_DIR", str(REPO / ".rastervision"))
    rv_config_.set_everett_config(profile="wbbenchmark")
    try:
        settings = rv_config_.get_config_dict(registry_.rv_config_schema)
        (job,) = BenchmarkBatchRunner().plan_jobs(CFG, TinyPipeline(None, "/tmp"), ["fit"])
    finally:
        monkeypatch.delenv("RV_CONFIG_DIR")
        rv_config_.set_everett_config()
    wanted = {
        f"{section}_{key}"
        for section in ("batch", "aws_s3")
        for key in registry_.rv_config_schema[section]
    }
    assert wanted <= set(settings)
    assert (job.queue, job.job_def, job.attempts) == (
        "RasterVisionGpuJobQueue",
        "RasterVisionCustomPyTorchGpuJobDefinition",
        3,
    )


class TestSubmit:
    def test_chain_of_jobs_with_retries(self, batch_resources, use_profile):
        use_profile()
        run_tiny(["score", "FIT", "prepare"])
        jobs = submitted_jobs(batch_resources)
        assert [j["jobName"].split("-")[2] for j in jobs] == ["prepare", "fit", "score"]
        assert [j["jobQueue"] for j in jobs] == [QUEUES["cpu"], QUEUES["gpu"], QUEUES["cpu"]]
        assert [j["jobDefinition"] for j in jobs] == [JOB_DEFS[d] for d in ("cpu", "gpu", "cpu")]
        assert [j.get("arrayProperties") for j in jobs] == [{"size": 3}, None, None]
        assert [j.get("dependsOn") for j in jobs] == [
            None,
            [{"jobId": jobs[0]["jobId"]}],
            [{"jobId": jobs[1]["jobId"]}],
        ]
        assert all(j["retryStrategy"] == {"attempts": 3} for j in jobs)
        cli = ["python", "-m", "rastervision.pipeline.cli", "run_command", CFG]
        assert jobs[0]["containerOverrides"]["command"] == [
            *cli,
            "prepare",
            "--runner",
            "batch",
            "--num-splits",
            "3",
        ]
        assert jobs[1]["containerOverrides"]["command"] == [*cli, "fit", "--runner", "batch"]

    def test_one_attempt_without_the_key(self, batch_resources, use_profile):
        use_profile(attempts=None)
        run_tiny(["fit"], num_splits=1)
        assert [j["retryStrategy"] for j in submitted_jobs(batch_resources)] == [{"attempts": 1}]

    def test_environment_overrides_the_profile(self, batch_resources, use_profile, monkeypatch):
        use_profile()
        monkeypatch.setenv("BATCH_ATTEMPTS", "5")
        run_tiny(["score"])
        assert [j["retryStrategy"] for j in submitted_jobs(batch_resources)] == [{"attempts": 5}]


class TestDryRun:
    def test_prints_the_graph_and_submits_nothing(
        self, batch_resources, use_profile, monkeypatch, capsys
    ):
        use_profile()
        monkeypatch.setenv(DRY_RUN_ENV, "1")
        run_tiny(["prepare", "fit", "score"], num_splits=4)
        jobs = parse_dry_run(capsys.readouterr().out)
        assert not submitted_jobs(batch_resources)
        assert [j["step"] for j in jobs] == ["prepare", "fit", "score"]
        assert [j["id"] for j in jobs] == ["dry-run-1", "dry-run-2", "dry-run-3"]
        assert [j["depends_on"] for j in jobs] == ["-", "dry-run-1", "dry-run-2"]
        assert [j["queue"] for j in jobs] == [QUEUES["cpu"], QUEUES["gpu"], QUEUES["cpu"]]
        assert [j["job_def"] for j in jobs] == [JOB_DEFS["cpu"], JOB_DEFS["gpu"], JOB_DEFS["cpu"]]
        assert [j["array_size"] for j in jobs] == ["4", "-", "-"]
        assert {j["attempts"] for j in jobs} == {"3"}
        assert shlex.split(jobs[0]["command"])[-5:] == [
            "prepare",
            "--runner",
            "batch",
            "--num-splits",
            "4",
        ]


class TestErrors:
    @pytest.mark.parametrize("key", ["gpu_job_queue", "gpu_job_def", "cpu_job_queue"])
    def test_missing_setting_names_profile_and_key(self, batch_resources, use_profile, key):
        path = use_profile(**{key: None})
        with pytest.raises(InputError, match=rf"profile 'bench' \({path}\): \[BATCH\] {key} is"):
            run_tiny(["prepare", "fit"])
        assert not submitted_jobs(batch_resources), "nothing may be submitted before the error"

    def test_empty_setting_is_missing(self, aws_env, use_profile):
        use_profile(cpu_job_def="")
        with pytest.raises(InputError, match=r"cpu_job_def is not set.*BATCH_CPU_JOB_DEF"):
            run_tiny(["score"])

    @pytest.mark.parametrize("attempts", ["0", "11", "three"])
    def test_attempts_out_of_range(self, aws_env, use_profile, attempts):
        use_profile(attempts=attempts)
        with pytest.raises(InputError, match=rf"attempts is '{attempts}', not a whole number"):
            run_tiny(["score"])

    def test_local_config(self, aws_env, use_profile):
        use_profile()
        with pytest.raises(InputError, match="cannot read a local pipeline config"):
            BenchmarkBatchRunner().run("/tmp/cfg.json", TinyPipeline(None, "/tmp"), ["score"])

    def test_run_name_that_batch_refuses(self, aws_env, use_profile):
        use_profile()
        with pytest.raises(InputError, match=r"not an AWS Batch job name.*--pipeline-run-name"):
            BenchmarkBatchRunner().run(
                CFG, TinyPipeline(None, "/tmp"), ["score"], pipeline_run_name="my run"
            )

    def test_unknown_command(self, aws_env, use_profile):
        use_profile()
        with pytest.raises(InputError, match="TinyPipeline has no command train; its commands"):
            run_tiny(["prepare", "train"])


class TestAwsSetup:
    """What is wrong in the account is found before the first job is submitted."""

    @pytest.mark.parametrize(
        ("setting", "kind"),
        [("cpu_job_queue", "job queue"), ("gpu_job_def", "job definition")],
    )
    def test_resource_that_does_not_exist(self, batch_resources, use_profile, setting, kind):
        path = use_profile(**{setting: "RasterVisionOther"})
        with pytest.raises(InputError) as exc:
            run_tiny(["prepare", "fit", "score"])
        message = str(exc.value)
        assert message.startswith(
            f"AWS Batch {kind} RasterVisionOther does not exist in region us-east-1 "
            "(nothing was submitted)"
        )
        assert f"set [BATCH] {setting} in profile 'bench' ({path})" in message
        assert not submitted_jobs(batch_resources)

    def test_job_definition_by_revision_and_arn(self, batch_resources, use_profile):
        arn = boto3.client("batch").describe_job_definitions(jobDefinitionName=JOB_DEFS["cpu"])
        use_profile(
            gpu_job_def=f"{JOB_DEFS['gpu']}:1",
            cpu_job_def=arn["jobDefinitions"][0]["jobDefinitionArn"],
        )
        run_tiny(["prepare", "fit"])
        assert len(submitted_jobs(batch_resources)) == 2

    def test_no_credentials(self, batch_resources, use_profile, monkeypatch):
        use_profile()
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        with pytest.raises(AwsError, match=r"^AWS Batch \(region us-east-1\): no AWS credentials"):
            run_tiny(["prepare", "fit"])
        assert not submitted_jobs(batch_resources)

    def test_profile_file_missing(self, aws_env, tmp_path, monkeypatch):
        monkeypatch.setenv("RV_CONFIG_DIR", str(tmp_path))
        rv_config_.set_everett_config(profile="absent")
        try:
            with pytest.raises(InputError) as exc:
                run_tiny(["score"])
        finally:
            rv_config_.set_everett_config()
        assert str(exc.value).startswith(
            f"Raster Vision profile 'absent' not found ({tmp_path / 'absent'}), so [BATCH] "
            f"cpu_job_queue is not set: install it (mkdir -p {tmp_path} && cp "
            f".rastervision/wbbenchmark {tmp_path / 'absent'})"
        )

    def test_dry_run_without_credentials_prints_the_graph(
        self, batch_resources, use_profile, monkeypatch, capsys, caplog
    ):
        use_profile()
        monkeypatch.setenv(DRY_RUN_ENV, "1")
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        run_tiny(["prepare", "fit", "score"])
        assert [j["step"] for j in parse_dry_run(capsys.readouterr().out)] == [
            "prepare",
            "fit",
            "score",
        ]
        (warning,) = [
            r.getMessage() for r in caplog.records if r.name == "benchmark.pipeline.batch_runner"
        ]
        assert warning.startswith(
            f"No AWS credentials: not checked that job queue(s) {QUEUES['cpu']}, "
            f"{QUEUES['gpu']} and job definition(s) {JOB_DEFS['cpu']}, {JOB_DEFS['gpu']} exist"
        )

    def test_dry_run_with_credentials_checks_the_queues(
        self, batch_resources, use_profile, monkeypatch
    ):
        use_profile(gpu_job_queue="RasterVisionGpuJobQueue")
        monkeypatch.setenv(DRY_RUN_ENV, "1")
        with pytest.raises(InputError, match="job queue RasterVisionGpuJobQueue does not exist"):
            run_tiny(["fit"])


# ---- the real CLI and wb_scripts on the benchmark's pipelines ------------------------------


def run(cmd: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Run a command from the repo root; fail the test with its output if it fails."""
    full_env = {**os.environ, "RV_TMP_DIR": str(tmp_path / "rv-tmp"), **env}
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=full_env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def rastervision(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    rv_tmp = str(tmp_path / "rv-tmp")
    cli = [sys.executable, "-m", "rastervision.pipeline.cli", "-p", PROFILE, "--tmpdir", rv_tmp]
    return run([*cli, *args], tmp_path)


def assert_same_graph(submitted: list[dict], printed: list[dict]) -> None:
    """The dry run printed the jobs that were submitted (job names and ids aside)."""
    assert len(printed) == len(submitted)
    ids = {job["jobId"]: f"dry-run-{n}" for n, job in enumerate(submitted, start=1)}
    for sub, dry in zip(submitted, printed, strict=True):
        assert dry["queue"] == sub["jobQueue"]
        assert dry["job_def"] == sub["jobDefinition"]
        assert dry["array_size"] == str(sub.get("arrayProperties", {}).get("size", "-"))
        assert dry["depends_on"] == (
            ",".join(ids[d["jobId"]] for d in sub.get("dependsOn", [])) or "-"
        )
        assert dry["attempts"] == str(sub["retryStrategy"]["attempts"])
        assert shlex.split(dry["command"]) == sub["containerOverrides"]["command"]


@pytest.fixture
def catalog(tmp_path):
    return make_opencities_catalog(tmp_path / "data", test_chip_size=32)


@pytest.fixture
def data_uri(batch_resources, catalog, s3_upload) -> str:
    """The catalog's folder on S3, where Batch jobs can read its scenes and test chips.

    A batch run refuses local paths in its config (:mod:`benchmark.pipeline.remote_inputs`).
    """
    return s3_upload(catalog.root, f"s3://{BUCKET}/data")


def scene_env(catalog, data_uri: str) -> dict[str, str]:
    return {
        "ROOT_URI": ROOT,
        "TRAIN_STAC_URI": f"{data_uri}/train_tier_1/catalog.json",
        "TRAIN_IDS": catalog.train_keys[0],
        "VALID_IDS": catalog.valid_keys[0],
        "PROFILE": PROFILE,
    }


@pytest.mark.slow
def test_preprocess_command_from_the_readme(
    batch_resources, use_profile, catalog, data_uri, tmp_path
):
    use_profile()
    env = scene_env(catalog, data_uri)
    rastervision(
        "run", "batch", "benchmark.experiments.split_images", "PREPROCESS",
        "-a", "root_uri", ROOT, "-a", "train_stac_uri", env["TRAIN_STAC_URI"],
        "-a", "train_ids", env["TRAIN_IDS"], "-a", "valid_ids", env["VALID_IDS"],
        "-s", "8", tmp_path=tmp_path,
    )  # fmt: skip
    (job,) = submitted_jobs(batch_resources)
    assert job["jobQueue"] == QUEUES["cpu"] and job["jobDefinition"] == JOB_DEFS["cpu"]
    assert job["arrayProperties"] == {"size": 8} and job["retryStrategy"] == {"attempts": 3}
    assert job["containerOverrides"]["command"][-6:] == [
        f"{ROOT}/split_images-config.json", "PREPROCESS", "--runner", "batch", "--num-splits", "8"
    ]  # fmt: skip

    dry = run([str(REPO / "wb_scripts" / "preprocess"), "--dry-run"], tmp_path, **env)
    assert_same_graph([job], parse_dry_run(dry.stdout))
    assert len(submitted_jobs(batch_resources)) == 1, "the dry run submitted a job"


@pytest.mark.slow
def test_benchmark_command_from_the_readme(
    batch_resources, use_profile, catalog, data_uri, tmp_path
):
    use_profile()
    env = {
        **scene_env(catalog, data_uri),
        "EXPERIMENT_ID": "bench-exp",
        # The test catalog is read here, as docs/aws-batch.md advises; the chips from S3.
        "TEST_STAC_URI": catalog.test_catalog_uri,
        "TEST_IMG_DIR": f"{data_uri}/test",
    }
    # The benchmark's config lists PREPROCESS's windows, so split the scenes (into S3) first.
    scenes = read_training_scenes(catalog.catalog_uri)
    for key in (env["TRAIN_IDS"], env["VALID_IDS"]):
        cut_scene_into_windows(scenes[key], f"{ROOT}/split_images/{key}", split_size=64)
    rastervision(
        "run", "batch", "benchmark.experiments.benchmark",
        "chip", "train", "predict", "eval", "bundle", "POSTPROCESS",
        "-a", "experiment_id", env["EXPERIMENT_ID"], "-a", "root_uri", ROOT,
        "-a", "train_stac_uri", env["TRAIN_STAC_URI"],
        "-a", "test_stac_uri", env["TEST_STAC_URI"], "-a", "test_img_dir", env["TEST_IMG_DIR"],
        "-a", "train_ids", env["TRAIN_IDS"], "-a", "valid_ids", env["VALID_IDS"],
        "-s", "10", tmp_path=tmp_path,
    )  # fmt: skip
    jobs = submitted_jobs(batch_resources)
    steps = [j["containerOverrides"]["command"][5] for j in jobs]
    assert steps == ["chip", "train", "predict", "eval", "bundle", "POSTPROCESS"]
    devices = ["cpu", "gpu", "gpu", "cpu", "cpu", "cpu"]
    assert [j["jobQueue"] for j in jobs] == [QUEUES[d] for d in devices]
    assert [j["jobDefinition"] for j in jobs] == [JOB_DEFS[d] for d in devices]
    assert [j.get("arrayProperties", {}).get("size") for j in jobs] == [10, None, 10] + [None] * 3
    assert [j.get("dependsOn") for j in jobs] == [None] + [
        [{"jobId": parent["jobId"]}] for parent in jobs[:-1]
    ]
    assert {j["retryStrategy"]["attempts"] for j in jobs} == {3}
    config = f"{ROOT}/pipeline-config/bench-exp.json"
    assert {j["containerOverrides"]["command"][4] for j in jobs} == {config}

    dry = run([str(REPO / "wb_scripts" / "benchmark"), "--dry-run"], tmp_path, **env)
    assert_same_graph(jobs, parse_dry_run(dry.stdout))
    assert len(submitted_jobs(batch_resources)) == len(jobs), "the dry run submitted jobs"
