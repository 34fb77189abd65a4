"""Merging the footprints of overlapping images into one layer: duplicates, edges, seams."""

import itertools
from pathlib import Path

import boto3
import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from pyproj import CRS

from benchmark.errors import InputError
from benchmark.footprints import merge
from benchmark.footprints.merge import MergeOutputs, duplicate_pairs, merge_footprints
from tests.footprints.conftest import survey_box as box

# Two 50 m images overlapping by 10 m (20 %), and a third that only touches the first.
A, B, C = (0, 0, 50, 50), (40, 0, 90, 50), (0, 50, 50, 100)


def read_layer(path: str) -> tuple[list[shapely.Geometry], list[list]]:
    """A merged GeoPackage's (or GeoParquet's) polygons and [area_m2, confidence, image] rows."""
    frame = gpd.read_file(path) if path.endswith(".gpkg") else gpd.read_parquet(path)
    rows = frame[["area_m2", "confidence", "image"]].values.tolist()
    return list(frame.geometry), rows


def merged(survey_dir: Path, **kwargs) -> tuple[list[shapely.Geometry], list[list]]:
    merge_footprints(str(survey_dir), **kwargs)
    return read_layer(MergeOutputs.of(str(survey_dir)).gpkg)


def test_a_building_in_an_overlap_is_kept_once_the_copy_farther_from_its_edge(
    make_survey_image, survey_dir
):
    # Centroid at x 43.5: 6.5 m inside A's edge (50), 3.5 m inside B's (40): A's copy wins.
    # Centroid at x 46.5: the other way round, B's copy wins.
    nearer_b, nearer_a = box(41.5, 10, 45.5, 20), box(44.5, 30, 48.5, 40)
    shift = (0.3, 0.2)
    make_survey_image("a", A, [nearer_b, nearer_a])
    make_survey_image("b", B, [shapely.affinity.translate(g, *shift) for g in (nearer_b, nearer_a)])
    geometries, rows = merged(survey_dir)
    assert [row[2] for row in rows] == ["a", "b"]
    assert geometries[0].equals(nearer_b)
    assert geometries[1].equals(shapely.affinity.translate(nearer_a, *shift))


def test_a_building_cut_by_an_edge_is_taken_whole_from_the_neighbour(make_survey_image, survey_dir):
    whole = box(47, 20, 55, 30)
    make_survey_image("a", A, [box(47, 20, 50, 30)])  # cut by A's edge at x 50
    make_survey_image("b", B, [whole])
    geometries, rows = merged(survey_dir)
    assert len(geometries) == 1 and geometries[0].equals(whole) and rows[0][2] == "b"


def test_an_edge_is_where_the_cogs_valid_data_ends(make_survey_image, survey_dir):
    # A has imagery only west of x 25: its piece of the building is cut there, not 25 m in.
    whole = box(22, 20, 30, 30)
    make_survey_image("a", A, [box(22, 20, 25, 30)], valid_x1=25)
    make_survey_image("b", (20, 0, 70, 50), [whole])
    geometries, rows = merged(survey_dir)
    assert len(geometries) == 1 and geometries[0].equals(whole) and rows[0][2] == "b"


def assert_no_duplicates(geometries: list[shapely.Geometry]) -> None:
    """No two buildings are copies of one by the merge's own rule (its promise)."""
    i, j, iou = duplicate_pairs(np.array(geometries, object))
    assert not len(i), list(zip(i.tolist(), j.tolist(), iou.round(3).tolist(), strict=True))


def iou(a: shapely.Geometry, b: shapely.Geometry) -> float:
    return a.intersection(b).area / a.union(b).area


def test_a_building_cut_by_the_edges_of_two_overlapping_images_is_their_union(
    make_survey_image, survey_dir
):
    # 20 m wide across A and B's 10 m overlap: A sees x 35-50, B x 40-55, both cut, none whole.
    house = box(35, 20, 55, 30)
    make_survey_image("a", A, [box(35, 20, 50, 30)])
    make_survey_image("b", B, [shapely.affinity.translate(box(40, 20, 55, 30), 0.2, -0.1)])
    geometries, rows = merged(survey_dir)
    assert len(geometries) == 1 and iou(geometries[0], house) > 0.97
    area, confidence, image = rows[0]
    assert area == pytest.approx(geometries[0].area, abs=0.01) and area < 150 + 150
    assert confidence == pytest.approx(0.5) and image == "a+b"


def test_a_building_cut_by_the_edges_of_four_overlapping_images_is_their_union(
    make_survey_image, survey_dir
):
    # 2 x 2 images of 50 m overlapping by 10 m; a 20 m house on their common corner is cut
    # twice in each (diagonal pieces are not the same building: only linked through the others),
    # and a small one in the four's overlap is whole in all of them.
    house, shed = box(35, 35, 55, 55), box(44, 80, 48, 84)
    rng = np.random.default_rng(1)
    for (i, x), (j, y) in itertools.product(enumerate((0, 40)), enumerate((0, 40))):
        extent = box(x, y, x + 50, y + 50)
        seen = [shapely.intersection(g, extent) for g in (house, shed)]
        seen = [shapely.affinity.translate(s, *rng.uniform(-0.2, 0.2, 2)) for s in seen if s.area]
        make_survey_image(f"img{i}{j}", (x, y, x + 50, y + 50), seen)
    geometries, rows = merged(survey_dir)
    assert len(geometries) == 2
    joined = next(g for g in geometries if g.area > 100)
    assert isinstance(joined, shapely.Polygon) and iou(joined, house) > 0.95
    assert sorted(row[2].count("+") for row in rows) == [0, 3]
    assert_no_duplicates(geometries)


@pytest.mark.parametrize(
    "blob",
    [box(10, 35, 30, 50), box(10, 35, 24, 50)],
    ids=["a copy of both", "a copy of one, running into the other"],
)
def test_a_piece_running_two_buildings_together_does_not_glue_them(
    blob, make_survey_image, survey_dir
):
    # Two houses across T and U's 10 m overlap (y 40-50), cut by both: T outlines them apart,
    # U runs their roofs together (a small tile's blob). T saw two buildings: two it stays.
    t_pieces = [box(10, 40, 20, 58), box(22, 40, 30, 58)]
    make_survey_image("t", (0, 40, 50, 90), t_pieces)
    make_survey_image("u", (0, 0, 50, 50), [blob])
    geometries, rows = merged(survey_dir)
    assert [row[2] for row in rows] == ["t", "t"]
    assert [g.wkb for g in geometries] == [g.wkb for g in t_pieces]


def test_a_whole_copy_wins_over_cut_ones(make_survey_image, survey_dir):
    # Cut by A's edge at x 50 and by B's at x 40; D (x 20-70) holds it whole.
    house = box(35, 20, 55, 30)
    make_survey_image("a", A, [box(35, 20, 50, 30)])
    make_survey_image("b", B, [box(40, 20, 55, 30)])
    make_survey_image("d", (20, 0, 70, 50), [shapely.affinity.translate(house, 0.3, 0)])
    geometries, rows = merged(survey_dir)
    assert len(geometries) == 1 and rows[0][2] == "d"
    assert geometries[0].equals(shapely.affinity.translate(house, 0.3, 0))


def test_halves_cut_by_a_seam_between_touching_images_are_joined(make_survey_image, survey_dir):
    make_survey_image("a", A, [box(20, 46, 30, 50)])
    make_survey_image("c", C, [box(20, 50, 30, 54)])
    geometries, rows = merged(survey_dir)
    assert len(geometries) == 1
    assert geometries[0].normalize().equals(box(20, 46, 30, 54).normalize())
    area, confidence, image = rows[0]
    assert area == pytest.approx(80) and confidence == pytest.approx(0.5) and image == "a+c"


def test_buildings_far_from_other_images_pass_through_unchanged(make_survey_image, survey_dir):
    # More than the margin (20 m) from the other image's extent.
    far = [box(5, 5, 10, 12), shapely.Polygon([(455_002, 38_020), (455_012, 38_020),
                                               (455_007, 38_030)])]  # fmt: skip
    make_survey_image("a", A, far)
    make_survey_image("b", B, [box(75, 10, 85, 20)])
    geometries, rows = merged(survey_dir)
    assert [g.wkb for g in geometries] == [g.wkb for g in [*far, box(75, 10, 85, 20)]]
    assert rows == [[35.0, 0.5, "a"], [50.0, 0.51, "a"], [100.0, 0.5, "b"]]


def test_a_rerun_writes_the_same_layer_and_the_geoparquet_equals_the_geopackage(
    make_survey_image, survey_dir
):
    make_survey_image("a", A, [box(5, 5, 10, 10), box(41.5, 10, 45.5, 20), box(20, 46, 30, 50)])
    make_survey_image("b", B, [box(41.6, 10.1, 45.6, 20.1), box(47, 30, 55, 40)])
    make_survey_image("c", C, [box(20, 50, 30, 54)])
    outputs = MergeOutputs.of(str(survey_dir))
    first = merged(survey_dir)
    parquet = Path(outputs.parquet).read_bytes()
    assert merged(survey_dir) == first
    assert Path(outputs.parquet).read_bytes() == parquet
    geometries, rows = read_layer(outputs.parquet)
    assert rows == first[1] and [g.wkb for g in geometries] == [g.wkb for g in first[0]]
    assert CRS(gpd.read_parquet(outputs.parquet).crs) == CRS.from_epsg(32636)
    assert not list(survey_dir.glob("merged/.partial/*"))


def test_the_probability_vrt_mosaics_the_cogs(make_survey_image, survey_dir):
    make_survey_image("a", A, [], value=100)
    make_survey_image("b", B, [], value=200)
    report = merge_footprints(str(survey_dir))
    assert report.vrt
    with rasterio.open(MergeOutputs.of(str(survey_dir)).vrt) as vrt:
        assert vrt.crs == "EPSG:32636" and (vrt.width, vrt.height) == (180, 100)
        row = vrt.read(1)[50]
    assert row[0] == 100 and row[-1] == 200


def test_another_crs_is_asked_for_with_epsg_and_the_vrt_is_not_written(
    make_survey_image, survey_dir
):
    building = box(5, 5, 10, 10)
    make_survey_image("a", A, [building])
    report = merge_footprints(str(survey_dir), epsg=4326)
    assert not report.vrt and not Path(MergeOutputs.of(str(survey_dir)).vrt).exists()
    frame = gpd.read_file(MergeOutputs.of(str(survey_dir)).gpkg)
    assert CRS(frame.crs) == CRS.from_epsg(4326)
    assert frame.to_crs(32636).geometry[0].equals_exact(building, 1e-3)


def test_mixed_crs_without_epsg_is_bad_input(make_survey_image, survey_dir):
    make_survey_image("a", A, [])
    make_survey_image("b", B, [])
    with rasterio.open(survey_dir / "b_prob.tif", "r+") as dst:
        dst.crs = "EPSG:32637"
    with pytest.raises(InputError, match=r"2 CRSs .*choose one with --crs"):
        merge_footprints(str(survey_dir))


def test_a_grid_of_overlapping_images_leaves_no_two_buildings_overlapping(
    make_survey_image, survey_dir
):
    # 2 x 2 images of 50 m overlapping by 10 m; buildings in every overlap, the centre's in
    # all four, some cut by an image's edge; each image sees them shifted a little.
    truth = [box(42, 42, 48, 48), box(41, 10, 47, 16), box(10, 41, 16, 47), box(47, 20, 53, 26),
             box(60, 42, 66, 48), box(20, 47, 26, 53), box(70, 70, 76, 76), box(5, 5, 11, 11),
             box(44, 80, 50, 86)]  # fmt: skip
    rng = np.random.default_rng(0)
    for (i, x), (j, y) in itertools.product(enumerate((0, 40)), enumerate((0, 40))):
        extent = box(x, y, x + 50, y + 50)
        seen = [shapely.intersection(t, extent) for t in truth]
        seen = [
            shapely.affinity.translate(s, *rng.uniform(-0.3, 0.3, 2)) for s in seen if s.area > 1
        ]
        make_survey_image(f"img{i}{j}", (x, y, x + 50, y + 50), seen)
    geometries, _ = merged(survey_dir)
    assert len(geometries) == len(truth)
    assert_no_duplicates(geometries)


def test_given_the_surveys_names_only_its_images_are_merged(make_survey_image, survey_dir, caplog):
    # "old" is an earlier run's image on other input, left in the same folder.
    make_survey_image("a", A, [box(5, 5, 10, 10)])
    make_survey_image("b", B, [box(75, 10, 85, 20)])
    make_survey_image("old", (200, 0, 250, 50), [box(210, 10, 220, 20)])
    report = merge_footprints(str(survey_dir), names=["a", "b"])
    assert report.images == 2
    assert [row[2] for row in read_layer(MergeOutputs.of(str(survey_dir)).gpkg)[1]] == ["a", "b"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"{survey_dir}: 1 other image(s)' footprints left out of the merge (not this survey's: "
        "an earlier run's?)"
    ]
    caplog.clear()
    assert merge_footprints(str(survey_dir)).images == 3  # merge-footprints: the whole folder
    assert not [r for r in caplog.records if "left out" in r.getMessage()]


def test_a_survey_image_without_footprints_is_bad_input(make_survey_image, survey_dir):
    make_survey_image("a", A, [])
    with pytest.raises(InputError, match=r"no footprints of 1 image\(s\) of the survey: b$"):
        merge_footprints(str(survey_dir), names=["a", "b"])


def test_a_failed_merge_closes_the_geoparquet_writer_and_publishes_nothing(
    make_survey_image, survey_dir, monkeypatch
):
    make_survey_image("a", A, [box(5, 5, 10, 10)])
    make_survey_image("b", B, [box(41.5, 10, 45.5, 20)])
    closed = []
    real_writer = merge.SurveyLayerWriter

    class Writer(real_writer):
        def __init__(self, *args):
            super().__init__(*args)
            real_close = self.parquet.close
            self.parquet.close = lambda: closed.append(True) or real_close()

    def fail(*args):
        raise RuntimeError("resolving failed")

    monkeypatch.setattr(merge, "SurveyLayerWriter", Writer)
    monkeypatch.setattr(merge, "write_resolved", fail)
    with pytest.raises(RuntimeError, match="resolving failed"):
        merge_footprints(str(survey_dir))
    assert closed == [True]
    assert not list((survey_dir / "merged").glob("*.*"))


def test_the_outputs_are_joined_alike_locally_and_on_s3():
    assert MergeOutputs.of("s3://bucket/run/footprints/").gpkg == (
        "s3://bucket/run/footprints/merged/buildings.gpkg"
    )
    assert MergeOutputs.of("out/footprints").vrt == "out/footprints/merged/prob.vrt"


@pytest.mark.parametrize(
    ("layout", "problem"),
    [
        ("empty", "no footprints"),
        ("no_cog", "_prob.tif: missing"),
        ("not_a_folder", "not a local folder"),
        ("bad_gpkg", "not a readable footprints GeoPackage"),
    ],
)
def test_bad_input_is_an_input_error(layout, problem, make_survey_image, survey_dir):
    survey_dir.mkdir(parents=True, exist_ok=True)
    if layout == "no_cog":
        make_survey_image("a", A, [])
        (survey_dir / "a_prob.tif").unlink()
    elif layout == "not_a_folder":
        survey_dir = survey_dir / "nowhere"
    elif layout == "bad_gpkg":
        make_survey_image("a", A, [])
        (survey_dir / "a_buildings.gpkg").write_text("not a GeoPackage")
    with pytest.raises(InputError, match=problem):
        merge_footprints(str(survey_dir))


@pytest.mark.aws
def test_an_s3_folder_is_merged_in_place_as_a_local_one(
    make_survey_image, survey_dir, s3_upload, tmp_path
):
    # A Batch job's outputs: the same survey on S3 gives the same layer, published whole, and
    # a VRT that opens where it is (its COGs named relative to it).
    make_survey_image("a", A, [box(5, 5, 10, 10), box(35, 20, 50, 30)], value=100)
    make_survey_image("b", B, [box(40, 20, 55, 30), box(75, 10, 85, 20)], value=200)
    uri = s3_upload(survey_dir, "s3://survey/run 1/out")
    report = merge_footprints(uri)
    assert report.images == 2 and report.written == 3 and report.vrt
    s3 = boto3.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="survey")["Contents"])
    assert [k for k in keys if "/merged/" in k] == [
        f"run 1/out/merged/{name}" for name in ("buildings.gpkg", "buildings.parquet", "prob.vrt")
    ]
    local = merged(survey_dir)
    for name in ("gpkg", "parquet"):
        key = getattr(MergeOutputs.of("run 1/out"), name)
        s3.download_file("survey", key, str(tmp_path / f"from_s3.{name}"))
        assert read_layer(str(tmp_path / f"from_s3.{name}")) == local
    with rasterio.open(MergeOutputs.of(uri).vrt) as vrt:
        row = vrt.read(1)[50]
    assert row[0] == 100 and row[-1] == 200


@pytest.mark.aws
def test_an_s3_folder_without_footprints_is_bad_input(aws_env):
    boto3.client("s3").create_bucket(Bucket="survey")
    with pytest.raises(InputError, match="no footprints"):
        merge_footprints("s3://survey/nothing")
    with pytest.raises(InputError, match="no-such-bucket"):
        merge_footprints("s3://no-such-bucket/out")
