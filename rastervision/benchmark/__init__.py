"""Raster Vision plugin shim for the ``benchmark`` package.

Raster Vision discovers plugins only inside the ``rastervision`` namespace package, so this
module exists to be found; the code lives in ``benchmark``. Importing the config modules runs
their ``@register_config`` decorators, which is what lets the ``inprocess``, ``local`` and
``batch`` runners and model-bundle loading rebuild our configs from JSON.
"""

PLUGIN_NAME = "rastervision.benchmark"
PLUGIN_VERSION = 0


def register_plugin(registry) -> None:
    """Register the benchmark configs with Raster Vision."""
    registry.set_plugin_version(PLUGIN_NAME, PLUGIN_VERSION)

    from benchmark import batch_runner, cli_output

    cli_output.install()
    batch_runner.register(registry)
    import benchmark.registered_configs  # noqa: F401
