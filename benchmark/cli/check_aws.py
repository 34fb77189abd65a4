"""``benchmark check-aws``: whether this AWS setup is ready for a first run.

Checks what ``wb_scripts/preprocess`` and ``wb_scripts/benchmark`` need from AWS, without
submitting anything, and prints one row per check (ready, NOT READY or not checked, with the
fix): the credentials (who AWS says you are), reading and writing under ``--root-uri`` (a
small file is written, read back and deleted), reading the training catalog, the Raster
Vision profile's ``[BATCH]`` settings, and each job queue (exists, enabled, valid) and job
definition (exists, active, its image; compared with ``--cpu-image``/``--gpu-image`` when
given, or with the ECR image ``docker/publish_image`` pushes when ``ECR_CPU_REPO``,
``ECR_GPU_REPO`` and ``ECR_IMAGE_TAG`` are set). Exit status: 0 when every row is ready, 2
otherwise.
"""

import argparse
import logging
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from benchmark.cli import options
from benchmark.console import EXIT_BAD_INPUT, EXIT_OK, log_like_rastervision
from benchmark.data.aws_errors import aws_problem, aws_region, credentials_available
from benchmark.data.uri_schemes import is_s3
from benchmark.errors import InputError

log = logging.getLogger(__name__)

READY = "ready"
NOT_READY = "NOT READY"
NOT_CHECKED = "not checked"
DEVICES = ("cpu", "gpu")
# What docker/publish_image tags the image with unless ECR_IMAGE_TAG says otherwise.
DEFAULT_IMAGE_TAG = "world-bank-challenge"
DOCS = "docs/aws-check.md"


@dataclass(frozen=True)
class Check:
    """One row of the table: what was checked, whether it is ready, and what was found."""

    name: str
    status: str
    detail: str


def _failed(name: str, exc: Exception, what: str, permission: str | None = None) -> Check:
    """A NOT READY row for ``exc``; errors we cannot explain are raised (they are bugs)."""
    if isinstance(exc, InputError):
        return Check(name, NOT_READY, str(exc))
    problem = aws_problem(exc, what, permission)
    if problem is None:
        raise exc
    return Check(name, NOT_READY, str(problem))


def check_credentials() -> tuple[Check, str | None]:
    """The credentials row, and the account id (None if AWS did not answer)."""
    import boto3
    from botocore.exceptions import NoCredentialsError

    name = "AWS credentials"
    if not credentials_available():
        return _failed(name, NoCredentialsError(), "this shell"), None
    try:
        identity = boto3.Session().client("sts").get_caller_identity()
    except Exception as exc:
        return _failed(name, exc, "sts get-caller-identity"), None
    region = aws_region()
    if region is None:
        detail = f"{identity['Arn']}; no region set: export AWS_DEFAULT_REGION (e.g. us-east-1)"
        return Check(name, NOT_READY, detail), identity["Account"]
    return Check(name, READY, f"{identity['Arn']} (region {region})"), identity["Account"]


def check_root_uri(root_uri: str) -> Check:
    """Write a small file under ``root_uri``, read it back and delete it."""
    from rastervision.aws_s3 import S3FileSystem

    from benchmark.data.uris import read_json, write_json

    name = f"read/write {root_uri}"
    if not is_s3(root_uri):
        return Check(name, NOT_READY, "not on S3: AWS Batch jobs need an s3:// ROOT_URI")
    probe = f"{root_uri.rstrip('/')}/.check_aws-{uuid.uuid4().hex[:12]}.json"
    try:
        write_json({"written_by": "benchmark.cli.check_aws"}, probe)
        read_json(probe)
    except InputError as exc:
        return Check(name, NOT_READY, str(exc))
    bucket, key = S3FileSystem.parse_uri(probe)
    try:
        S3FileSystem.get_client().delete_object(Bucket=bucket, Key=key)
    except Exception as exc:  # the run never deletes: a leftover probe file is harmless
        log.debug("%s: not deleted (%s)", probe, exc)
        return Check(name, READY, f"wrote and read {probe} (could not delete it)")
    return Check(name, READY, f"wrote, read and deleted {probe}")


def check_catalog(catalog_uri: str) -> Check:
    """Read the training catalog's root (not its items)."""
    from benchmark.data.uris import read_json

    name = "training catalog"
    try:
        catalog = read_json(catalog_uri, what="STAC catalog")
    except InputError as exc:
        return Check(name, NOT_READY, str(exc))
    children = sum(1 for link in catalog.get("links", []) if link.get("rel") == "child")
    return Check(name, READY, f"{catalog_uri} ({children} collections)")


def check_profile(profile: str) -> tuple[Check, dict[str, str]]:
    """The profile row, and the ``[BATCH]`` settings found (key -> value)."""
    from benchmark.pipeline.batch_runner import batch_setting, profile_location

    name = f"profile {profile}"
    settings, problems = {}, []
    for key in [f"{d}_{kind}" for d in DEVICES for kind in ("job_queue", "job_def")]:
        try:
            settings[key] = batch_setting(key)
        except InputError as exc:
            problems.append(str(exc))
    if problems:
        return Check(name, NOT_READY, problems[0]), settings
    return Check(name, READY, f"{profile_location()}: [BATCH] settings present"), settings


def check_job_queue(batch: Any, device: str, queue: str) -> Check:
    """The queue exists, is ENABLED and VALID."""
    name = f"{device.upper()} job queue {queue}"
    try:
        found = batch.describe_job_queues(jobQueues=[queue])["jobQueues"]
    except Exception as exc:
        return _failed(name, exc, f"AWS Batch job queue {queue}", "batch:DescribeJobQueues")
    if not found:
        return Check(
            name,
            NOT_READY,
            f"does not exist in region {aws_region()}: deploy Raster Vision's CloudFormation "
            f"stack, or set [BATCH] {device}_job_queue to a queue that exists "
            "(aws batch describe-job-queues)",
        )
    state, status = found[0].get("state"), found[0].get("status")
    if state != "ENABLED":
        return Check(
            name,
            NOT_READY,
            f"{state}: enable it (aws batch update-job-queue --job-queue {queue} --state ENABLED)",
        )
    if status not in ("VALID", "UPDATING", "CREATING"):
        reason = found[0].get("statusReason", "")
        return Check(name, NOT_READY, f"{status}: {reason} (see the AWS Batch console)")
    return Check(name, READY, f"{state}, {status}")


def check_job_definition(batch: Any, device: str, job_def: str, image: str | None) -> Check:
    """The job definition exists, is ACTIVE, and runs ``image`` (when one is expected)."""
    from benchmark.pipeline.batch_runner import find_job_definition

    name = f"{device.upper()} job definition {job_def}"
    try:
        found = find_job_definition(batch, job_def)
    except Exception as exc:
        what = f"AWS Batch job definition {job_def}"
        return _failed(name, exc, what, "batch:DescribeJobDefinitions")
    if found is None:
        return Check(
            name,
            NOT_READY,
            f"no ACTIVE job definition of that name in region {aws_region()}: deploy Raster "
            f"Vision's CloudFormation stack, or set [BATCH] {device}_job_def to one that exists "
            "(aws batch describe-job-definitions --status ACTIVE)",
        )
    used = found.get("containerProperties", {}).get("image", "")
    revision = f"revision {found.get('revision')}"
    if image is None:
        return Check(
            name,
            READY,
            f"{revision}, image {used} (not compared: set ECR_{device.upper()}_REPO or "
            f"--{device}-image)",
        )
    if used != image:
        return Check(
            name,
            NOT_READY,
            f"{revision} runs {used}, not {image}: register a revision with image {image} "
            "(or update the CloudFormation stack's image parameters)",
        )
    return Check(name, READY, f"{revision}, image {used}")


def expected_image(device: str, account: str | None, given: str | None) -> str | None:
    """The image a job definition should run: ``given``, else the one publish_image pushes."""
    repo = os.environ.get(f"ECR_{device.upper()}_REPO")
    if given or not (repo and account):
        return given
    tag = os.environ.get("ECR_IMAGE_TAG") or DEFAULT_IMAGE_TAG
    return f"{account}.dkr.ecr.{aws_region()}.amazonaws.com/{repo}:{tag}"


def check_setup(
    root_uri: str, catalog_uri: str, profile: str, images: dict[str, str | None]
) -> list[Check]:
    """Every check, in order; those that need AWS are not checked without credentials."""
    import boto3
    from rastervision.pipeline import rv_config_

    # The profile also says whether S3 reads are requester-pays: set it before any read.
    rv_config_.set_everett_config(profile=profile)
    credentials, account = check_credentials()
    can_ask_aws = credentials.status == READY

    def with_aws(name: str, check: Callable[[], Check]) -> Check:
        if can_ask_aws:
            return check()
        return Check(name, NOT_CHECKED, "needs working AWS credentials (first row)")

    checks = [
        credentials,
        with_aws(f"read/write {root_uri}", lambda: check_root_uri(root_uri)),
        with_aws("training catalog", lambda: check_catalog(catalog_uri))
        if is_s3(catalog_uri)
        else check_catalog(catalog_uri),
    ]
    profile_check, settings = check_profile(profile)
    checks.append(profile_check)
    batch = boto3.Session().client("batch") if can_ask_aws else None
    for device in DEVICES:
        queue, job_def = settings.get(f"{device}_job_queue"), settings.get(f"{device}_job_def")
        label = device.upper()
        if queue is None:
            checks.append(Check(f"{label} job queue", NOT_CHECKED, f"not set in {profile}"))
        else:
            checks.append(
                with_aws(
                    f"{label} job queue {queue}", partial(check_job_queue, batch, device, queue)
                )
            )
        if job_def is None:
            checks.append(Check(f"{label} job definition", NOT_CHECKED, f"not set in {profile}"))
        else:
            image = expected_image(device, account, images.get(device))
            checks.append(
                with_aws(
                    f"{label} job definition {job_def}",
                    partial(check_job_definition, batch, device, job_def, image),
                )
            )
    return checks


def format_table(checks: list[Check]) -> str:
    """The checks as aligned columns, and a last line saying what to do."""
    width = max(len(c.name) for c in checks)
    status_width = max(len(c.status) for c in checks)
    lines = [f"{c.name:<{width}}  {c.status:<{status_width}}  {c.detail}" for c in checks]
    ready = sum(c.status == READY for c in checks)
    if ready == len(checks):
        lines.append(f"all {ready} checks ready: wb_scripts/preprocess and wb_scripts/benchmark")
    else:
        lines.append(
            f"{ready} of {len(checks)} checks ready: fix the NOT READY rows first, then run "
            f"this again (see {DOCS})"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command's options; defaults come from the wb_scripts' environment variables."""
    from benchmark.experiments.args import DEFAULT_TRAIN_STAC_URI

    parser = options.CommandParser(
        "check-aws", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--root-uri",
        default=os.environ.get("ROOT_URI"),
        required=not os.environ.get("ROOT_URI"),
        help="the runs' root, s3://bucket/prefix (default: $ROOT_URI)",
    )
    parser.add_argument(
        "--train-stac-uri",
        default=os.environ.get("TRAIN_STAC_URI") or DEFAULT_TRAIN_STAC_URI,
        help="the train_tier_1 catalog.json (default: $TRAIN_STAC_URI, else the competition's)",
    )
    parser.add_argument(
        "--profile",
        default=os.environ.get("PROFILE") or "wbbenchmark",
        help="Raster Vision profile with the [BATCH] settings (default: $PROFILE, wbbenchmark)",
    )
    for device in DEVICES:
        parser.add_argument(
            f"--{device}-image",
            help=f"the image the {device.upper()} job definition must run (default: the ECR "
            f"image of $ECR_{device.upper()}_REPO:$ECR_IMAGE_TAG when set)",
        )
    options.add_verbose_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: print the table; 0 if everything is ready, else 2."""
    args = build_parser().parse_args(argv)
    log_like_rastervision(args.verbose)
    images = {"cpu": args.cpu_image, "gpu": args.gpu_image}
    checks = check_setup(args.root_uri, args.train_stac_uri, args.profile, images)
    sys.stdout.write(format_table(checks) + "\n")
    return EXIT_OK if all(c.status == READY for c in checks) else EXIT_BAD_INPUT


if __name__ == "__main__":  # the old entry point: an alias of ``benchmark check-aws``
    from benchmark.cli.main import alias

    sys.exit(alias("check-aws"))
