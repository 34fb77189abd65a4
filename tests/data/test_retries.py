"""Retry defaults: set in one place, never over the user's, and every S3 client rides out S3.

Each client the pipeline uses (boto3, the aws CLI, GDAL's ``/vsis3/``) meets each fault kind
of ``tools/s3_fault_proxy.py`` once and must get the object through anyway; when the fault
does not go away, the command's error is one line naming the URI.
"""

import os
import subprocess

import boto3
import numpy as np
import pytest
import rasterio
from botocore.config import Config
from rasterio.errors import RasterioError
from rastervision.pipeline.registry import Registry

from benchmark.data.aws_errors import UNAVAILABLE, AwsError
from benchmark.data.imagery import open_scene_checked
from benchmark.data.retries import RETRY_DEFAULTS, apply_retry_defaults
from benchmark.data.s3_file_system import checked_s3_file_system
from benchmark.data.uris import read_json
from rastervision.benchmark import register_plugin
from tests.fixtures.rasters import rgba, write_raster
from tools.s3_fault_proxy import CUT_FAULTS, FAULT_KINDS, FaultRule

BUCKET = "retries"
BLOB = os.urandom(300_000)


class TestDefaults:
    def test_only_what_the_user_has_not_set(self, tmp_path):
        environ = {"AWS_MAX_ATTEMPTS": "3", "AWS_CONFIG_FILE": str(tmp_path / "none")}
        applied = apply_retry_defaults(environ)
        assert environ["AWS_MAX_ATTEMPTS"] == "3"
        assert applied == {k: v for k, v in RETRY_DEFAULTS.items() if k != "AWS_MAX_ATTEMPTS"}
        assert apply_retry_defaults(environ) == {}

    def test_the_aws_config_profile_wins(self, tmp_path):
        config = tmp_path / "config"
        config.write_text("[default]\nmax_attempts = 4\n[profile p]\nretry_mode = adaptive\n")
        environ = {"AWS_CONFIG_FILE": str(config), "AWS_PROFILE": "p"}
        apply_retry_defaults(environ)
        assert "AWS_RETRY_MODE" not in environ and environ["AWS_MAX_ATTEMPTS"] == "10"
        environ = {"AWS_CONFIG_FILE": str(config)}  # the default profile
        apply_retry_defaults(environ)
        assert "AWS_MAX_ATTEMPTS" not in environ and environ["AWS_RETRY_MODE"] == "standard"

    def test_the_plugin_sets_them_and_registers_the_checked_file_system(self, monkeypatch):
        for name in RETRY_DEFAULTS:
            monkeypatch.setenv(name, "")  # restored after the test...
            monkeypatch.delenv(name)  # ...but unset for it
        registry = Registry()
        register_plugin(registry)
        assert {name: os.environ[name] for name in RETRY_DEFAULTS} == RETRY_DEFAULTS
        assert registry.get_file_system("s3://bucket/key") is checked_s3_file_system()


@pytest.fixture
def objects(faulty_s3, tmp_path):
    """A bucket with a blob per fault kind and a tiled GeoTIFF; the GeoTIFF's pixels."""
    pixels = rgba(256, 256, seed=1)
    tif = tmp_path / "scene.tif"
    write_raster(tif, pixels, tiled=True, blockxsize=64, blockysize=64)
    # The set-up is not under test: its own retries, whatever attempts the test allows (a busy
    # moto server answered one PUT of a CI run with a 500).
    s3 = boto3.client("s3", config=Config(retries={"max_attempts": 5, "mode": "standard"}))
    s3.create_bucket(Bucket=BUCKET)
    for kind in FAULT_KINDS:
        s3.put_object(Bucket=BUCKET, Key=f"in/{kind}", Body=BLOB)
    s3.upload_file(str(tif), BUCKET, "scene.tif")
    faulty_s3.reset()
    return pixels


def each_kind_fails_once(proxy) -> None:
    """The first GET of ``in/{kind}`` and the first PUT of ``out/{kind}`` fail with ``kind``."""
    proxy.set_rules(
        [FaultRule(kind, "GET", f"/in/{kind}$", at=(1,)) for kind in FAULT_KINDS]
        + [FaultRule(kind, "PUT", f"/out/{kind}$", at=(1,)) for kind in FAULT_KINDS]
    )


def each_kind_twice(proxy) -> bool:
    return all(proxy.counts()[kind] == 2 for kind in FAULT_KINDS)


def copied_back() -> dict[str, bytes]:
    s3 = boto3.client("s3")
    return {k: s3.get_object(Bucket=BUCKET, Key=f"out/{k}")["Body"].read() for k in FAULT_KINDS}


@pytest.mark.aws
@pytest.mark.faults
class TestEachClientRidesOutEachFault:
    def test_boto3(self, faulty_s3, objects, tmp_path):
        each_kind_fails_once(faulty_s3)
        s3 = boto3.client("s3")
        for kind in FAULT_KINDS:  # as Raster Vision downloads, and our outputs are uploaded
            s3.download_file(BUCKET, f"in/{kind}", str(tmp_path / kind))
            s3.upload_file(str(tmp_path / kind), BUCKET, f"out/{kind}")
        assert each_kind_twice(faulty_s3), faulty_s3.counts()
        assert copied_back() == dict.fromkeys(FAULT_KINDS, BLOB)

    def test_aws_cli(self, faulty_s3, objects, tmp_path):
        each_kind_fails_once(faulty_s3)
        for src, dst in ((f"s3://{BUCKET}/in", tmp_path), (tmp_path, f"s3://{BUCKET}/out")):
            done = subprocess.run(["aws", "s3", "sync", str(src), str(dst)], capture_output=True)
            assert done.returncode == 0, done.stderr
        assert each_kind_twice(faulty_s3), faulty_s3.counts()
        assert copied_back() == dict.fromkeys(FAULT_KINDS, BLOB)

    @pytest.mark.parametrize("kind", FAULT_KINDS)
    def test_gdal(self, faulty_s3, objects, kind):
        """GDAL 3.10 retries error answers; a pixel read cut short fails, never reads wrong."""
        # The file's first GET opens it, the second reads the pixels.
        at = (2,) if kind in CUT_FAULTS else (1, 2)
        faulty_s3.set_rules([FaultRule(kind, "GET", f"^/{BUCKET}/scene.tif$", at=at)])
        try:
            with rasterio.open(f"s3://{BUCKET}/scene.tif") as src:
                pixels = src.read()
        except RasterioError:
            assert kind in CUT_FAULTS  # benchmark.data.retries: GDAL does not retry those
        else:
            assert kind not in CUT_FAULTS
            assert np.array_equal(pixels, objects)
        assert faulty_s3.counts()[kind] == len(at)

    def test_the_aws_cli_follows_the_environment(self, faulty_s3, objects, tmp_path, monkeypatch):
        """AWS_MAX_ATTEMPTS reaches the aws CLI (its own default would make 5 attempts)."""
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
        faulty_s3.set_rules([FaultRule.persistent("internal_error", method="GET")])
        done = subprocess.run(
            ["aws", "s3", "cp", f"s3://{BUCKET}/in/reset", str(tmp_path / "b")], capture_output=True
        )
        assert done.returncode != 0
        assert faulty_s3.counts()["internal_error"] == 3


@pytest.mark.aws
@pytest.mark.faults
@pytest.mark.usefixtures("few_s3_attempts")
class TestWhenTheFaultOutlastsTheRetries:
    def test_gdal_read_is_one_line_naming_the_uri(self, faulty_s3, objects):
        faulty_s3.set_rules([FaultRule.persistent("internal_error", method="GET")])
        uri = f"s3://{BUCKET}/scene.tif"
        with pytest.raises(AwsError) as info:
            open_scene_checked(uri)
        assert info.value.kind == UNAVAILABLE
        assert str(info.value).startswith(f"{uri}: AWS kept failing (InternalError")
        assert "\n" not in str(info.value)

    def test_boto3_read_is_one_line_naming_the_uri(self, faulty_s3, objects):
        faulty_s3.set_rules([FaultRule.persistent("slow_down")])
        uri = f"s3://{BUCKET}/in/reset"
        # The existence check (HEAD) is the first to fail; a HEAD answer has no body to name it.
        expected = rf"^{uri}: AWS kept failing \(503: Service Unavailable; 2 attempts\)"
        with pytest.raises(AwsError, match=expected):
            read_json(uri)
        assert faulty_s3.counts()["slow_down"] == 2  # not asked again with a GET: no use
