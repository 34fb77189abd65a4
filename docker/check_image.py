"""What docker/check asks of the image, run in it (docker/run --tests mounts docker/ there).

- ``torch``: torch's version, the CUDA and cuDNN it was built for, and whether a GPU is seen;
- ``imports``: import every module of the ``benchmark`` package (walked with pkgutil) and the
  Raster Vision plugin shim; a module that fails is named with its error;
- ``batch-commands CFG_URI COMMAND[:SPLITS]...``: the container command that the ``batch``
  runner submits for each job of those commands of a saved pipeline config, one line per job
  (array size, command, then the shell-quoted command line), as ``rastervision run batch`` does. The
  pipeline config may be local here (Batch itself needs s3://): the command is the same.
- ``survey-config ROOT BUNDLE INPUT``: save the survey footprints experiment's pipeline config
  (``benchmark.experiments.footprints``, as ``rastervision run`` saves it before submitting)
  and print where, for ``batch-commands``.
"""

import argparse
import importlib
import pkgutil
import shlex
import sys
import tempfile
import traceback


def show_torch() -> int:
    """Print torch's build: version, CUDA, cuDNN, and the GPUs it sees."""
    import torch

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    print(f"torch {torch.__version__}")
    print(f"built for CUDA {torch.version.cuda}, cuDNN {cudnn}")
    if torch.version.cuda:
        # The GPU architectures the kernels were compiled for (sm_75: Turing, T4).
        print(f"GPU architectures: {torch._C._cuda_getArchFlags()}")
    print(f"GPUs visible: {torch.cuda.device_count() if torch.cuda.is_available() else 0}")
    return 0


def import_all() -> int:
    """Import every module of ``benchmark`` and ``rastervision.benchmark``; 1 if any fails."""
    import benchmark

    names = ["rastervision.benchmark", "benchmark"]
    names += [
        m.name for m in pkgutil.walk_packages(benchmark.__path__, "benchmark.", onerror=print)
    ]
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            failed.append(name)
            print(f"FAILED {name}:\n{traceback.format_exc()}", file=sys.stderr)
    print(f"imported {len(names) - len(failed)} of {len(names)} modules")
    if failed:
        print(f"failed: {' '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def batch_commands(cfg_uri: str, commands: list[str]) -> int:
    """Print each job's array size and command, as the ``batch`` runner would submit them."""
    from rastervision.pipeline import registry_
    from rastervision.pipeline.config import build_config
    from rastervision.pipeline.file_system import file_to_json

    runner = registry_.get_runner("batch")()
    print(f"runner: {type(runner).__module__}.{type(runner).__name__}", file=sys.stderr)
    cfg = build_config(file_to_json(cfg_uri))
    with tempfile.TemporaryDirectory() as tmp_dir:
        pipeline = cfg.build(tmp_dir)
        for spec in commands:
            command, _, splits = spec.partition(":")
            cmd, args = runner.build_cmd(command, cfg_uri, pipeline, int(splits or 1))
            print(args["num_array_jobs"] or 1, command, shlex.join(cmd))
    return 0


def survey_config(root_uri: str, bundle_uri: str, input_uri: str) -> int:
    """Save the footprints experiment's config as ``rastervision run`` does; print its URI."""
    from rastervision.pipeline.config import save_pipeline_config

    from benchmark.experiments.footprints import get_config

    cfg = get_config("batch", root_uri=root_uri, bundle_uri=bundle_uri, input_uri=input_uri)
    cfg.update()
    cfg.recursive_validate_config()
    save_pipeline_config(cfg, cfg.get_config_uri())
    print(cfg.get_config_uri())
    return 0


def main() -> int:
    """Run one of the checks (see the module)."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    sub = parser.add_subparsers(dest="check", required=True)
    sub.add_parser("torch", help="torch's version and the CUDA it was built for")
    sub.add_parser("imports", help="import every module of the benchmark package")
    batch = sub.add_parser("batch-commands", help="the batch runner's job commands")
    batch.add_argument("cfg_uri", help="a saved pipeline config (pipeline-config/<id>.json)")
    batch.add_argument("commands", nargs="+", help="COMMAND or COMMAND:SPLITS (array jobs)")
    survey = sub.add_parser("survey-config", help="save the survey footprints config")
    survey.add_argument("root_uri", help="the survey's output root")
    survey.add_argument("bundle_uri", help="a model bundle")
    survey.add_argument("input_uri", help="the orthomosaics: a GeoTIFF, a folder, a STAC file")
    args = parser.parse_args()
    if args.check == "torch":
        return show_torch()
    if args.check == "imports":
        return import_all()
    if args.check == "survey-config":
        return survey_config(args.root_uri, args.bundle_uri, args.input_uri)
    return batch_commands(args.cfg_uri, args.commands)


if __name__ == "__main__":
    sys.exit(main())
