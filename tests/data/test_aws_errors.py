"""Every AWS mistake a user can make reading or writing S3 is one line naming the URI and the fix.

Against the local moto server: no credentials, a bucket that does not exist, a bucket the
user's IAM policy denies (and the competition's requester-pays bucket), unknown keys and bad
secrets, for boto3's reads and writes and GDAL's. Expired tokens and wrong regions, which moto
does not produce, are botocore's own error responses handed to the translation.
"""

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from rastervision.pipeline.file_system import NotReadableError

from benchmark.data import aws_errors as ae
from benchmark.data.aws_errors import AwsError, aws_errors, aws_problem
from benchmark.data.imagery import open_scene_checked
from benchmark.data.stac import read_training_scenes
from benchmark.data.uris import read_json, uri_exists, write_json
from benchmark.errors import InputError
from tests.fixtures.aws import iam_enforced, iam_user_keys

pytestmark = pytest.mark.aws

OPEN = "bench-open"
DENIED = "bench-denied"


@pytest.fixture
def buckets(aws_env):
    s3 = boto3.client("s3")
    for bucket in (OPEN, DENIED, ae.COMPETITION_BUCKET):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="a/catalog.json", Body=b'{"links": []}')
    return aws_env


@pytest.fixture
def as_user(buckets, monkeypatch):
    """Credentials of an IAM user allowed only OPEN, with moto enforcing IAM."""

    real_id, real_secret = iam_user_keys("reader", [OPEN])

    def use(key_id: str | None = None, secret: str | None = None) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id or real_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret or real_secret)

    with iam_enforced(buckets.url):
        yield use


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


class TestMoto:
    def test_no_credentials(self, buckets, monkeypatch):
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        uri = f"s3://{OPEN}/a/catalog.json"
        with pytest.raises(AwsError) as exc:
            read_json(uri)
        assert exc.value.kind == ae.NO_CREDENTIALS
        assert one_line(exc).startswith(f"{uri}: no AWS credentials found: run `aws configure`")

    def test_bucket_that_does_not_exist(self, buckets):
        uri = "s3://bench-no-such-bucket/root/split_images/manifest.json"
        with pytest.raises(AwsError, match="bucket bench-no-such-bucket does not exist") as exc:
            uri_exists(uri)
        assert exc.value.kind == ae.NO_BUCKET
        assert "aws s3 mb s3://bench-no-such-bucket" in one_line(exc)

    def test_missing_object_is_still_not_found(self, buckets):
        assert not uri_exists(f"s3://{OPEN}/a/none.json")
        assert not uri_exists(f"s3://{OPEN}/a/other.json")  # the bucket is known: HEAD only
        with pytest.raises(InputError, match=r"none\.json: manifest not found"):
            read_json(f"s3://{OPEN}/a/none.json", what="manifest")

    def test_denied_bucket(self, as_user):
        as_user()
        assert uri_exists(f"s3://{OPEN}/a/catalog.json")
        uri = f"s3://{DENIED}/a/catalog.json"
        with pytest.raises(AwsError) as exc:
            read_json(uri)
        assert exc.value.kind == ae.ACCESS_DENIED
        assert one_line(exc).startswith(f"{uri}: access denied (AccessDenied): your AWS")
        assert f"s3:GetObject on arn:aws:s3:::{DENIED}/a/*" in str(exc.value)
        assert "requester_pays = True" in str(exc.value)  # the hint, in case

    def test_denied_write_names_put_object(self, as_user):
        as_user()
        with pytest.raises(AwsError, match=rf"s3:PutObject on arn:aws:s3:::{DENIED}/out/\*"):
            write_json({}, f"s3://{DENIED}/out/x.json")

    def test_competition_bucket_without_requester_pays(self, as_user):
        as_user()
        uri = f"s3://{ae.COMPETITION_BUCKET}/a/catalog.json"
        with pytest.raises(AwsError) as exc:
            read_training_scenes(uri)
        assert exc.value.kind == ae.REQUESTER_PAYS
        assert "requester-pays bucket: set requester_pays = True under [AWS_S3]" in one_line(exc)

    @pytest.mark.parametrize(
        ("key_id", "secret", "code"),
        [("AKIAUNKNOWN000000000", "x", "InvalidAccessKeyId"), (None, "wrong", "SignatureDoes")],
    )
    def test_credentials_aws_refuses(self, as_user, key_id, secret, code):
        as_user(key_id, secret)
        with pytest.raises(AwsError, match=rf"does not accept your credentials \({code}") as exc:
            uri_exists(f"s3://{OPEN}/a/catalog.json")
        assert exc.value.kind == ae.BAD_CREDENTIALS

    def test_gdal_read_of_denied_bucket(self, as_user):
        as_user()
        with pytest.raises(AwsError, match=rf"s3://{DENIED}/scene.tif: access denied") as exc:
            open_scene_checked(f"s3://{DENIED}/scene.tif")
        assert exc.value.kind == ae.ACCESS_DENIED

    def test_gdal_missing_file_keeps_gdals_error(self, buckets):
        with pytest.raises(InputError, match="cannot read as a raster"):
            open_scene_checked(f"s3://{OPEN}/none.tif")


def client_error(code: str, status: int, message: str = "", **error: str) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": message, **error},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}},
    }
    return ClientError(response, "GetObject")


class TestTranslation:
    """Responses moto cannot give, as botocore parses them from AWS."""

    def test_expired_token(self):
        problem = aws_problem(client_error("ExpiredToken", 400), "s3://b/k.json")
        assert problem.kind == ae.BAD_CREDENTIALS
        assert str(problem).startswith("s3://b/k.json: your AWS credentials have expired")

    def test_wrong_region_names_the_buckets(self, monkeypatch):
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        error = client_error(
            "AuthorizationHeaderMalformed",
            400,
            "the region 'us-east-1' is wrong; expecting 'eu-west-1'",
            Region="eu-west-1",
        )
        problem = aws_problem(error, "s3://b/k.json")
        assert problem.kind == ae.WRONG_REGION
        assert "bucket b is in region eu-west-1, not us-east-1" in str(problem)
        assert "export AWS_DEFAULT_REGION=eu-west-1" in str(problem)

    def test_permanent_redirect_from_a_head_request(self):
        error = client_error("301", 301)
        error.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] = "af-south-1"
        assert "AWS_DEFAULT_REGION=af-south-1" in str(aws_problem(error, "s3://b/k"))

    def test_follows_raster_visions_wrapping(self):
        try:
            try:
                raise NoCredentialsError()
            except NoCredentialsError as exc:
                raise NotReadableError("Could not read s3://b/k") from exc
        except NotReadableError as wrapped:
            assert aws_problem(wrapped, "s3://b/k").kind == ae.NO_CREDENTIALS

    def test_unknown_errors_and_local_paths_pass_through(self, tmp_path):
        assert aws_problem(client_error("InvalidObjectState", 403), "s3://b/k") is None
        # S3 failing after every retry is known: benchmark.data.retries, tests/data/test_retries.py
        assert aws_problem(client_error("SlowDown", 503), "s3://b/k").kind == "unavailable"
        with pytest.raises(ValueError, match="other"), aws_errors(str(tmp_path / "x.json")):
            raise ValueError("other")
        with pytest.raises(InputError, match=r"none\.json: file not found"):
            read_json(str(tmp_path / "none.json"))
