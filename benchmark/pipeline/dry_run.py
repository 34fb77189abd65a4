"""The batch runner's dry run: the whole job graph, even without AWS access.

``BENCHMARK_BATCH_DRY_RUN=1`` (set by ``wb_scripts/benchmark --dry-run`` and
``wb_scripts/preprocess --dry-run``) makes ``rastervision run batch`` print the jobs it would
submit and submit nothing (:mod:`benchmark.pipeline.batch_runner`). Two things stand between
a user without AWS credentials and that graph, and both are dealt with here:

- the experiments read the training catalog, PREPROCESS's manifests and the test catalog to
  build their config: :func:`read_or_assume` turns a read that AWS refuses (an
  :class:`~benchmark.data.aws_errors.AwsAccessError`) into one line saying what the graph
  assumes instead, and the assumed value; any other error, and every error outside a dry run,
  is raised as before;
- ``rastervision run`` saves the pipeline config before calling the runner: in a dry run an
  ``s3://`` config is saved to a local stand-in instead (:func:`config_uri`; a dry run writes
  nothing to S3), and the runner prints the S3 URI a real run's jobs read
  (:func:`submitted_config_uri`).

Nothing here imports Raster Vision at import time: the configs import it while RV loads plugins.
"""

import logging
import os
from collections.abc import Callable
from typing import TypeVar

from benchmark.data.aws_errors import AwsAccessError
from benchmark.data.uri_schemes import S3_PREFIX, is_s3

log = logging.getLogger(__name__)

DRY_RUN_ENV = "BENCHMARK_BATCH_DRY_RUN"
# Under RV's tmp dir root: where a dry run saves the pipeline config of an s3:// root.
STAND_IN_DIR = "benchmark-dry-run"

T = TypeVar("T")


def is_dry_run() -> bool:
    """Whether this process is a dry run (``BENCHMARK_BATCH_DRY_RUN=1``)."""
    return os.environ.get(DRY_RUN_ENV) == "1"


def read_or_assume(read: Callable[[], T], uri: str, assumption: str, assumed: T) -> T:
    """``read()``; in a dry run that AWS refuses access to ``uri``, ``assumed`` instead.

    Logs one line, ``dry run: cannot read {uri} ({reason}); the job graph assumes
    {assumption}``, so what the printed graph rests on is said.

    Raises:
        AwsAccessError: access refused outside a dry run.
        Exception: whatever else ``read`` raises (a missing file, a bad catalog...).
    """
    try:
        return read()
    except AwsAccessError as exc:
        if not is_dry_run():
            raise
        log.warning(
            "dry run: cannot read %s (%s); the job graph assumes %s", uri, exc.kind, assumption
        )
        return assumed


def _stand_in_root() -> str:
    from rastervision.pipeline import rv_config_

    return os.path.join(rv_config_.get_tmp_dir_root(), STAND_IN_DIR)


def config_uri(uri: str) -> str:
    """Where ``rastervision run`` saves a pipeline config meant for ``uri``.

    ``uri`` itself, but in a dry run an ``s3://`` one is saved under RV's tmp dir instead,
    at ``{tmp}/benchmark-dry-run/{bucket}/{key}``.
    """
    if not (is_dry_run() and is_s3(uri)):
        return uri
    return os.path.join(_stand_in_root(), uri.removeprefix(S3_PREFIX))


def submitted_config_uri(uri: str) -> str:
    """The ``s3://`` URI a dry run's local stand-in config is for; any other ``uri`` as is."""
    root = _stand_in_root() + os.sep
    if not (is_dry_run() and uri.startswith(root)):
        return uri
    return S3_PREFIX + uri.removeprefix(root).replace(os.sep, "/")
