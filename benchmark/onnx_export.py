"""ONNX export with torch's TorchScript exporter, where torch has both.

Since torch 2.9, ``torch.onnx.export`` uses the dynamo exporter by default. On a 2-core CPU it
took tens of seconds for the smallest U-Net and about ten for the ResNet-18 one, where the
TorchScript exporter takes well under a second, and below opset 18 it goes through a version
converter that logs a failure's traceback. Every ``train`` and ``bundle`` exports (Raster
Vision writes ``model.onnx`` into each bundle), and so does every ONNX Runtime plan when it
prepares a model; the TorchScript exporter writes the same graph, with dynamic spatial axes.
"""

import inspect
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torchscript_exporter() -> Iterator[dict[str, bool]]:
    """``torch.onnx.export`` arguments choosing the TorchScript exporter, its notices silenced.

    The notices (tracer warnings, the exporter's deprecation) are for torch developers, not
    for someone training or predicting.
    """
    parameters = inspect.signature(torch.onnx.export).parameters
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield {"dynamo": False} if "dynamo" in parameters else {}
