"""AWS mistakes as one line that names the URI or resource and says what to do.

Everything that reaches AWS (reading catalogs and PREPROCESS manifests from S3, writing
outputs, GDAL's ``/vsis3/`` reads, the Batch runner's checks of its queues and job
definitions) goes through :func:`aws_errors` or :func:`aws_problem`, which turn what botocore
raises into an :class:`AwsError`: an :class:`~benchmark.errors.InputError`, so the CLI shows it
as ``error: <one line>`` (the traceback with ``rastervision -v``) and exits 2. That includes
S3 failing after every retry (5xx, throttling, dropped connections; :mod:`~benchmark.data.retries`).

A HEAD request (how existence is checked) fails with a bare ``403``/``404``/``400`` and no
reason; GDAL reports most S3 failures as "does not exist". Both are asked again with a
one-byte GET through boto3, whose error names the real problem (``AccessDenied``,
``InvalidAccessKeyId``, ``NoSuchBucket``...).
"""

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn
from urllib.parse import urlparse

from benchmark.data.uri_schemes import S3_PREFIX, VSIS3_PREFIX, is_s3
from benchmark.errors import InputError

# The Open Cities AI Challenge data: a requester-pays bucket.
COMPETITION_BUCKET = "drivendata-competition-building-segmentation"
CHECK_COMMAND = "wb_scripts/check_aws"

# AwsError.kind: which mistake, for the check table and the dry run.
NO_CREDENTIALS = "no credentials"
BAD_CREDENTIALS = "bad credentials"
ACCESS_DENIED = "access denied"
REQUESTER_PAYS = "requester pays"
NO_BUCKET = "no such bucket"
WRONG_REGION = "wrong region"
UNREACHABLE = "unreachable"
UNAVAILABLE = "unavailable"  # 5xx, throttling or dropped connections after every retry

EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
INVALID = {
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidToken",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "IncompleteSignature",
}
DENIED = {"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "403", "Forbidden"}
REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "301", "IllegalLocationConstraint"}
# Answers that a retry may get past (benchmark.data.retries sets how many attempts are made).
TRANSIENT = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "Throttling"}
TRANSIENT |= {"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "429"}
# Where a wrong-region error names the bucket's region.
_EXPECTING = re.compile(r"expecting '([a-z0-9-]+)'")
# Buckets this process has seen answer: a HEAD 404 there is a missing object, not a missing
# bucket, and needs no second request (resume checks ask about thousands of missing files).
_BUCKETS_SEEN: set[str] = set()


class AwsError(InputError):
    """An AWS problem the user can fix; ``kind`` says which (one of the constants above)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class AwsAccessError(AwsError):
    """AWS refused who is asking: no, invalid or expired credentials, or access denied.

    What a dry run cannot get past without credentials, and assumes instead
    (:func:`benchmark.pipeline.dry_run.read_or_assume`).
    """


def _bucket_and_key(uri: str) -> tuple[str, str]:
    if uri.startswith(VSIS3_PREFIX):
        bucket, _, key = uri.removeprefix(VSIS3_PREFIX).partition("/")
        return bucket, key
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _s3_uri(uri: str) -> str:
    bucket, key = _bucket_and_key(uri)
    return f"{S3_PREFIX}{bucket}/{key}"


def requester_pays() -> bool:
    """Whether S3 reads are sent as requester-pays (``[AWS_S3] requester_pays`` or env)."""
    from rastervision.aws_s3 import S3FileSystem

    return S3FileSystem.get_request_payer() == "requester"


def _error_code(exc: Exception) -> tuple[str, str, dict]:
    """(code, message, response) of a botocore ClientError."""
    response = getattr(exc, "response", {}) or {}
    error = response.get("Error", {})
    status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return str(error.get("Code") or status), str(error.get("Message", "")), response


def _bucket_region(response: dict, message: str) -> str | None:
    error = response.get("Error", {})
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    found = _EXPECTING.search(message)
    return (
        error.get("Region")
        or headers.get("x-amz-bucket-region")
        or (found.group(1) if found else None)
    )


def _s3_permission(uri: str, write: bool) -> str:
    bucket, key = _bucket_and_key(uri)
    prefix = key.rsplit("/", 1)[0] + "/*" if "/" in key else "*"
    if write:
        return f"s3:PutObject on arn:aws:s3:::{bucket}/{prefix}"
    return f"s3:GetObject on arn:aws:s3:::{bucket}/{prefix} and s3:ListBucket on {bucket}"


def _explain_client_error(exc: Exception, what: str, permission: str | None) -> AwsError | None:
    code, message, response = _error_code(exc)
    bucket = _bucket_and_key(what)[0] if is_s3(what, vsis3=True) else None
    if code in EXPIRED:
        return AwsAccessError(
            f"{what}: your AWS credentials have expired ({code}): get new ones (aws sso login, "
            f"or a fresh AWS_SESSION_TOKEN), then run {CHECK_COMMAND}",
            BAD_CREDENTIALS,
        )
    if code in INVALID:
        return AwsAccessError(
            f"{what}: AWS does not accept your credentials ({code}): check AWS_ACCESS_KEY_ID, "
            f"AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN or the profile in ~/.aws/credentials, "
            f"then run {CHECK_COMMAND}",
            BAD_CREDENTIALS,
        )
    if code == "NoSuchBucket":
        return AwsError(
            f"{what}: bucket {bucket} does not exist (NoSuchBucket): check the name in the URI, "
            f"or create it (aws s3 mb s3://{bucket})",
            NO_BUCKET,
        )
    if code in REGION:
        region = _bucket_region(response, message)
        where = f"in region {region}" if region else "in another region"
        fix = f"export AWS_DEFAULT_REGION={region}" if region else "set AWS_DEFAULT_REGION to it"
        return AwsError(
            f"{what}: {'bucket ' + bucket if bucket else 'the resource'} is {where}, not "
            f"{aws_region() or 'the configured one'} ({code}): {fix} (the bucket and the Batch "
            "resources must share a region)",
            WRONG_REGION,
        )
    if code in TRANSIENT or code.startswith("5"):
        return _unavailable(what, f"{code}: {message}" if message else code, response)
    if code in DENIED:
        if bucket == COMPETITION_BUCKET and not requester_pays():
            return AwsAccessError(
                f"{what}: access denied ({code}): {bucket} is a requester-pays bucket: set "
                "requester_pays = True under [AWS_S3] in your Raster Vision profile (or export "
                "AWS_REQUEST_PAYER=requester); your account pays for the transfer",
                REQUESTER_PAYS,
            )
        if permission is None and bucket:
            permission = _s3_permission(what, write=False)
        hint = (
            "; if the bucket is requester-pays, set requester_pays = True under [AWS_S3]"
            if bucket and not requester_pays()
            else ""
        )
        return AwsAccessError(
            f"{what}: access denied ({code}): your AWS identity needs "
            f"{permission or 'permission for it'} (or use other credentials){hint}",
            ACCESS_DENIED,
        )
    return None


def _unavailable(what: str, answer: str, response: dict | None = None) -> AwsError:
    """S3 kept failing where a retry usually succeeds: say so, and how many tries were made."""
    retries = (response or {}).get("ResponseMetadata", {}).get("RetryAttempts")
    tries = f"{retries + 1} attempts" if retries is not None else "every attempt"
    return AwsError(
        f"{what}: AWS kept failing ({answer}; {tries}): try again later; AWS_MAX_ATTEMPTS "
        f"sets how often a request is tried ({os.environ.get('AWS_MAX_ATTEMPTS', 'default')} now)",
        UNAVAILABLE,
    )


def aws_problem(exc: BaseException, what: str, permission: str | None = None) -> AwsError | None:
    """The one-line :class:`AwsError` for what botocore raised about ``what``, if it knows one.

    Follows ``exc``'s chain (Raster Vision wraps botocore's errors in ``NotReadableError``,
    boto3's uploads in ``S3UploadFailedError``).

    Args:
        exc: the exception raised.
        what: the URI or resource (e.g. ``AWS Batch job queue X``) the message starts with.
        permission: the IAM permission to name if access is denied (for S3 URIs: worked out).
    """
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        EndpointConnectionError,
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NoCredentialsError | PartialCredentialsError):
            return AwsAccessError(
                f"{what}: no AWS credentials found: run `aws configure` (or set AWS_PROFILE, or "
                f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), then {CHECK_COMMAND}",
                NO_CREDENTIALS,
            )
        if isinstance(current, ProfileNotFound):
            return AwsAccessError(
                f"{what}: {current}: set AWS_PROFILE to one of `aws configure list-profiles` "
                "(or unset it)",
                NO_CREDENTIALS,
            )
        if isinstance(current, NoRegionError):
            return AwsError(
                f"{what}: no AWS region set: export AWS_DEFAULT_REGION (the region of your "
                "bucket and Batch resources, e.g. us-east-1)",
                WRONG_REGION,
            )
        if isinstance(current, EndpointConnectionError):
            return AwsError(
                f"{what}: cannot reach {current.kwargs.get('endpoint_url')}: check the network "
                "and AWS_DEFAULT_REGION",
                UNREACHABLE,
            )
        if isinstance(current, ClientError):
            return _explain_client_error(current, what, permission)
        if isinstance(current, ConnectionError | HTTPClientError):  # reset, cut short, timeout
            return _unavailable(what, f"{type(current).__name__}: {current}")
        # s3transfer's RetriesExceededError keeps the last failure as an attribute.
        current = (
            current.__cause__ or current.__context__ or getattr(current, "last_exception", None)
        )
    return None


def _raise_translated(exc: Exception, what: str) -> NoReturn:
    problem = aws_problem(exc, what)
    if problem is None:
        raise exc
    raise problem from exc


def probe_s3_object(uri: str) -> bool:
    """Whether the S3 object exists, asked with a one-byte GET (its errors say why).

    Raises:
        AwsError: a credential, permission, bucket or region problem.
    """
    from botocore.exceptions import BotoCoreError, ClientError
    from rastervision.aws_s3 import S3FileSystem

    bucket, key = _bucket_and_key(uri)
    try:
        s3 = S3FileSystem.get_client()
        s3.get_object(
            Bucket=bucket,
            Key=key,
            Range="bytes=0-0",
            RequestPayer=S3FileSystem.get_request_payer(),
        )
    except ClientError as exc:
        code = _error_code(exc)[0]
        if code == "NoSuchKey":
            _BUCKETS_SEEN.add(bucket)
            return False
        if code == "InvalidRange":  # an empty object
            return True
        _raise_translated(exc, _s3_uri(uri))
    except BotoCoreError as exc:
        _raise_translated(exc, _s3_uri(uri))
    return True


def s3_object_exists(uri: str) -> bool:
    """Whether an object exists at ``uri`` (``s3://``): HEAD, and a GET if HEAD fails unclearly.

    Raises:
        AwsError: a credential, permission, bucket or region problem; Raster Vision's own
            check would answer "no" and the user would read "not found".
    """
    from botocore.exceptions import BotoCoreError, ClientError
    from rastervision.aws_s3 import S3FileSystem

    bucket, key = _bucket_and_key(uri)
    try:
        s3 = S3FileSystem.get_client()
        s3.head_object(Bucket=bucket, Key=key, RequestPayer=S3FileSystem.get_request_payer())
    except ClientError as exc:
        code = _error_code(exc)[0]
        if code == "404" and bucket in _BUCKETS_SEEN:
            return False
        if code in TRANSIENT or code.startswith("5"):  # clear enough: asking again would wait
            _raise_translated(exc, uri)  # as long again for the same answer
        return probe_s3_object(uri)
    except BotoCoreError as exc:
        _raise_translated(exc, uri)
    _BUCKETS_SEEN.add(bucket)
    return True


@contextmanager
def aws_errors(uri: str, write: bool = False) -> Iterator[None]:
    """Raise what goes wrong reaching ``uri`` on AWS as one :class:`AwsError` line.

    botocore's errors are translated; a rasterio/GDAL error on an S3 URI (GDAL says "does not
    exist" or "Access Denied" for most problems) is asked again through boto3. Anything else,
    and every error for a local path, passes through unchanged.
    """
    try:
        yield
    except AwsError:
        raise
    except Exception as exc:
        if not is_s3(uri, vsis3=True):
            raise
        problem = aws_problem(exc, _s3_uri(uri), _s3_permission(uri, write) if write else None)
        if problem is None and not write and type(exc).__module__.startswith("rasterio"):
            # Only the object's existence is asked again: a missing one stays GDAL's error.
            try:
                probe_s3_object(uri)
            except AwsError as found:
                problem = found
        if problem is None:
            raise
        raise problem from exc


def credentials_available() -> bool:
    """Whether boto3 finds credentials (without asking AWS whether they are valid)."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.Session().get_credentials() is not None
    except BotoCoreError:  # e.g. AWS_PROFILE names a profile that does not exist
        return False


def aws_region() -> str | None:
    """The region boto3 uses (``AWS_DEFAULT_REGION``, ``AWS_REGION`` or ~/.aws/config)."""
    import boto3

    return boto3.Session().region_name or os.environ.get("AWS_REGION")
