"""What the ``benchmark`` commands share: their parser, argument value types and options.

Written once, as rasterio keeps its ``rio`` options in one module, so every command checks a
window side or a threshold the same way, takes ``-v`` the same way and exits the same way. The
exit statuses and the one-line error are :mod:`benchmark.console`'s (what Raster Vision runs of
ours shares them), named here too for the commands and tools: ``EXIT_OK`` (0) done,
``EXIT_FAILED`` (1) some of the work could not be done (listed), ``EXIT_BAD_INPUT`` (2) one
``error: ...`` line. What was written before a stop is complete and kept, so a re-run after the
fix goes on from there.

The value types raise :class:`argparse.ArgumentTypeError`, and argparse names them in its
message (``invalid pixels value: 'x'``), hence their plain names.
"""

import argparse
import sys
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn

from benchmark.console import EXIT_BAD_INPUT as EXIT_BAD_INPUT
from benchmark.console import EXIT_FAILED as EXIT_FAILED
from benchmark.console import EXIT_OK as EXIT_OK
from benchmark.console import exit_status as exit_status
from benchmark.console import print_error as print_error
from benchmark.errors import InputError

if TYPE_CHECKING:
    from benchmark.inference.execution import InferenceOptions


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: ``benchmark NAME`` in its usage, a bad command line in one line.

    argparse prints its usage and ``prog: error: ...`` and exits 2; ours print the one
    ``error: ...`` line every error of ours is, and exit 2 as well.
    """

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(prog=f"benchmark {name}", allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Print ``message`` as our commands print errors and exit ``EXIT_BAD_INPUT``."""
        print_error(f"{message} (see {self.prog} --help)")
        sys.exit(EXIT_BAD_INPUT)


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    """``-v``: debug logs and tracebacks (as ``benchmark -v NAME``)."""
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, tracebacks for errors"
    )


def probability(value: str) -> float:
    """A decision threshold: building where P > it, so 1 would mark nothing."""
    threshold = float(value)
    if not 0.0 <= threshold < 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not in [0, 1)")
    return threshold


def metres(value: str) -> float:
    """A ground sample distance in metres per pixel."""
    size = float(value)
    if not size > 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of metres")
    return size


def pixels(value: str) -> int:
    """A number of pixels, 0 allowed (an overlap)."""
    count = int(value)
    if count < 0:
        raise argparse.ArgumentTypeError(f"{value} is not a number of pixels")
    return count


def side(value: str) -> int:
    """The side of a window or chip: at least one pixel."""
    length = pixels(value)
    if length == 0:
        raise argparse.ArgumentTypeError("a window needs at least one pixel a side")
    return length


def non_negative(value: str) -> float:
    """Metres or square metres where 0 means off (a tolerance, a minimum area)."""
    number = float(value)
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a number >= 0")
    return number


def count(value: str) -> int:
    """How many of something (chips, steps, epochs, a batch): at least one."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a whole number above 0")
    return number


def epsg_code(value: str) -> int:
    """An EPSG code that pyproj knows (``32636`` or ``EPSG:32636``): ``-a crs``'s rule too."""
    from benchmark.footprints.ground import known_epsg  # pyproj: only commands with a --crs

    try:
        return known_epsg(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def device(value: str) -> str:
    """Where the model runs: auto, cpu, cuda or cuda:N.

    Whether this machine has it is :func:`inference_options`'s check, one line at run time.
    """
    from benchmark.inference.devices import check_device_name

    try:
        return check_device_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_model_arguments(parser: argparse.ArgumentParser, unit: str, window_default: str) -> None:
    """The options of every command that runs a model bundle, written once.

    Args:
        parser: the command's parser.
        unit: what a forward pass takes a batch of ("chips", "windows").
        window_default: what ``--window`` defaults to, for its help.
    """
    parser.add_argument(
        "--threshold",
        type=probability,
        default=None,
        help="building where P > T (default: the threshold stored in the bundle)",
    )
    parser.add_argument("--tta", action="store_true", help="average 8 flips/rotations (8x time)")
    from benchmark.inference.execution import EXECUTION_NAMES  # torch: only when predicting

    plan = parser.add_mutually_exclusive_group()
    plan.add_argument(
        "--plan",
        choices=EXECUTION_NAMES,
        default="auto",
        help="how the model runs: auto (default) = the fastest on this machine (CUDA: fp16; "
        "CPU: each plan timed on the first batch, the choice cached per CPU and bundle), or "
        "one forced: fp32 (plain PyTorch), fp32_channels_last, bf16, fp16 (GPU), onnx or int8 "
        "(ONNX Runtime)",
    )
    plan.add_argument(
        "--no-fast", dest="plan", action="store_const", const="fp32", help="--plan fp32"
    )
    parser.add_argument(
        "--window",
        type=side,
        default=None,
        metavar="PX",
        help=f"prediction window side in the model's pixels (default: {window_default})",
    )
    parser.add_argument(
        "--overlap",
        type=pixels,
        default=None,
        metavar="PX",
        help="pixels shared by neighbouring windows (default: the bundle's)",
    )
    parser.add_argument("--batch-size", type=count, default=4, help=f"{unit} per forward pass")
    parser.add_argument(
        "--device",
        type=device,
        default="auto",
        help="auto (default: the GPU where there is one, else the CPU), cpu, cuda or cuda:N",
    )
    parser.add_argument(
        "--num-threads", type=count, default=None, help="torch CPU threads (default: all cores)"
    )
    add_verbose_argument(parser)


def inference_options(args: argparse.Namespace, **more: Any) -> "InferenceOptions":
    """:class:`InferenceOptions` from the options :func:`add_model_arguments` added.

    Raises:
        InputError: ``--device`` is a GPU this machine does not have, or ``--plan`` a plan it
            cannot run (fp16 on a CPU, onnx or int8 on a GPU or without ONNX Runtime): one
            line, before the bundle is loaded.
    """
    from benchmark.inference.execution import InferenceOptions, execution_plan

    options = InferenceOptions(
        device=args.device,
        execution=args.plan,
        batch_size=args.batch_size,
        tta=args.tta,
        num_threads=args.num_threads,
        **more,
    )
    try:
        execution_plan(options)  # the device checked first (an InputError of its own)
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"--plan {args.plan}: {exc}") from None
    return options


def bundle_loader(device: str) -> Callable[[str], Any]:
    """:func:`~benchmark.pipeline.bundle.load_bundle`, loading the model onto ``device``."""
    from benchmark.pipeline.bundle import load_bundle  # imports Raster Vision's learner: slow

    return partial(load_bundle, device=device)
