"""``tools.arg_reference``: docs/arguments.md is what the args classes say, and how they say it."""

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from tools.arg_reference import DEFAULT_OUT, GENERATOR, argument_rows, main, render


class TestDocsInSync:
    def test_docs_arguments_md_matches_the_args_classes(self):
        # Changed a Field (name, type, default, description)? Run the generator.
        assert DEFAULT_OUT.read_text(encoding="utf-8") == render(), f"run {GENERATOR}"

    def test_every_benchmark_argument_is_listed(self):
        from benchmark.experiments.benchmark_args import BenchmarkArgs

        text = render()
        for name in BenchmarkArgs.model_fields:
            assert f"| `{name}`" in text


class _Args(BaseModel):
    """Arguments for the tests."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    root_uri: str = Field(..., description="Where | outputs go.")
    window: int = Field(
        1024,
        gt=0,
        validation_alias=AliasChoices("window", "chip_sz"),
        description="Window side.",
    )
    method: Literal["sliding", "random"] = Field("sliding", description="How.")
    ids: list[str] = Field(["a/1", "b/2"], description="Scenes.")
    gsd: float | None = Field(None, gt=0, description="GSD.")
    fast: bool = Field(True, description="Fast.")


class TestRows:
    def rows(self) -> dict[str, str]:
        lines = argument_rows(_Args, shared={"root_uri"})[2:]
        return {line.split("`")[1]: line for line in lines}

    def test_type_default_and_description(self):
        rows = self.rows()
        assert rows["root_uri"] == (
            "| `root_uri` | str | **required** | *shared* Where \\| outputs go. |"
        )
        assert rows["method"] == "| `method` | sliding \\| random | `sliding` | How. |"
        assert rows["ids"] == "| `ids` | list of str | `a/1,b/2` | Scenes. |"
        assert rows["gsd"] == "| `gsd` | float \\| none (> 0) | `none` | GSD. |"
        assert rows["fast"] == "| `fast` | bool | `true` | Fast. |"

    def test_a_field_alias_is_shown_as_a_deprecated_alias(self):
        assert self.rows()["window"] == (
            "| `window` (deprecated alias: `chip_sz`) | int (> 0) | `1024` | Window side. |"
        )

    def test_a_renamed_args_mapping_is_shown_as_a_deprecated_alias(self):
        (row,) = [
            line
            for line in argument_rows(_Args, set(), renamed={"fast_path": "fast"})
            if line.startswith("| `fast`")
        ]
        assert row == "| `fast` (deprecated alias: `fast_path`) | bool | `true` | Fast. |"

    def test_the_benchmark_shows_predict_chip_sz_as_the_old_name_of_predict_window(self):
        assert "| `predict_window` (deprecated alias: `predict_chip_sz`) |" in render()


class TestMain:
    def test_check_fails_on_a_stale_file_and_writing_fixes_it(self, tmp_path, capsys):
        out = tmp_path / "arguments.md"
        out.write_text("stale\n", encoding="utf-8")
        assert main(["--check", "--out", str(out)]) == 1
        assert "out of date" in capsys.readouterr().err
        assert out.read_text(encoding="utf-8") == "stale\n"
        assert main(["--out", str(out)]) == 0
        assert main(["--check", "--out", str(out)]) == 0
        assert out.read_text(encoding="utf-8") == render()

    def test_check_fails_when_the_file_is_missing(self, tmp_path):
        assert main(["--check", "--out", str(tmp_path / "none.md")]) == 1
