"""What every prediction is given: how the model runs, the windows it sees, the GSD it works at.

One object from where the settings are decided (the pipeline's ``InferenceConfig``, a
command's options and the bundle it loads) to every prediction call (test chips, scenes,
scenes at the model's GSD), so a new setting is one field here, not one more argument at
every call site. What a call writes (masks or probabilities, whether to redo finished outputs)
and what its inputs are (the chips' size and GSD) stay the call's own arguments.
"""

from dataclasses import dataclass, field

from benchmark.data.gsd import gsd_scale
from benchmark.inference.execution import InferenceOptions
from benchmark.networks.targets import Target, checked_target, probability_bands

# Window side of scene prediction when the settings give none (chips then run whole).
SCENE_WINDOW = 1024


@dataclass(frozen=True)
class PredictionSettings:
    """How a model predicts, whatever it predicts.

    Attributes:
        options: how the model runs (device, plan, batch size, TTA, workers); kept apart
            because the plan chosen for a network is cached by them alone
            (:mod:`benchmark.inference.plan_choice`).
        window: side of the windows the model sees, in its pixels; None: chips whole, scenes
            in :data:`SCENE_WINDOW` px windows.
        overlap: pixels shared by neighbouring windows, blended without seams.
        gsd: the model's metres per pixel (``-a gsd``); None: it works at each input's own.
        target: what the model was trained for (:mod:`benchmark.networks.targets`): scene
            probability rasters have its bands (P(building), or an instance model's P(body),
            P(border), P(contact)); test chips are P(building) whatever it is.
    """

    options: InferenceOptions = field(default_factory=InferenceOptions)
    window: int | None = None
    overlap: int = 0
    gsd: float | None = None
    target: Target = "binary"

    def __post_init__(self) -> None:
        """Refuse windows the blending cannot take and unknown targets."""
        checked_target(self.target, "prediction settings")
        if self.window is not None and self.window <= 0:
            raise ValueError(f"window {self.window} must be positive")
        if self.overlap < 0:
            raise ValueError(f"overlap {self.overlap} must not be negative")

    @property
    def scene_window(self) -> int:
        """The window side scenes are predicted in."""
        return self.window or SCENE_WINDOW

    @property
    def bands(self) -> int:
        """The bands of a scene's probability raster."""
        return probability_bands(self.target)

    def input_scale(self, image_gsd: float | None) -> float:
        """Resize factor of an image at ``image_gsd`` metres for the model (1: as it is)."""
        return gsd_scale(image_gsd, self.gsd)
