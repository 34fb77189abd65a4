"""Raster Vision plugin shim for the ``benchmark`` package.

Raster Vision discovers plugins only inside the ``rastervision`` namespace package, so this
module exists to be found; the code lives in ``benchmark``. Loading it only registers, as
Raster Vision's own plugins do: the plugin version, the ``batch`` runner and our configs (their
``@register_config`` decorators run on import), which is what lets every runner and model-bundle
loading rebuild our configs from JSON.

Raster Vision pipelines that are not ours run as if the plugin were absent:

- the ``batch`` runner hands a pipeline whose class is not in the ``benchmark`` package to
  Raster Vision's ``AWSBatchRunner.run`` unchanged (:mod:`benchmark.pipeline.batch_runner`);
- our one-line errors and log routing (:mod:`benchmark.console`) are set up by our own entry
  points only (our experiments' ``get_config``, our pipelines' ``build``, our commands), never
  here: no exception hook, no handler, Python's and RV's exit statuses as they were;
- the ``s3://`` file system (:mod:`benchmark.data.s3_file_system`) makes the same calls with
  the same arguments and returns the same results as Raster Vision's; it differs only where S3
  has already failed: an ``aws s3 sync`` that exits non-zero raises instead of being ignored,
  and S3 still failing after every retry raises one line instead of RV's ``NotReadableError``
  (which RV's callers read as "the file is not there"). A run that RV would have carried on with
  files silently missing stops instead; every run that succeeds is the same;
- the S3 retry defaults (:mod:`benchmark.data.retries`) only fill in variables nobody set.
"""

# Saved configs record it; Raster Vision runs our upgraders on those saved at older versions.
# 0: the first release. 1: InferenceConfig.chip_sz became window (upgrade_inference_config).
# 2: InferenceConfig.fast became plan (the same function). 3: BenchmarkConfig's tune_threshold,
# train_threshold and share_threshold became threshold (upgrade_benchmark_config).
PLUGIN_VERSION = 3


def register_plugin(registry) -> None:
    """Register our configs, runner and s3:// file system; set the S3 retry defaults.

    Nothing else: see the module for why other pipelines are unaffected.
    """
    from benchmark import PLUGIN
    from benchmark.data import retries, s3_file_system
    from benchmark.pipeline import registered_configs, runner_registration

    registry.set_plugin_version(PLUGIN, PLUGIN_VERSION)

    retries.apply_retry_defaults()
    s3_file_system.register(registry)
    runner_registration.register(registry)
    registered_configs.register(registry)
