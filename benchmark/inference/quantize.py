"""int8: the network quantized by ONNX Runtime, for CPUs without native bf16.

Static quantization (ONNX Runtime's ``quantize_static``): QDQ format, per-channel int8 weights,
uint8 activations whose ranges come from running the fp32 network on calibration images
(min/max of every activation). uint8 x int8 is the form x86 int8 kernels take natively: int8
activations ran 1.5x slower on this project's Zen 5 (2 s against 1.35 s a 1024 px chip, fp32
ONNX Runtime 2.6 s). The segmentation head, the last convolution, stays fp32: it is
a few thousand multiply-adds per pixel, and quantizing the logits would put the probabilities,
hence the decision threshold, on a coarse grid.

Where the calibration images come from: the first batch the prepared model is given, in crops
(:func:`calibration_crops`). That batch is the data being predicted (chips or windows of a
scene; images only, never labels), so it works for every bundle, old ones included, for the
pipeline's ``predict`` (which runs before ``bundle``), for folder prediction and for the bench,
with nothing stored or passed around; the cost is paid once per prepared model (a few seconds,
logged). The alternative, calibrating on training chips at ``bundle`` time and storing the int8
model in the bundle, would leave the pipeline's own ``predict`` and every existing bundle
without it. What this choice gives up: the ranges depend on the first batch (a batch of
nodata would calibrate badly: :func:`calibration_crops` prefers crops with image content), and
each ``predict`` split calibrates on its own first batch.

On x86 CPUs without VNNI, ONNX Runtime's int8 kernels (``VPMADDUBSW``) can saturate; weights
then use 7 bits (``reduce_range``), as ONNX Runtime's documentation advises.
"""

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Calibration: this many crops of this side from the first batch (activation ranges do not
# depend on the crop size; a whole 1024 px batch would keep every activation of the network
# in memory at once).
CALIBRATION_CROPS = 8
CALIBRATION_SIDE = 256


def cpu_has_vnni() -> bool:
    """Whether this CPU has int8 dot products (AVX512-VNNI, AVX-VNNI or AMX-INT8)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False  # not Linux: assume not, and take the safe 7-bit weights
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags))


def calibration_crops(
    images: np.ndarray,
    count: int = CALIBRATION_CROPS,
    side: int = CALIBRATION_SIDE,
    seed: int = 0,
) -> list[np.ndarray]:
    """``count`` float32 (1, C, s, s) crops of the (B, C, H, W) batch ``images`` (seeded).

    ``s`` is ``side`` or the images' shorter side if smaller. Crops are drawn at random, twice
    as many as needed, and those with the most varied content kept, so nodata margins (a
    scene's edge windows, zero padding) do not set the ranges.
    """
    batch, _, height, width = images.shape
    s = min(side, height, width)
    rng = np.random.default_rng(seed)
    candidates = []
    for _ in range(2 * count):
        i = rng.integers(batch)
        row, col = rng.integers(height - s + 1), rng.integers(width - s + 1)
        candidates.append(images[i : i + 1, :, row : row + s, col : col + s])
    candidates.sort(key=lambda crop: -float(crop.std()))
    return [np.ascontiguousarray(crop, dtype=np.float32) for crop in candidates[:count]]


class _NoPreprocessingAdvice(logging.Filter):
    """Drops ONNX Runtime's advice to pre-process the model (tried: no faster here)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


def _last_conv(onnx_model: object) -> list[str]:
    """The name of the graph's last Conv node (the segmentation head), as a list."""
    convs = [node.name for node in onnx_model.graph.node if node.op_type == "Conv"]  # type: ignore[attr-defined]
    return convs[-1:]


def quantize_onnx(onnx_fp32: bytes, calibration: list[np.ndarray], input_name: str) -> bytes:
    """int8 (QDQ, per-channel) ONNX bytes of ``onnx_fp32``, calibrated on ``calibration``.

    Args:
        onnx_fp32: the fp32 network (as :mod:`benchmark.inference.onnx_runtime` exports it).
        calibration: float32 inputs, each a batch the network accepts.
        input_name: the network's input.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.inputs = iter(calibration)

        def get_next(self) -> dict | None:
            x = next(self.inputs, None)
            return None if x is None else {input_name: x}

    start = time.perf_counter()
    model = onnx.load_from_string(onnx_fp32)
    reduce_range = not cpu_has_vnni()
    advice = _NoPreprocessingAdvice()
    logging.getLogger().addFilter(advice)  # ONNX Runtime logs it with logging.warning
    try:
        with tempfile.TemporaryDirectory() as work:
            # the calibrator writes its augmented model next to the output
            out = Path(work) / "int8.onnx"
            quantize_static(
                model,
                out,
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=reduce_range,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=_last_conv(model),
                calibration_providers=["CPUExecutionProvider"],
            )
            int8 = out.read_bytes()
    finally:
        logging.getLogger().removeFilter(advice)
    log.info(
        "Network quantized to int8 in %.1f s (%d calibration crops of %s px%s)",
        time.perf_counter() - start, len(calibration), calibration[0].shape[-1],
        ", 7-bit weights: no VNNI" if reduce_range else "",
    )  # fmt: skip
    return int8
