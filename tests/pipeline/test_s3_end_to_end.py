"""The whole pipeline with every URI on S3 (a local moto server), as it runs on AWS Batch."""

import io
import tarfile

import boto3
import pytest

from tests.fixtures.cli import CHIP, EXPERIMENT, run_whole_pipeline
from tests.fixtures.opencities import make_opencities_catalog

pytestmark = [pytest.mark.slow, pytest.mark.aws]

BUCKET = "open-cities"


def test_preprocess_and_benchmark_with_everything_on_s3(tmp_path, s3_upload):
    catalog = make_opencities_catalog(tmp_path / "data", test_chip_size=CHIP)
    data_uri = s3_upload(tmp_path / "data", f"s3://{BUCKET}/data")
    root = f"s3://{BUCKET}/out"
    run_whole_pipeline(
        catalog,
        root,
        tmp_path,
        train_stac_uri=f"{data_uri}/train_tier_1/catalog.json",
        test_stac_uri=f"{data_uri}/test/catalog.json",
    )

    s3 = boto3.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="out/")["Contents"]}
    for key in (
        f"out/split_images/{catalog.train_keys[0]}/manifest.json",
        f"out/bundle/{EXPERIMENT}/model-bundle.zip",
        f"out/eval/{EXPERIMENT}/eval.json",
    ):
        assert key in keys
    assert not [k for k in keys if "/.tmp-" in k]
    tgz = s3.get_object(Bucket=BUCKET, Key=f"out/submission/{EXPERIMENT}/submission.tgz")
    with tarfile.open(fileobj=io.BytesIO(tgz["Body"].read())) as tar:
        assert sorted(tar.getnames()) == sorted(f"{i}.tif" for i in catalog.test_chip_ids)
