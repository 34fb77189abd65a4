"""The whole pipeline on S3, as on AWS Batch, while S3 fails requests: the outputs of a local run.

PREPROCESS and ``chip train predict eval bundle POSTPROCESS`` run with every URI on S3, behind
the fault proxy of ``tools/s3_fault_proxy.py``: boto3's requests (our outputs, Raster
Vision's downloads and uploads) meet every fault kind, the aws CLI's (training's output sync)
a few chosen ones, GDAL's pixel reads the error answers it retries. The outputs are compared
with the same tiny run made locally without faults (``finished_run``), which a seeded run
repeats to the bit. Each client's faults one by one, and faults that outlast the retries:
``tests/data/test_retries.py``, ``tests/data/test_s3_file_system.py``, ``tests/cli/``.
"""

import boto3
import pytest

from tests.fixtures.cli import CHIP, run_whole_pipeline
from tests.fixtures.opencities import make_opencities_catalog
from tests.fixtures.outputs import output_differences
from tools.s3_fault_proxy import FAULT_KINDS, FaultRule

pytestmark = [pytest.mark.slow, pytest.mark.aws, pytest.mark.faults]

BUCKET = "open-cities-faults"
BOTO3 = "^Boto3/"
# GDAL does not retry a pixel read cut short (benchmark.data.retries), nor a failed listing,
# after which it probes 20 sidecar names per file: its faults are error answers on pixels.
GDAL = "^GDAL/"
PIXELS = r"\.tif$"
SCHEDULE = [
    # Training's output sync, the aws CLI's: the first upload cut, a multipart start refused.
    FaultRule("reset", "PUT", agent="aws-cli", at=(1,)),
    FaultRule("slow_down", "PUT", agent="aws-cli", at=(3,)),
    FaultRule("internal_error", "POST", agent="aws-cli", at=(1,)),
    FaultRule("truncate", "GET", agent="aws-cli", at=(1,)),
    FaultRule("internal_error", "GET", PIXELS, agent=GDAL, every=15),
    FaultRule("slow_down", "GET", PIXELS, agent=GDAL, every=17),
    FaultRule("throttle", "GET", PIXELS, agent=GDAL, every=19),
    # Not POST: a cut CompleteMultipartUpload retried finds its upload gone (S3 and moto alike).
    FaultRule("reset", "GET|PUT|HEAD", agent=BOTO3, every=20),
    FaultRule("truncate", "GET", agent=BOTO3, every=12),
    FaultRule("internal_error", agent=BOTO3, every=23),
    FaultRule("slow_down", agent=BOTO3, every=29),
    FaultRule("throttle", agent=BOTO3, every=31),
]


def download(prefix: str, local) -> None:
    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            path = local / obj["Key"].removeprefix(prefix)
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(BUCKET, obj["Key"], str(path))


def test_transient_faults_change_no_output(tmp_path, faulty_s3, s3_upload, finished_run):
    catalog = make_opencities_catalog(tmp_path / "data", test_chip_size=CHIP)
    data_uri = s3_upload(tmp_path / "data", f"s3://{BUCKET}/data")
    faulty_s3.set_rules(SCHEDULE)
    root = f"s3://{BUCKET}/out"
    run_whole_pipeline(
        catalog,
        root,
        tmp_path,
        train_stac_uri=f"{data_uri}/train_tier_1/catalog.json",
        test_stac_uri=f"{data_uri}/test/catalog.json",
    )
    counts = faulty_s3.counts()
    cli_faults = [s for s in faulty_s3.seen() if s.fault and s.agent.startswith("aws-cli/")]
    faulty_s3.set_rules([])

    print(counts)  # with -s: how many of each the run rode out (about 60 in all)
    assert all(counts[kind] > 0 for kind in FAULT_KINDS), counts
    assert len(cli_faults) >= 3, cli_faults  # training's sync met its faults
    download("out/", tmp_path / "s3-out")
    theirs = finished_run["root"]
    roots = (
        {root: "ROOT", data_uri: "DATA"},
        {str(theirs): "ROOT", str(finished_run["catalog"].root): "DATA"},
    )
    assert output_differences(tmp_path / "s3-out", theirs, roots) == []
