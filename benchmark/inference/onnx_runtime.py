"""The CPU fast path without native bf16: the network run by ONNX Runtime, int8 or fp32.

On a CPU without native bf16 (AVX512-BF16 or AMX), PyTorch's best mode for a ResNet U-Net is
fp32 channels_last; ONNX Runtime runs the same network in fp32 with fused convolutions and its
own kernels, faster still, and quantized to int8 (:mod:`benchmark.inference.quantize`) faster
again (measured by ``wb_scripts/bench``, keys ``plan_speedup_onnx``, ``plan_speedup_int8``).
The network is exported once, when the model is prepared, with dynamic batch, height and width;
padding to the encoder stride stays in PyTorch
(:class:`benchmark.networks.segmentation.PadToMultiple`), so any input size runs. Without
``onnxruntime`` installed, the fast path stays in PyTorch.
"""

import importlib.util
import io
import logging

import numpy as np
import torch
from torch import nn

from benchmark.networks.segmentation import PadToMultiple
from benchmark.onnx_export import torchscript_exporter

log = logging.getLogger(__name__)

# Operator set 17: supported by every onnxruntime release since 1.14 and by torch >= 2.4.
OPSET = 17
INPUT_NAME = "image"


def onnx_runtime_available() -> bool:
    """Whether ``onnxruntime`` can be imported (it is an optional speed-up)."""
    return importlib.util.find_spec("onnxruntime") is not None


def _export_onnx(network: nn.Module, channels: int) -> bytes:
    """ONNX bytes of ``network`` (eval mode, float32 NCHW) with dynamic batch, height, width."""
    example = torch.zeros(1, channels, 64, 64)
    buffer = io.BytesIO()
    with torchscript_exporter() as exporter:  # dynamic spatial axes without shape constraints
        torch.onnx.export(
            network,
            (example,),
            buffer,
            input_names=[INPUT_NAME],
            output_names=["logits"],
            dynamic_axes={
                INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                "logits": {0: "batch"},
            },
            opset_version=OPSET,
            **exporter,
        )
    return buffer.getvalue()


def _input_channels(network: nn.Module) -> int:
    """Input bands of ``network``: those of its first convolution."""
    for module in network.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ValueError(f"{type(network).__name__} has no Conv2d: cannot tell its input bands")


def _open_session(onnx_model: bytes, num_threads: int):  # -> onnxruntime.InferenceSession
    """An ONNX Runtime CPU session on ``onnx_model`` with ``num_threads`` threads."""
    import onnxruntime as ort

    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = num_threads
    session_options.inter_op_num_threads = 1
    session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(onnx_model, session_options, providers=["CPUExecutionProvider"])


class OnnxRuntimeNetwork(nn.Module):
    """A network exported to ONNX and run by an ONNX Runtime CPU session.

    Takes and returns float32 (B, C, H, W) torch tensors, like the network it replaces. With
    ``int8``, the session opens on the first call, on the network quantized with that call's
    input as calibration data (:mod:`benchmark.inference.quantize`).
    """

    def __init__(self, network: nn.Module, num_threads: int, int8: bool = False) -> None:
        """Export ``network`` (put in eval mode); open its session now (fp32) or later (int8)."""
        import onnxruntime as ort

        super().__init__()
        network = network.eval().cpu().to(memory_format=torch.contiguous_format)
        self.int8 = int8
        self.num_threads = num_threads
        self._onnx_fp32: bytes | None = _export_onnx(network, _input_channels(network))
        self.session = None
        if not int8:
            self.session = _open_session(self._onnx_fp32, num_threads)
            self._onnx_fp32 = None
        log.info(
            "Network exported to ONNX Runtime %s (%s, %d threads)",
            ort.__version__, "int8 once calibrated" if int8 else "fp32", num_threads,
        )  # fmt: skip

    def _quantize(self, image: np.ndarray) -> None:
        from benchmark.inference.quantize import calibration_crops, quantize_onnx

        if self._onnx_fp32 is None:
            raise RuntimeError("already quantized")  # only int8 networks get here, once
        int8 = quantize_onnx(self._onnx_fp32, calibration_crops(image), INPUT_NAME)
        self.session = _open_session(int8, self.num_threads)
        self._onnx_fp32 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        image = x.float().contiguous().numpy()
        if self.session is None:
            self._quantize(image)
        (logits,) = self.session.run(None, {INPUT_NAME: image})
        return torch.from_numpy(logits)


def run_with_onnx_runtime(model: nn.Module, num_threads: int, int8: bool = False) -> nn.Module:
    """``model`` with its network run by ONNX Runtime (idempotent: prepared models pass through).

    A :class:`PadToMultiple` keeps padding in PyTorch and hands its network to ONNX Runtime,
    so inputs of any size work; any other module is exported whole. ``int8``: quantized, on
    the first batch (see :class:`OnnxRuntimeNetwork`).
    """
    inner = model.model if isinstance(model, PadToMultiple) else model
    if isinstance(inner, OnnxRuntimeNetwork):
        if inner.int8 != int8:
            have, want = ("int8", "fp32") if inner.int8 else ("fp32", "int8")
            raise ValueError(f"the model was prepared for ONNX Runtime {have}, not {want}")
        return model
    if isinstance(model, PadToMultiple):
        return PadToMultiple(OnnxRuntimeNetwork(model.model, num_threads, int8), model.multiple)
    return OnnxRuntimeNetwork(model, num_threads, int8)
