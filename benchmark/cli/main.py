"""``benchmark``: the one command line, a group of subcommands as rasterio's ``rio`` is.

``benchmark [-v] COMMAND ARGS...``, one module per command (its ``main(argv) -> int`` and its
parser, whose help is ``benchmark COMMAND --help``); the options they share are
:mod:`benchmark.cli.options`'. A command's module is imported only when it runs, so
``benchmark locate`` starts without torch or Raster Vision.

One error path (:mod:`benchmark.console`): exit 0 done, 1 some of the work failed (listed) or
a crash, 2 bad input or a bad command line, each problem one ``error: ...`` line and no
traceback unless ``-v`` (before or after COMMAND).

The old entry points are aliases that run the same code: the console scripts
``benchmark-predict`` and ``benchmark-footprints`` (:func:`alias`), ``python -m
benchmark.cli.NAME`` (each module's ``__main__``) and ``wb_scripts/*`` (``python -m
benchmark.cli COMMAND``).
"""

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from benchmark import console

# COMMAND -> (module, one line for the list in ``benchmark --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "predict": ("benchmark.cli.predict", "A bundle + a folder of test chips -> masks."),
    "footprints": ("benchmark.cli.footprints", "A bundle + orthomosaics -> building footprints."),
    "merge-footprints": (
        "benchmark.cli.merge_footprints",
        "A footprints run on a folder -> one deduplicated layer.",
    ),
    "submit": ("benchmark.cli.submit", "Check POSTPROCESS's masks and pack them for submission."),
    "summary": ("benchmark.cli.summary", "Where a finished run left its results."),
    "check-aws": ("benchmark.cli.check_aws", "Whether this AWS setup is ready for a run."),
    "check-catalog": ("benchmark.cli.check_catalog", "What a training catalog holds and lacks."),
    "locate": ("benchmark.cli.locate", "Where a run writes a given output."),
    "sync": ("benchmark.cli.sync", "aws s3 sync with our retries, failing in one line."),
    "demo": ("benchmark.cli.demo", "The whole benchmark on the Kampala sample, on CPU."),
}


class ModuleCommand(click.Command):
    """A subcommand whose module parses its own arguments (``main(argv) -> int``).

    Click passes every word after COMMAND on untouched (``--help`` included), so each command
    keeps its parser, its help and its exit statuses, under the group and as an alias alike.
    """

    def __init__(self, name: str, module: str, summary: str) -> None:
        super().__init__(
            name,
            short_help=summary,
            help=summary,
            add_help_option=False,
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        )
        self.module = module

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Keep every word, ``--`` too (click's parser would drop it: ``demo -- -a k v``)."""
        ctx.args = list(args)
        return ctx.args

    def invoke(self, ctx: click.Context) -> int:
        """Run the module's ``main`` with the words after COMMAND; its exit status."""
        run: Callable[[list[str]], int] = importlib.import_module(self.module).main
        return run(list(ctx.args))


class CommandGroup(click.Group):
    """The commands of :data:`COMMANDS`, their modules imported only when one runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The commands in the order ``benchmark --help`` lists them."""
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command named ``cmd_name``; None (click's "No such command") if there is none."""
        if cmd_name not in COMMANDS:
            return None
        return ModuleCommand(cmd_name, *COMMANDS[cmd_name])


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging, and tracebacks for errors.")
def cli(verbose: bool) -> None:
    """The Open Cities AI Challenge benchmark: predict, outline, submit and check.

    Training and evaluation run through Raster Vision (rastervision run ...
    benchmark.experiments.benchmark; wb_scripts/benchmark). Exit status: 0 done, 1 some of
    the work failed or a crash, 2 bad input (one "error:" line; -v for the traceback).
    Each command's options: benchmark COMMAND --help.
    """
    console.set_verbose(verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``benchmark ARGV``; the exit status (what :func:`run` exits with)."""
    console.set_verbose(False)
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        status: Any = cli.main(args=words, prog_name="benchmark", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        sys.stderr.write(exc.ctx.get_help() + "\n" if exc.ctx else "")
        return console.EXIT_BAD_INPUT
    except click.UsageError as exc:
        console.print_error(f"{exc.format_message()} (see benchmark --help)")
        return console.EXIT_BAD_INPUT
    except click.Abort:
        return console.EXIT_FAILED
    except SystemExit as exc:  # a command's parser: --help (0) or a bad command line (2)
        return exc.code if isinstance(exc.code, int) else console.EXIT_FAILED
    except Exception as exc:
        return console.crash_status(exc)
    return status if isinstance(status, int) else console.EXIT_OK


def run() -> None:
    """The ``benchmark`` console script (also ``python -m benchmark.cli``)."""
    sys.exit(main())


def alias(command: str, argv: Sequence[str] | None = None) -> int:
    """An old entry point: ``benchmark COMMAND ARGV`` (``sys.argv``'s words by default)."""
    return main([command, *(sys.argv[1:] if argv is None else argv)])


def predict_alias() -> None:
    """``benchmark-predict``: ``benchmark predict``."""
    sys.exit(alias("predict"))


def footprints_alias() -> None:
    """``benchmark-footprints``: ``benchmark footprints``."""
    sys.exit(alias("footprints"))
