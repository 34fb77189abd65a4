"""How often an S3 request is tried before a command gives up: set here, and only here.

S3 answers ``500 InternalError``, ``503 SlowDown`` and drops connections under load; a long
run on AWS Batch sends tens of thousands of requests, so some fail, and a request that is not
tried again costs the whole command. Three clients reach S3, each with its own settings:

- boto3/botocore (our outputs, Raster Vision's downloads and uploads) and the ``aws`` CLI
  (Raster Vision's ``aws s3 sync``, a subprocess) read ``AWS_RETRY_MODE`` and
  ``AWS_MAX_ATTEMPTS``. Their default, ``legacy`` mode, makes 5 attempts and waits the same
  (up to 8 s) after an error as after a throttle. ``standard`` retries the same answers (500,
  502-504, ``SlowDown`` and the other throttling codes, 429, dropped connections) with
  jittered exponential backoff, 1 s base and 20 s cap (botocore 1.44, boto3's, waits only 50 ms
  base after an error that is not a throttle; the aws CLI 1.46 carries its own botocore 1.43),
  and keeps a retry budget per client that stops retrying when most requests fail, so a dead
  endpoint fails fast instead of piling up waits. ``adaptive`` adds a client-side rate limiter
  that slows every request of the process after one throttle: not what a pipeline that mostly
  reads wants. 10 attempts ride out about a minute of ``SlowDown``. s3transfer (downloads,
  uploads, ``aws s3 sync``) also retries a body cut short, 5 times.
- GDAL's ``/vsis3/`` (rasterio reading scenes, windows, chips and predictions from S3) reads
  ``GDAL_HTTP_MAX_RETRY`` (GDAL's default: 0, never retry) and ``GDAL_HTTP_RETRY_DELAY``
  (default 30 s, doubled with jitter after each retry). GDAL 3.10 retries 429, 500, 502-504,
  a 400 ``RequestTimeout`` and connections that time out or are reset before an answer. It
  does not retry a ``200``/``206`` answer whose body is cut short: the read fails (the GTiff
  driver reports the short block; nothing wrong is written) and so does the command; a re-run
  resumes. Nor a failed directory listing: it then asks for each sidecar file it knows (some
  20 per image), slower but complete. ``GDAL_HTTP_RETRY_CODES`` is left alone: setting it
  replaces GDAL's whole list, dropped connections included.

:func:`apply_retry_defaults` sets each variable the user has not set (in the environment or,
for botocore, in the profile of ``~/.aws/config``). It runs where every process of ours
starts: the plugin registration (the first thing every ``rastervision`` command, and so every
Batch job, runs) and our own console scripts. Environment variables reach the ``aws`` CLI and
every other subprocess, so neither the Dockerfile nor the Batch job definitions carry any of
these: one place says them, and a job or user who sets one keeps theirs.
"""

import configparser
import os
from collections.abc import MutableMapping
from pathlib import Path

RETRY_DEFAULTS: dict[str, str] = {
    "AWS_RETRY_MODE": "standard",
    "AWS_MAX_ATTEMPTS": "10",
    "GDAL_HTTP_MAX_RETRY": "5",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
}
# The ~/.aws/config key that stands for each botocore variable.
AWS_CONFIG_KEYS = {"AWS_RETRY_MODE": "retry_mode", "AWS_MAX_ATTEMPTS": "max_attempts"}


def _aws_profile_settings(environ: MutableMapping[str, str]) -> set[str]:
    """The retry keys the active profile of the AWS config file sets (botocore reads them)."""
    path = Path(environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config").expanduser()
    profile = environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"
    section = profile if profile == "default" else f"profile {profile}"
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except (OSError, configparser.Error):  # botocore will say what is wrong with it
        return set()
    if not parser.has_section(section):
        return set()
    return {key for key in AWS_CONFIG_KEYS.values() if parser.has_option(section, key)}


def apply_retry_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set every :data:`RETRY_DEFAULTS` variable the user has not set; return those set.

    Args:
        environ: the environment to complete (default ``os.environ``, which subprocesses
            inherit).
    """
    environ = os.environ if environ is None else environ
    in_profile = _aws_profile_settings(environ)
    applied = {}
    for name, value in RETRY_DEFAULTS.items():
        if name in environ or AWS_CONFIG_KEYS.get(name) in in_profile:
            continue
        environ[name] = value
        applied[name] = value
    return applied
