"""The ``batch`` runner: Raster Vision's AWS Batch runner with retries, a dry run and clear errors.

RV 0.31's ``rastervision run batch ...`` submits one job per command, each depending on the one
before, as an array job of ``-s N`` children for split commands and on the GPU queue for GPU
commands. This subclass keeps that job graph and adds what running the benchmark needs:

- ``attempts`` from the profile's ``[BATCH]`` section becomes each job's retry strategy (RV
  reads the key but never passes it on), so a job whose spot instance is reclaimed runs again;
- ``BENCHMARK_BATCH_DRY_RUN=1`` prints the job graph, one line per job, and submits nothing
  (it replaces RV 0.10's ``-n``);
- a missing queue or job definition, an unknown command or a local pipeline config (which a
  Batch container cannot read) is one :class:`~benchmark.errors.InputError` line, raised before
  anything is submitted, so no half-submitted graph is left waiting on AWS.

Commands are submitted in the pipeline's order whatever order they are given in, and their
names match case-insensitively (``postprocess`` is ``POSTPROCESS``).
"""

import logging
import os
import re
import shlex
from dataclasses import dataclass

import click
from everett.manager import ConfigurationMissingError
from rastervision.aws_batch.aws_batch_runner import AWS_BATCH, AWSBatchRunner
from rastervision.pipeline import rv_config_
from rastervision.pipeline.pipeline import Pipeline

from benchmark.errors import InputError

log = logging.getLogger(__name__)

DRY_RUN_ENV = "BENCHMARK_BATCH_DRY_RUN"
# AWS Batch accepts 1 to 10 attempts in a retry strategy.
MAX_ATTEMPTS = 10
PROFILE_TEMPLATE = ".rastervision/wbbenchmark"
# What AWS Batch accepts as a job name.
JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


@dataclass(frozen=True)
class BatchJob:
    """One AWS Batch job of the graph: what is submitted, and after which job."""

    command: str
    name: str
    queue: str
    job_def: str
    array_size: int | None
    attempts: int
    container_command: list[str]

    def describe(self, job_id: str, depends_on: list[str]) -> str:
        """One line naming every field, shell-quoted so it can be split back with shlex."""
        fields = {
            "id": job_id,
            "name": self.name,
            "queue": self.queue,
            "job_def": self.job_def,
            "array_size": self.array_size or "-",
            "depends_on": ",".join(depends_on) or "-",
            "attempts": self.attempts,
            "command": shlex.join(self.container_command),
        }
        return f"{self.command}: " + " ".join(
            f"{k}={shlex.quote(str(v))}" for k, v in fields.items()
        )


def _profile_location() -> str:
    """Where RV reads the active profile from, for error messages."""
    if os.environ.get("RV_CONFIG"):
        return os.environ["RV_CONFIG"]
    config_dir = os.environ.get("RV_CONFIG_DIR") or rv_config_.rv_home
    return os.path.join(config_dir, rv_config_.profile)


def _setting_error(key: str, problem: str) -> InputError:
    env_name = f"{AWS_BATCH}_{key}".upper()
    return InputError(
        f"Raster Vision profile '{rv_config_.profile}' ({_profile_location()}): [BATCH] {key} "
        f"{problem}; set it there (template: {PROFILE_TEMPLATE}) or export {env_name}"
    )


def batch_setting(key: str, default: str | None = None) -> str:
    """A ``[BATCH]`` setting of the active profile (or its ``BATCH_<KEY>`` variable).

    Raises:
        InputError: the setting is missing or empty and there is no default.
    """
    try:
        value = str(rv_config_.get_namespace_config(AWS_BATCH)(key)).strip()
    except ConfigurationMissingError:
        value = ""
    if value:
        return value
    if default is None:
        raise _setting_error(key, "is not set")
    return default


def batch_attempts() -> int:
    """How many times AWS Batch may run each job (``[BATCH] attempts``, default 1)."""
    value = batch_setting("attempts", default="1")
    if not value.isdigit() or not 1 <= int(value) <= MAX_ATTEMPTS:
        problem = f"is {value!r}, not a whole number from 1 to {MAX_ATTEMPTS}"
        raise _setting_error("attempts", problem)
    return int(value)


def canonical_commands(pipeline: Pipeline, commands: list[str]) -> list[str]:
    """``commands`` named as the pipeline names them, in the pipeline's order.

    Raises:
        InputError: a command the pipeline does not have.
    """
    by_lower = {c.lower(): c for c in pipeline.commands}
    unknown = [c for c in commands if c.lower() not in by_lower]
    if unknown:
        raise InputError(
            f"{type(pipeline).__name__} has no command {', '.join(unknown)}; "
            f"its commands are {' '.join(pipeline.commands)}"
        )
    wanted = {by_lower[c.lower()] for c in commands}
    return [c for c in pipeline.commands if c in wanted]


class BenchmarkBatchRunner(AWSBatchRunner):
    """RV's AWS Batch runner plus retries, a dry run and one-line errors (see the module)."""

    def plan_jobs(
        self,
        cfg_json_uri: str,
        pipeline: Pipeline,
        commands: list[str],
        num_splits: int = 1,
        pipeline_run_name: str = "raster-vision",
    ) -> list[BatchJob]:
        """Every job to submit, in order, with all settings resolved (nothing is submitted).

        Raises:
            InputError: the config is not on S3, a command is unknown, a setting is missing or
                the run name makes an invalid job name.
        """
        if not cfg_json_uri.startswith("s3://"):
            raise InputError(
                f"{cfg_json_uri}: AWS Batch jobs cannot read a local pipeline config; "
                "use an s3:// root_uri"
            )
        attempts = batch_attempts()
        jobs = []
        for command in canonical_commands(pipeline, commands):
            cmd, args = self.build_cmd(
                command, cfg_json_uri, pipeline, num_splits, pipeline_run_name=pipeline_run_name
            )
            if not JOB_NAME.fullmatch(args["job_name"]):
                raise InputError(
                    f"{args['job_name']}: not an AWS Batch job name (at most 128 letters, digits,"
                    " - and _); change --pipeline-run-name"
                )
            device = "gpu" if args["use_gpu"] else "cpu"
            jobs.append(
                BatchJob(
                    command=command,
                    name=args["job_name"],
                    queue=args["job_queue"] or batch_setting(f"{device}_job_queue"),
                    job_def=args["job_def"] or batch_setting(f"{device}_job_def"),
                    array_size=args["num_array_jobs"],
                    attempts=attempts,
                    container_command=cmd,
                )
            )
        return jobs

    def submit(self, job: BatchJob, parent_job_ids: list[str]) -> str:
        """Submit one job to AWS Batch; its id."""
        return self.run_command(
            job.container_command,
            job_name=job.name,
            attempts=job.attempts,
            parent_job_ids=parent_job_ids,
            num_array_jobs=job.array_size,
            job_queue=job.queue,
            job_def=job.job_def,
        )

    def run(
        self,
        cfg_json_uri: str,
        pipeline: Pipeline,
        commands: list[str],
        num_splits: int = 1,
        pipeline_run_name: str = "raster-vision",
    ) -> None:
        """Submit the commands as a chain of Batch jobs, or print the chain on a dry run."""
        jobs = self.plan_jobs(cfg_json_uri, pipeline, commands, num_splits, pipeline_run_name)
        dry_run = os.environ.get(DRY_RUN_ENV) == "1"
        if dry_run:
            click.echo(f"Dry run ({DRY_RUN_ENV}=1): {len(jobs)} job(s) would be submitted")
        parents: list[str] = []
        for number, job in enumerate(jobs, start=1):
            if dry_run:
                job_id = f"dry-run-{number}"
                # The job graph is this command's output, so it goes to stdout like RV's own
                # "Stages to run" line, where it can be read or compared.
                click.echo(job.describe(job_id, parents))
            else:
                job_id = self.submit(job, parents)
                log.info("Submitted %s", job.describe(job_id, parents))
            parents = [job_id]
