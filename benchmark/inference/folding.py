"""BatchNorm folded into the convolution before it, for inference on PyTorch's fast plans.

In eval mode a BatchNorm after a convolution is a fixed scale and shift per channel, so it
can be folded into that convolution's weights and bias: one pass over each activation instead
of two, which on a 1024 px chip is memory traffic the CPU otherwise waits for
(``wb_scripts/bench --only folding`` measures it). ONNX Runtime folds by itself; plain fp32,
the reference every fast plan is compared with, runs the network as trained.

The pairs are found by tracing the network with ``torch.fx``; the modules are then changed in
place (the convolution replaced by the folded one, the BatchNorm by an identity), so the
network keeps its classes, attributes and forward code. Where a module cannot be traced
(Python control flow on the input's size: our padding wrapper, SMP's FPN decoder), its
children are, one by one, so every traceable part is still folded.
"""

import copy
import logging
import weakref
from collections import Counter

from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

log = logging.getLogger(__name__)

# Models this module returned: preparing a model twice must not trace and copy it again.
_PREPARED: "weakref.WeakSet[nn.Module]" = weakref.WeakSet()


def _batch_norms(module: nn.Module) -> int:
    # Exact types only: subclasses may do more (timm's BatchNormAct2d also activates, its
    # StdConv2d standardizes its weights), which folding would lose.
    return sum(type(m) is nn.BatchNorm2d for m in module.modules())


def _conv_bn_pairs(module: nn.Module) -> list[tuple[str, str]]:
    """(convolution, BatchNorm) names where the BatchNorm is the convolution's only reader.

    Raises whatever the tracer raises when ``module`` cannot be traced.
    """
    graph = fx.symbolic_trace(module).graph
    calls = Counter(node.target for node in graph.nodes if node.op == "call_module")
    pairs = []
    for node in graph.nodes:
        conv = node.args[0] if node.op == "call_module" and node.args else None
        if not (isinstance(conv, fx.Node) and conv.op == "call_module"):
            continue
        if (
            type(module.get_submodule(node.target)) is nn.BatchNorm2d
            and type(module.get_submodule(conv.target)) is nn.Conv2d
            and len(conv.users) == 1
            and calls[node.target] == calls[conv.target] == 1  # neither module is reused
        ):
            pairs.append((conv.target, node.target))
    return pairs


def _replace(module: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attribute = name.rpartition(".")
    setattr(module.get_submodule(parent), attribute, new)


def _fold_in_place(module: nn.Module) -> None:
    """Fold ``module``'s BatchNorms: traced whole, or else child by child."""
    if not _batch_norms(module):
        return
    try:
        pairs = _conv_bn_pairs(module)
    except Exception as exc:  # whatever Python the tracer cannot follow (TraceError, TypeError)
        log.debug("%s not traced (%s): folding its children", type(module).__name__, exc)
        for child in module.children():
            _fold_in_place(child)
        return
    for conv_name, bn_name in pairs:
        bn = module.get_submodule(bn_name)
        if bn.track_running_stats:
            _replace(module, conv_name, fuse_conv_bn_eval(module.get_submodule(conv_name), bn))
            _replace(module, bn_name, nn.Identity())


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with BatchNorms folded; ``model`` is left as it was.

    Returns ``model`` itself when it has no BatchNorm or came from here already.
    """
    if model in _PREPARED or not (before := _batch_norms(model)):
        return model
    folded = copy.deepcopy(model)
    _fold_in_place(folded)
    count = before - _batch_norms(folded)
    log.info("BatchNorm folded into the convolutions: %d of %d", count, before)
    _PREPARED.add(folded)
    return folded
