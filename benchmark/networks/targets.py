"""What a network is trained to output: buildings only, or buildings that tell neighbours apart.

``binary`` (every bundle before the instance target): two logits per pixel, background and
building; P(building) is their softmax's building share.

``instance`` (SpaceNet 4 and 6 winners' target): the same two logits first, so everything that
reads P(building) (chip and scene predictions, masks, micro Jaccard, the submission) reads the
building body unchanged; then one logit each for the building's **border** (a band along its
outline) and the **contact** pixels between two buildings, each a sigmoid. The footprints
tracer and eval's per-building scores decode the three into separate buildings with a marker
watershed.
"""

from typing import Final, Literal

from benchmark.errors import InputError

Target = Literal["binary", "instance"]
TARGETS: Final = ("binary", "instance")

# Logit channels of an instance model after the two of a binary one.
BORDER_LOGIT: Final = 2
CONTACT_LOGIT: Final = 3
# P(body), P(border), P(contact): the bands of an instance model's probability rasters, in this
# order (band 1 is P(building), as a binary model's only band).
INSTANCE_BANDS: Final = ("body", "border", "contact")


def checked_target(target: object, where: str) -> Target:
    """``target`` if it is one of :data:`TARGETS`, else an :class:`InputError` naming ``where``."""
    if target not in TARGETS:
        raise InputError(f"{where}: model target {target!r}, expected one of {', '.join(TARGETS)}")
    return target  # type: ignore[return-value]


def target_of(model_config: object) -> Target:
    """What a model config's network is trained for: its ``target``, checked.

    Binary where the config has none (RV's own model configs, and ours saved before the field).
    """
    return checked_target(getattr(model_config, "target", "binary"), type(model_config).__name__)


def output_channels(target: Target) -> int:
    """How many logits per pixel a network trained for ``target`` outputs."""
    return 2 if target == "binary" else 4


def probability_bands(target: Target) -> int:
    """How many probability bands a prediction of a ``target`` network has."""
    return 1 if target == "binary" else len(INSTANCE_BANDS)


def check_probability_bands(count: int, where: str) -> None:
    """Refuse a probability raster (or prediction) of ``count`` bands, naming ``where``.

    1 band is P(building) (a binary model), 3 P(body), P(border), P(contact) (an instance one).
    """
    if count not in (probability_bands(target) for target in TARGETS):
        raise InputError(
            f"{where}: {count} probability bands; expected 1 (P(building)) or "
            f"{len(INSTANCE_BANDS)} (P({'), P('.join(INSTANCE_BANDS)}))"
        )


# How each target's probabilities become buildings, as ``benchmark.json`` records it
# (``decoding``): connected components of the thresholded P(building), or a marker watershed
# on P(body), P(border) and P(contact).
DECODINGS: Final = {"binary": "components", "instance": "watershed"}
