"""``wb_scripts/gpu_check`` (``tools.gpu_check``): its refusal, verdicts and CPU rehearsal.

No GPU here: the quick tests fake the commands' outcomes and the predict measure's figures;
the slow one rehearses every step on the CPU (``--device cpu``), through the real CLI.
"""

import json
import re
import sys

import pytest
import torch

from tests.fixtures.cli import TINY_MODEL_ARGS
from tools import gpu_check
from tools.gpu_check import CheckFailed, GpuCheck

STEPS = [
    "device", "average_without_sync", "preprocess", "chip", "train_killed", "train_resumed",
    "predict_to_postprocess", "predict_measure", "fast_vs_fp32_jaccard", "folder_predict",
]  # fmt: skip


@pytest.fixture
def cpu_only(monkeypatch):
    """No CUDA device, and ``--device cpu``'s hiding of GPUs undone after the test."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


def test_without_a_gpu_it_refuses_in_one_line_naming_the_rehearsal(cpu_only, tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no CUDA device") and "--device cpu" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--chips", "3"], "error: --chips 3: at least 4 (--repeats groups"),
        (["--chips", "4", "--repeats", "5"], "error: --chips 4: at least 5"),
        (["--bundle", "missing.zip"], "error: --bundle missing.zip: no such file"),
    ],
)
def test_what_the_predict_measure_cannot_do_is_refused_in_one_line(
    cpu_only, tmp_path, capsys, argv, message
):
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_bundle_inside_out_is_refused_and_kept(cpu_only, tmp_path, capsys):
    bundle = tmp_path / "out" / "run" / "model-bundle.zip"
    bundle.parent.mkdir(parents=True)
    bundle.write_bytes(b"a bundle from an earlier check")
    argv = ["--device", "cpu", "--out", str(tmp_path / "out"), "--bundle", str(bundle)]
    assert gpu_check.main(argv) == 2
    assert "inside --out" in capsys.readouterr().err
    assert bundle.is_file()


def _python(code: str) -> list[str]:
    """A stand-in for a ``rastervision`` command: ``code`` in a fresh interpreter."""
    return [sys.executable, "-c", code]


def test_a_failed_step_skips_what_needs_it_and_the_run_fails(
    cpu_only, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(gpu_check, "rastervision_command", lambda *a, **k: _python(
        "print('loading'); print('InputError: no such catalog'); raise SystemExit(2)"
    ))  # fmt: skip
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path)]) == 1

    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [*STEPS, "results"]
    verdicts = dict(line.split(": ", 1) for line in lines[:-1])
    assert verdicts["device"] == "ok"
    assert verdicts["average_without_sync"] == "skipped: needs a GPU"
    log = tmp_path / "logs" / "preprocess.log"
    assert verdicts["preprocess"] == f"FAILED: exit 2: InputError: no such catalog (see {log})"
    assert verdicts["train_killed"] == "skipped: preprocess, chip did not pass"
    assert verdicts["folder_predict"] == "skipped: predict_measure did not pass"
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["device"] == "cpu" and results["machine"] and results["date"]
    assert {name: step["verdict"] for name, step in results["steps"].items()} == verdicts


@pytest.mark.parametrize(
    ("code", "verdict"),
    [
        ("import pathlib, sys, time; pathlib.Path(sys.argv[1]).touch(); time.sleep(60)", None),
        ("print('Training already completed')", "train ended by itself (exit 0) before the kill"),
    ],
)
def test_the_train_is_killed_once_its_state_is_saved(tmp_path, monkeypatch, code, verdict):
    check = GpuCheck("cpu", tmp_path)
    (tmp_path / "logs").mkdir()
    check.train_dir.mkdir(parents=True)
    state = check.train_dir / "train-state.pth"
    monkeypatch.setattr(
        gpu_check, "rastervision_command", lambda *a, **k: [*_python(code), str(state)]
    )
    if verdict is None:
        assert check.train_killed() == {"state_saved": True}
    else:
        with pytest.raises(CheckFailed, match=re.escape(verdict)):
            check.train_killed()


IMAGE_ARCHS = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]  # docs/docker.md


@pytest.mark.parametrize(
    ("gpu", "capability", "archs", "runs"),
    [
        ("T4", (7, 5), IMAGE_ARCHS, True),
        ("L4", (8, 9), IMAGE_ARCHS, True),  # sm_86's kernels
        ("H100", (9, 0), ["sm_80", "sm_90a"], True),
        ("V100", (7, 0), IMAGE_ARCHS, False),  # CUDA 13 dropped Volta
        ("a newer GPU, through PTX", (13, 0), ["sm_120", "compute_120"], True),
        ("a newer GPU", (13, 0), ["sm_120"], False),
    ],
)
def test_the_gpu_needs_kernels_of_its_major_version_or_ptx(gpu, capability, archs, runs):
    assert gpu_check.has_kernels(capability, archs) is runs


def _measured(delta: float) -> dict:
    """The predict measure's figures the verdicts read (fp16 the fast plan, as on a GPU)."""
    return {
        "fast_path": "fp16",
        "valid_jaccard_fp32": 0.5,
        "valid_jaccard_fp16": 0.5 - delta,
        "plan_jaccard_delta_fp16": delta,
        "plan_s_per_chip_fp16": 0.02,
        "plan_s_per_chip_fp32": 0.05,
        "bare_forward_s_per_chip_fast_True": 0.016,
        "predict_overhead_ratio": 1.25,
    }


def test_the_fast_plan_fails_when_its_jaccard_strays_from_fp32s(tmp_path):
    check = GpuCheck("cuda", tmp_path)
    check.figures["predict_measure"] = _measured(0.001)
    assert check.fast_vs_fp32_jaccard()["jaccard_delta"] == 0.001
    check.figures["predict_measure"] = _measured(0.02)
    with pytest.raises(
        CheckFailed, match=re.escape("fp16 scores 0.4800, fp32 0.5000: more than 0.005")
    ):
        check.fast_vs_fp32_jaccard()


def test_folder_predict_in_chips_per_second_with_and_without_io(tmp_path):
    check = GpuCheck("cuda", tmp_path)
    check.figures["predict_measure"] = _measured(0.0)
    assert check.folder_predict() == pytest.approx(
        {
            "fast_plan": "fp16",
            "chips_per_s_with_io": 50.0,
            "chips_per_s_model_alone": 62.5,
            "chips_per_s_with_io_fp32": 20.0,
            "overhead_ratio": 1.25,
        }
    )


def test_a_given_bundle_is_measured_without_the_pipeline(tmp_path):
    check = GpuCheck("cuda", tmp_path, bundle=tmp_path / "trained.zip")
    needs = {step.name: step.needs for step in check.steps()}
    assert needs["predict_measure"] == ()
    assert GpuCheck("cuda", tmp_path).bundle.name == "model-bundle.zip"


@pytest.mark.slow
def test_every_step_rehearses_on_the_cpu(tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    rv_args = [*TINY_MODEL_ARGS, "-a", "num_workers", "0"]
    out = tmp_path / "out"
    argv = ["--device", "cpu", "--out", str(out), "--chips", "4", "--repeats", "1", "--"]
    status = gpu_check.main([*argv, *rv_args])

    results = json.loads((out / "results.json").read_text())
    verdicts = {name: step["verdict"] for name, step in results["steps"].items()}
    assert status == 0, (verdicts, capsys.readouterr())
    assert list(verdicts) == STEPS
    assert verdicts.pop("average_without_sync") == "skipped: needs a GPU"
    assert set(verdicts.values()) == {"ok"}
    assert "Resuming after epoch 1 of 1" in (out / "logs" / "train_resumed.log").read_text()
    steps = results["steps"]
    assert 0 <= steps["predict_to_postprocess"]["valid_jaccard"] <= 1
    assert steps["folder_predict"]["chips_per_s_with_io"] > 0
    assert steps["predict_measure"]["bundle"].endswith("gpu-check-TEST/model-bundle.zip")
    assert f"results: {out / 'results.json'}" in capsys.readouterr().out
    commands = [
        r.getMessage() for r in caplog.records if ": rastervision --tmpdir" in r.getMessage()
    ]
    assert [c.split(":")[0] for c in commands] == STEPS[2:7]  # each command is shown
    assert all("-a test true" in c for c in commands[1:])
