"""Our ``batch`` runner leaves Raster Vision's own pipelines to Raster Vision's runner."""

from rastervision.aws_batch.aws_batch_runner import AWSBatchRunner
from rastervision.pipeline.pipeline import Pipeline
from rastervision.pipeline.pipeline_config import PipelineConfig

from benchmark.pipeline.batch_runner import BenchmarkBatchRunner, is_ours


def submitted(runner: AWSBatchRunner, monkeypatch, tmp_path) -> list[tuple[list[str], dict]]:
    """What ``runner.run`` submits for RV's base pipeline (AWS Batch replaced by a recorder)."""
    calls = []

    def record(self, cmd, **kwargs):
        calls.append((cmd, {k: v for k, v in kwargs.items() if k != "job_name"}))  # a uuid
        return f"job-{len(calls)}"

    monkeypatch.setattr(AWSBatchRunner, "run_command", record)
    monkeypatch.setenv("BATCH_CPU_JOB_QUEUE", "rv-queue")  # RV's own settings, not ours
    monkeypatch.setenv("BATCH_CPU_JOB_DEF", "rv-def")
    pipeline = PipelineConfig(root_uri=str(tmp_path)).build(str(tmp_path))
    runner.run("/local/pipeline-config.json", pipeline, ["test_cpu"], num_splits=1)
    return calls


def test_a_pipeline_not_ours_is_run_as_raster_vision_runs_it(monkeypatch, tmp_path):
    """A local config, no [BATCH] attempts, RV's own command: nothing of ours gets in the way."""
    pipeline = PipelineConfig(root_uri=str(tmp_path)).build(str(tmp_path))
    assert type(pipeline) is Pipeline and not is_ours(pipeline)
    monkeypatch.setenv("BENCHMARK_BATCH_DRY_RUN", "1")  # ours only: still submitted
    ours = submitted(BenchmarkBatchRunner(), monkeypatch, tmp_path)
    theirs = submitted(AWSBatchRunner(), monkeypatch, tmp_path)
    assert ours == theirs and len(ours) == 1
