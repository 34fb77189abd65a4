"""The ``batch`` runner: Raster Vision's AWS Batch runner with retries, a dry run and clear errors.

RV 0.31's ``rastervision run batch ...`` submits one job per command, each depending on the one
before, as an array job of ``-s N`` children for split commands and on the GPU queue for GPU
commands. This subclass keeps that job graph and adds what running the benchmark needs:

- ``attempts`` from the profile's ``[BATCH]`` section becomes each job's retry strategy (RV
  reads the key but never passes it on), so a job whose spot instance is reclaimed runs again;
- ``BENCHMARK_BATCH_DRY_RUN=1`` prints the job graph, one line per job, and submits nothing
  (it replaces RV 0.10's ``-n``);
- a missing queue or job definition (asked of AWS Batch with ``describe_job_queues`` and
  ``describe_job_definitions``), an AWS credential, permission or region problem, an unknown
  command, a local pipeline config (which a Batch container cannot read) or a local path
  among the inputs and outputs the config names (:mod:`benchmark.pipeline.remote_inputs`)
  is one :class:`~benchmark.errors.InputError` line, raised before anything is submitted (a
  dry run included), so no half-submitted graph is left waiting on AWS;
- a dry run without AWS credentials still prints the graph, and says in one line that the
  queues and job definitions were not checked; the config ``rastervision run`` saved to a
  local stand-in is printed as the ``s3://`` URI a real run's jobs read
  (:mod:`benchmark.pipeline.dry_run`).

Commands are submitted in the pipeline's order whatever order they are given in, and their
names match case-insensitively (``postprocess`` is ``POSTPROCESS``).

All of this is for our pipelines only: a pipeline that is not ours (its class is defined outside
the ``benchmark`` package) goes to :meth:`AWSBatchRunner.run` unchanged, so registering the
plugin changes nothing for other Raster Vision pipelines in the environment.
"""

import logging
import os
import re
import shlex
from dataclasses import dataclass
from typing import Any

import click
from everett.manager import ConfigurationMissingError
from rastervision.aws_batch.aws_batch_runner import AWS_BATCH, AWSBatchRunner
from rastervision.pipeline import rv_config_
from rastervision.pipeline.pipeline import Pipeline

from benchmark.console import one_line_errors
from benchmark.data.aws_errors import (
    CHECK_COMMAND,
    aws_problem,
    aws_region,
    credentials_available,
)
from benchmark.data.uri_schemes import is_s3
from benchmark.errors import InputError
from benchmark.pipeline.dry_run import DRY_RUN_ENV, is_dry_run, submitted_config_uri
from benchmark.pipeline.remote_inputs import require_remote_uris

log = logging.getLogger(__name__)

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


def profile_location() -> str:
    """Where RV reads the active profile from, for error messages."""
    if os.environ.get("RV_CONFIG"):
        return os.environ["RV_CONFIG"]
    config_dir = os.environ.get("RV_CONFIG_DIR") or rv_config_.rv_home
    return os.path.join(config_dir, rv_config_.profile)


def _profile_missing() -> bool:
    """Whether the active profile's file is missing (and no RV_CONFIG file stands in)."""
    return not os.environ.get("RV_CONFIG") and not os.path.isfile(profile_location())


def _setting_error(key: str, problem: str) -> InputError:
    env_name = f"{AWS_BATCH}_{key}".upper()
    if _profile_missing():
        path = profile_location()
        return InputError(
            f"Raster Vision profile '{rv_config_.profile}' not found ({path}), so [BATCH] {key} "
            f"{problem}: install it (mkdir -p {os.path.dirname(path)} && cp {PROFILE_TEMPLATE} "
            f"{path}) or pick another with --profile"
        )
    return InputError(
        f"Raster Vision profile '{rv_config_.profile}' ({profile_location()}): [BATCH] {key} "
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


def _keys_naming(value: str, kind: str) -> str:
    """The ``[BATCH]`` keys set to ``value`` (``cpu_job_queue``...), for error messages."""
    keys = [k for k in (f"cpu_{kind}", f"gpu_{kind}") if batch_setting(k, default="") == value]
    return " and ".join(keys) or f"the pipeline's {kind}"


def find_job_definition(batch: Any, job_def: str) -> dict | None:
    """The newest ACTIVE job definition ``job_def`` names (name, name:revision or ARN)."""
    if job_def.startswith("arn:"):
        found = batch.describe_job_definitions(jobDefinitions=[job_def])["jobDefinitions"]
    else:
        name, _, revision = job_def.partition(":")
        pages = batch.get_paginator("describe_job_definitions").paginate(
            jobDefinitionName=name, status="ACTIVE"
        )
        found = [
            d
            for page in pages
            for d in page["jobDefinitions"]
            if not revision or str(d.get("revision")) == revision
        ]
    active = [d for d in found if d.get("status", "ACTIVE") == "ACTIVE"]
    return max(active, key=lambda d: d.get("revision", 0), default=None)


def check_batch_resources(queues: list[str], job_defs: list[str]) -> None:
    """Check that the job queues and job definitions exist in the account and region.

    Raises:
        InputError: one does not exist (naming the profile key to change), or AWS cannot be
            asked (credentials, permission, region).
    """
    import boto3

    region = aws_region()
    where = f"region {region}" if region else "no region set"
    try:
        batch = boto3.Session().client("batch")  # a new session reads the environment again
        described = batch.describe_job_queues(jobQueues=queues)["jobQueues"]
        known = {name for q in described for name in (q["jobQueueName"], q["jobQueueArn"])}
        missing_queues = [q for q in queues if q not in known]
        missing_defs = (
            [] if missing_queues else [d for d in job_defs if find_job_definition(batch, d) is None]
        )
    except Exception as exc:
        problem = aws_problem(
            exc,
            f"AWS Batch ({where})",
            permission="batch:DescribeJobQueues and batch:DescribeJobDefinitions",
        )
        if problem is None:
            raise
        raise problem from exc
    for kind, missing in (("job queue", missing_queues), ("job definition", missing_defs)):
        if missing:
            key = "job_queue" if kind == "job queue" else "job_def"
            raise InputError(
                f"AWS Batch {kind} {missing[0]} does not exist in {where} (nothing was "
                f"submitted): deploy Raster Vision's CloudFormation stack there, or set "
                f"[BATCH] {_keys_naming(missing[0], key)} in profile '{rv_config_.profile}' "
                f"({profile_location()}) to one that exists (aws batch describe-"
                f"{kind.replace(' ', '-')}s lists them); {CHECK_COMMAND} checks the setup"
            )


def is_ours(pipeline: Pipeline) -> bool:
    """Whether ``pipeline`` is one of ours (its class is defined in the ``benchmark`` package)."""
    return type(pipeline).__module__.partition(".")[0] == "benchmark"


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
        if not is_s3(cfg_json_uri):
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
        """Submit the commands as a chain of Batch jobs, or print the chain on a dry run.

        A pipeline that is not ours is Raster Vision's runner's, as if the plugin were absent.
        """
        if not is_ours(pipeline):
            super().run(cfg_json_uri, pipeline, commands, num_splits, pipeline_run_name)
            return
        with one_line_errors():
            self._run_ours(cfg_json_uri, pipeline, commands, num_splits, pipeline_run_name)

    def _run_ours(
        self,
        cfg_json_uri: str,
        pipeline: Pipeline,
        commands: list[str],
        num_splits: int,
        pipeline_run_name: str,
    ) -> None:
        dry_run = is_dry_run()
        cfg_json_uri = submitted_config_uri(cfg_json_uri)
        jobs = self.plan_jobs(cfg_json_uri, pipeline, commands, num_splits, pipeline_run_name)
        require_remote_uris(pipeline.config)
        queues = sorted({j.queue for j in jobs})
        job_defs = sorted({j.job_def for j in jobs})
        if dry_run and not credentials_available():
            log.warning(
                "No AWS credentials: not checked that job queue(s) %s and job definition(s) %s "
                "exist (%s checks them)",
                ", ".join(queues),
                ", ".join(job_defs),
                CHECK_COMMAND,
            )
        else:
            check_batch_resources(queues, job_defs)
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
                try:
                    job_id = self.submit(job, parents)
                except Exception as exc:
                    problem = aws_problem(exc, f"AWS Batch job {job.name} ({job.queue})")
                    if problem is None:
                        raise
                    raise problem from exc
                log.info("Submitted %s", job.describe(job_id, parents))
            parents = [job_id]
