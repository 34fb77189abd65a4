"""``benchmark-predict`` with its chips and masks on a faulty S3: the same masks, or one line."""

from pathlib import Path

import boto3
import pytest

from benchmark.cli.predict import main
from tests.fixtures.models import bundle_loader
from tests.fixtures.rasters import rgba, write_raster
from tools.s3_fault_proxy import FAULT_KINDS, FaultRule

pytestmark = [
    pytest.mark.aws,
    pytest.mark.faults,
    pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning"),
]

BUCKET = "predict-faults"
CHIP_IDS = ["a1", "b2", "c3"]
NOT_GDAL = "^(?!GDAL/)"  # GDAL does not retry a body cut short (benchmark.data.retries)
# The chips and masks, not GDAL's listing: a failed listing (which GDAL does not retry) makes it
# probe 20 sidecar names per file, each another retried GET: slow, and nothing is lost.
DATA = r"\.tif$"


def predict(img_dir: str, out_dir: str) -> int:
    options = ["--chip-size", "64", "--num-workers", "0", "--no-fast", "--batch-size", "2"]
    return main(["b.zip", img_dir, out_dir, *options], load_bundle=bundle_loader(overlap=8))


def s3_objects(prefix: str) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {
        o["Key"].removeprefix(prefix): s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
        for o in listed
    }


@pytest.fixture
def img_uri(tmp_path: Path, s3_upload) -> str:
    """Three test chips, {id}/{id}.tif, in a local folder and on S3."""
    for i, chip_id in enumerate(CHIP_IDS):
        write_raster(tmp_path / "img" / chip_id / f"{chip_id}.tif", rgba(64, 64, seed=i), crs=None)
    return s3_upload(tmp_path / "img", f"s3://{BUCKET}/img")


def test_transient_faults_leave_the_masks_as_a_run_without_them(faulty_s3, img_uri, tmp_path):
    assert predict(str(tmp_path / "img"), str(tmp_path / "local")) == 0  # the reference
    faulty_s3.set_rules(
        [FaultRule("reset", "GET|PUT|HEAD", agent=NOT_GDAL, at=(2,)),
         FaultRule("truncate", "GET", agent=NOT_GDAL, at=(1,)),
         FaultRule("internal_error", path=DATA, at=(2,)),
         FaultRule("slow_down", path=DATA, at=(4,)),
         FaultRule("throttle", path=DATA, at=(6,))]
    )  # fmt: skip
    assert predict(img_uri, f"s3://{BUCKET}/masks") == 0
    counts = faulty_s3.counts()
    faulty_s3.set_rules([])
    local = {p.name: p.read_bytes() for p in (tmp_path / "local").glob("*.tif")}
    assert s3_objects("masks/") == local and len(local) == len(CHIP_IDS)
    assert all(counts[kind] == 1 for kind in FAULT_KINDS), counts


def test_a_fault_that_outlasts_the_retries_is_one_line_exit_2_and_no_mask(
    faulty_s3, img_uri, capsys, monkeypatch
):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    faulty_s3.set_rules([FaultRule.persistent("slow_down", "PUT|POST", path="/masks/")])
    out_uri = f"s3://{BUCKET}/masks"
    assert predict(img_uri, out_uri) == 2
    last_line = capsys.readouterr().err.splitlines()[-1]  # after the progress bar
    assert last_line.startswith(f"error: {out_uri}/")
    assert "AWS kept failing (SlowDown" in last_line
    assert s3_objects("masks/") == {}
