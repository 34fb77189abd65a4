"""Where every command writes is spelled once, in ``benchmark.data.layout``."""

import ast
from pathlib import Path

import pytest

from benchmark.cli import locate
from benchmark.data import layout

REPO = Path(__file__).resolve().parents[2]
# Pieces of output locations that only layout.py may spell in code (prose may name them).
SPELLED_IN_LAYOUT_ONLY = (
    "eval.json", "model-bundle.zip", "benchmark.json", "pipeline-config", "submission.tgz",
    "_preview.png", "training_curves.png", "log.csv", "/split_images", "split_images_gsd",
    "split_images-config", "/postprocess",
)  # fmt: skip


class TestLocations:
    @pytest.mark.parametrize("root", ["s3://bucket/root", "s3://bucket/root/", "out"])
    def test_rv_layout_under_any_root(self, root):
        base = root.rstrip("/")
        assert layout.command_dir(root, "train", "e1") == f"{base}/train/e1"
        assert layout.pipeline_config_uri(root, "e1") == f"{base}/pipeline-config/e1.json"
        assert layout.postprocess_dir(root, "e1") == f"{base}/postprocess/e1"
        assert layout.submission_uri(root, "e1") == f"{base}/submission/e1/submission.tgz"
        assert layout.preprocess_config_uri(root) == f"{base}/split_images-config.json"

    def test_windows_folders_differ_by_gsd(self):
        assert layout.default_windows_dir("s3://b/r/") == "s3://b/r/split_images"
        assert layout.default_windows_dir("s3://b/r", 0.1) == "s3://b/r/split_images_gsd0.1"
        assert layout.scene_windows_dir("w/", "kam", "a1") == "w/kam/a1"

    def test_preprocess_files_and_catalog_scenes(self):
        assert layout.window_file_uri("w/kam/a1", "a1", 3) == "w/kam/a1/a1_3.tif"
        assert layout.window_labels_uri("w/kam/a1", "a1") == "w/kam/a1/a1.geojson"
        assert layout.manifest_uri("w/kam/a1/") == "w/kam/a1/manifest.json"
        assert layout.catalog_scene_uris("s3://b/train_tier_1/catalog.json", "kam", "a1") == (
            "s3://b/train_tier_1/kam/a1/a1.tif",
            "s3://b/train_tier_1/kam/a1-labels/a1.geojson",
        )

    def test_files_in_command_folders(self):
        predict, evaluation = "r/predict/e1", "r/eval/e1"
        assert layout.window_probability_uri(predict, "a1_0") == "r/predict/e1/a1_0.tif"
        test_dir = layout.test_probability_dir(predict)
        assert layout.chip_file_uri(test_dir, "c9") == "r/predict/e1/test/c9.tif"
        assert layout.eval_report_uri(evaluation) == "r/eval/e1/eval.json"
        assert layout.overlay_uri(evaluation, "a1_0") == "r/eval/e1/a1_0.png"
        assert layout.footprints_uri(evaluation, "a1_0", "gpkg") == "r/eval/e1/a1_0_buildings.gpkg"
        assert layout.training_curves_uri(evaluation) == "r/eval/e1/training_curves.png"
        assert layout.model_bundle_uri("r/bundle/e1") == "r/bundle/e1/model-bundle.zip"
        assert layout.training_log_uri("r/train/e1") == "r/train/e1/log.csv"

    def test_postprocess_records_and_preview(self):
        masks = layout.postprocess_dir("r", "e1")
        assert layout.threshold_record_uri(masks + "/") == "r/postprocess/e1.json"
        tgz = layout.submission_uri("r", "e1")
        assert layout.submission_preview_uri(tgz) == "r/submission/e1/submission_preview.png"


class TestLocateCommand:
    def test_prints_one_location(self, capsys):
        assert locate.main(["postprocess", "s3://b/root/", "e1"]) == 0
        assert capsys.readouterr().out == "s3://b/root/postprocess/e1\n"

    def test_unknown_name_is_a_usage_error(self, capsys):
        with pytest.raises(SystemExit) as exit_info:
            locate.main(["eval", "r", "e1"])
        assert exit_info.value.code == 2


def _prose(tree: ast.AST) -> set[int]:
    """Ids of the string constants meant for people: docstrings, help and descriptions."""
    prose = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            prose.add(id(body[0].value))
        if isinstance(node, ast.keyword) and node.arg in ("help", "description", "epilog"):
            prose.update(id(n) for n in ast.walk(node.value))
    return prose


def _spelled_locations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    prose = _prose(tree)
    return [
        f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in prose
        and any(piece in node.value for piece in SPELLED_IN_LAYOUT_ONLY)
    ]


def test_no_other_module_spells_an_output_location():
    sources = sorted((REPO / "benchmark").rglob("*.py")) + sorted((REPO / "tools").glob("*.py"))
    found = [
        line
        for path in sources
        if path != REPO / "benchmark" / "data" / "layout.py"
        for line in _spelled_locations(path)
    ]
    assert not found, "spell these in benchmark.data.layout:\n" + "\n".join(found)
