"""Raster Vision plugin shim for the ``benchmark`` package.

Raster Vision discovers plugins only inside the ``rastervision`` namespace package, so this
module exists to be found; the code lives in ``benchmark``. Loading it only registers, as
Raster Vision's own plugins do: the plugin version, the ``batch`` runner and our configs (their
``@register_config`` decorators run on import), which is what lets every runner and model-bundle
loading rebuild our configs from JSON. Our terminal output (one-line errors, log routing) is
installed by our own experiments, pipelines and commands (:mod:`benchmark.cli.output`), so a
Raster Vision user who has this package installed sees nothing change in their own runs.

Two things reach every command, because this is the first code of ours each one runs (Batch
jobs included): S3 retry defaults for variables nobody set (:mod:`benchmark.data.retries`), and
an ``s3://`` file system whose syncs fail loudly (:mod:`benchmark.data.s3_file_system`).
"""

# Saved configs record it; Raster Vision runs our upgraders on those saved at older versions.
# 0: the first release. 1: InferenceConfig.chip_sz became window (upgrade_inference_config).
# 2: InferenceConfig.fast became plan (the same function).
PLUGIN_VERSION = 2


def register_plugin(registry) -> None:
    """Register our configs, runner and s3:// file system; set the S3 retry defaults."""
    from benchmark import PLUGIN
    from benchmark.data import retries, s3_file_system
    from benchmark.pipeline import registered_configs, runner_registration

    registry.set_plugin_version(PLUGIN, PLUGIN_VERSION)

    retries.apply_retry_defaults()
    s3_file_system.register(registry)
    runner_registration.register(registry)
    registered_configs.register(registry)
