"""The CPU fast path without native bf16: the network run by ONNX Runtime.

On a CPU without native bf16 (AVX512-BF16 or AMX), PyTorch's best mode for a ResNet U-Net is
fp32 channels_last; ONNX Runtime runs the same network in fp32 with fused convolutions and its
own kernels, faster still (measured by ``wb_scripts/bench``, key ``cpu_fast_path_speedup``).
The network is exported once, when the model is prepared, with dynamic batch, height and width;
padding to the encoder stride stays in PyTorch
(:class:`benchmark.training.models.PadToMultiple`), so any input size runs. Without
``onnxruntime`` installed, the fast path stays in PyTorch.
"""

import importlib.util
import inspect
import io
import logging
import warnings

import torch
from torch import nn

from benchmark.training.models import PadToMultiple

log = logging.getLogger(__name__)

# Operator set 17: supported by every onnxruntime release since 1.14 and by torch >= 2.4.
OPSET = 17


def onnx_runtime_available() -> bool:
    """Whether ``onnxruntime`` can be imported (it is an optional speed-up)."""
    return importlib.util.find_spec("onnxruntime") is not None


def _export_onnx(network: nn.Module, channels: int) -> bytes:
    """ONNX bytes of ``network`` (eval mode, float32 NCHW) with dynamic batch, height, width."""
    example = torch.zeros(1, channels, 64, 64)
    buffer = io.BytesIO()
    kwargs = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        # The TorchScript exporter: dynamic spatial axes without shape constraints, in seconds.
        kwargs["dynamo"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation notices, not for users
        torch.onnx.export(
            network,
            (example,),
            buffer,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            **kwargs,
        )
    return buffer.getvalue()


def _input_channels(network: nn.Module) -> int:
    """Input bands of ``network``: those of its first convolution."""
    for module in network.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ValueError(f"{type(network).__name__} has no Conv2d: cannot tell its input bands")


class OnnxRuntimeNetwork(nn.Module):
    """A network exported to ONNX and run by an ONNX Runtime CPU session.

    Takes and returns float32 (B, C, H, W) torch tensors, like the network it replaces.
    """

    def __init__(self, network: nn.Module, num_threads: int) -> None:
        """Export ``network`` (put in eval mode) and open a session with ``num_threads``."""
        import onnxruntime as ort

        super().__init__()
        network = network.eval().cpu().to(memory_format=torch.contiguous_format)
        onnx_model = _export_onnx(network, _input_channels(network))
        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = num_threads
        session_options.inter_op_num_threads = 1
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            onnx_model, session_options, providers=["CPUExecutionProvider"]
        )
        log.info("Network exported to ONNX Runtime %s (%d threads)", ort.__version__, num_threads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        image = x.float().contiguous().numpy()
        (logits,) = self.session.run(None, {"image": image})
        return torch.from_numpy(logits)


def run_with_onnx_runtime(model: nn.Module, num_threads: int) -> nn.Module:
    """``model`` with its network run by ONNX Runtime (idempotent: prepared models pass through).

    A :class:`PadToMultiple` keeps padding in PyTorch and hands its network to ONNX Runtime,
    so inputs of any size work; any other module is exported whole.
    """
    if isinstance(model, OnnxRuntimeNetwork):
        return model
    if isinstance(model, PadToMultiple):
        if isinstance(model.model, OnnxRuntimeNetwork):
            return model
        return PadToMultiple(OnnxRuntimeNetwork(model.model, num_threads), model.multiple)
    return OnnxRuntimeNetwork(model, num_threads)
