"""``benchmark merge-footprints``: a footprints run's folder -> one layer, or one error line."""

from pathlib import Path

import boto3
import numpy as np
import pytest

from benchmark.cli import main
from benchmark.console import EXIT_BAD_INPUT, EXIT_OK
from benchmark.footprints.write import write_footprints
from tests.fixtures.rasters import write_raster
from tools.s3_fault_proxy import FaultRule

BOTO3 = "^Boto3/"


def image_outputs(out_dir: Path, name: str, crs: str = "EPSG:32636") -> None:
    """A footprints run's outputs for one image without buildings (a blank COG)."""
    write_raster(out_dir / f"{name}_prob.tif", np.zeros((1, 8, 8), np.uint8), crs=crs)
    write_footprints(
        [], str(out_dir / f"{name}_buildings.geojson"), str(out_dir / f"{name}_buildings.gpkg"),
        crs,
    )  # fmt: skip


def test_it_writes_the_merged_layer(tmp_path, capsys):
    image_outputs(tmp_path, "a")
    assert main.main(["merge-footprints", str(tmp_path), "--crs", "EPSG:4326"]) == EXIT_OK
    written = {p.name for p in (tmp_path / "merged").iterdir()}
    assert written == {"buildings.gpkg", "buildings.parquet"}  # the COG is not in 4326: no VRT


@pytest.mark.parametrize(
    ("layout", "argv", "problem"),
    [
        ("empty", [], "no footprints (*_buildings.gpkg) to merge"),
        ("no_cog", [], "a_prob.tif: missing"),
        ("mixed_crs", [], "choose one with --crs"),
        ("one", ["--crs", "99999"], "99999 is not a known EPSG code"),
        ("one", ["--margin", "-1"], "-1 is not a number >= 0"),
        ("one", ["--out", "x"], "unrecognized arguments: --out x"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, layout, argv, problem):
    if layout in ("no_cog", "mixed_crs", "one"):
        image_outputs(tmp_path, "a")
    if layout == "no_cog":
        (tmp_path / "a_prob.tif").unlink()
    if layout == "mixed_crs":
        image_outputs(tmp_path, "b", crs="EPSG:3857")
    assert main.main(["merge-footprints", str(tmp_path), *argv]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and problem in err
    assert not (tmp_path / "merged" / "buildings.gpkg").exists()


@pytest.mark.aws
@pytest.mark.faults
def test_an_s3_folder_is_merged_through_transient_faults(tmp_path, faulty_s3, s3_upload):
    # A Batch job's outputs on S3; every client's first request of each kind fails once and
    # is tried again (benchmark.data.retries): the listing, a GeoPackage's download, a COG's
    # header through GDAL, an output's upload.
    image_outputs(tmp_path, "a")
    image_outputs(tmp_path, "b")
    uri = s3_upload(tmp_path, "s3://merge-faults/run/out")
    faulty_s3.set_rules([
        FaultRule("slow_down", "GET", "list-type", agent=BOTO3, at=(1,)),
        FaultRule("internal_error", "GET", r"_buildings\.gpkg$", agent=BOTO3, at=(1,)),
        FaultRule("slow_down", "GET", r"_prob\.tif$", agent="^GDAL/", at=(1,)),
        FaultRule("internal_error", "PUT", "/merged/", agent=BOTO3, at=(1,)),
    ])  # fmt: skip
    assert main.main(["merge-footprints", uri]) == EXIT_OK
    assert faulty_s3.counts()["faults"] == 4
    listed = boto3.client("s3").list_objects_v2(Bucket="merge-faults", Prefix="run/out/merged/")
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in listed["Contents"]) == [
        "buildings.gpkg", "buildings.parquet", "prob.vrt",
    ]  # fmt: skip


def test_the_help_says_out_dir_may_be_on_s3(capsys):
    assert main.main(["merge-footprints", "--help"]) == EXIT_OK
    assert "local or s3://" in capsys.readouterr().out
