"""Registering our Raster Vision configs when the plugin loads, without importing them there.

Raster Vision rebuilds configs from JSON by their ``type_hint`` (``rastervision run_command`` in
every ``local`` and ``batch`` job, ``rastervision predict``, loading a model bundle, upgrading an
old config), so each of ours must be registered whatever the program imported first. Importing
the config modules while the plugin loads is a cycle: Raster Vision loads its plugins during its
own first import, and our configs import Raster Vision's learner, half imported then when a
program starts with it (or with one of our config modules). So, as for the batch runner
(:mod:`benchmark.pipeline.runner_registration`), the registry imports them on its first look-up
of a type hint.
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing Raster Vision here would load the plugins: the cycle above
    from rastervision.pipeline.registry import Registry

# Every module with a ``@register_config``.
CONFIG_MODULES = (
    "benchmark.data.label_source",
    "benchmark.pipeline.benchmark_config",
    "benchmark.pipeline.footprints_config",
    "benchmark.pipeline.preprocess_config",
    "benchmark.training.data_config",
    "benchmark.training.model_config",
)
# The registry's look-ups by type hint: ``build_config`` starts with the first,
# ``upgrade_config`` with the second.
LOOKUPS = ("get_config", "get_type_hint_lineage")


def import_config_modules() -> None:
    """Import (so register) every config of ours."""
    for name in CONFIG_MODULES:
        importlib.import_module(name)


def register(registry: "Registry") -> None:
    """Have the registry import our config modules just before its first type-hint look-up."""
    originals = {name: getattr(registry, name) for name in LOOKUPS}

    def import_first(name: str):
        def lookup(type_hint: str):
            for original_name, original in originals.items():
                setattr(registry, original_name, original)
            import_config_modules()
            return originals[name](type_hint)

        return lookup

    for name in LOOKUPS:
        setattr(registry, name, import_first(name))
