"""Registering our ``batch`` runner when the plugin loads, without importing it there.

The runner module imports Raster Vision's AWS Batch runner, and importing Raster Vision loads
the plugins: a shim that imported the runner would meet it half-initialized whenever a
program's first import is the runner module itself (an import cycle). Raster Vision only ever
calls a registered runner (``registry.get_runner(name)()``), so a factory stands in for the
class and imports it on first use.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing Raster Vision here would load the plugins: the cycle above
    from rastervision.pipeline.registry import Registry

AWS_BATCH = "batch"


def batch_runner():
    """Our :class:`~benchmark.pipeline.batch_runner.BenchmarkBatchRunner`, made on demand."""
    from benchmark.pipeline.batch_runner import BenchmarkBatchRunner

    return BenchmarkBatchRunner()


def register(registry: "Registry") -> None:
    """Make ``rastervision run batch`` use our runner (RV's own for pipelines not ours).

    Plugins load in ``sys.path`` order, so RV's ``rastervision.aws_batch`` may register its
    ``batch`` runner before or after ours, and ``Registry.add_runner`` refuses a second runner
    of a name: replace it if it is there, otherwise swap ours in when it registers.
    """
    if AWS_BATCH in registry.runners:
        registry.runners[AWS_BATCH] = batch_runner
        return
    add_runner = registry.add_runner

    def add_runner_preferring_ours(runner_name: str, runner: type) -> None:
        if runner_name == AWS_BATCH:
            runner = batch_runner
        add_runner(runner_name, runner)

    registry.add_runner = add_runner_preferring_ours
