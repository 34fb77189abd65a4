"""A non-editable install works away from the repository: ``pip install .``, then the commands.

The test venv reuses this venv's third-party packages (a path line, so their ``.pth`` files,
among them the editable install of this checkout, are not processed) and gets this package
built as a wheel and installed, as a user's ``pip install .`` would. The commands then run from
a directory outside the checkout, so nothing can be imported from it: neither ``tests`` nor
``tools``, nor the source tree itself.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from benchmark.data import layout
from tests.fixtures.cli import CHIP, EXPERIMENT
from tests.fixtures.opencities import cli_args, make_opencities_catalog

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory, repo_root: Path) -> Path:
    """A venv with this package installed from a wheel; returns its ``bin`` directory."""
    venv = tmp_path_factory.mktemp("install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    deps = Path(sysconfig.get_path("purelib"))
    (site / "dependencies.pth").write_text(f"{deps}\n")
    # Build from a copy of what the package is made of, so the build leaves nothing in the
    # checkout (setuptools writes build/ and *.egg-info beside setup.py).
    source = tmp_path_factory.mktemp("source")
    for name in ("setup.py", "pyproject.toml", "README.md", "benchmark", "rastervision"):
        copy = shutil.copytree if (repo_root / name).is_dir() else shutil.copy
        copy(repo_root / name, source / name)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
            "install", "--quiet", "--no-deps", "--no-build-isolation", str(source),
        ],
        check=True,
    )  # fmt: skip
    return venv / "bin"


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)


def test_the_package_comes_from_the_install(installed, tmp_path, repo_root):
    result = run(
        installed, "python", "-c",
        "import benchmark, rastervision.benchmark as shim, importlib.util as u;"
        "print(benchmark.__file__, shim.__file__, u.find_spec('tests'), u.find_spec('tools'))",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    package, shim, tests, tools = result.stdout.split()
    assert not package.startswith(str(repo_root)), package
    assert not shim.startswith(str(repo_root)), shim
    assert (tests, tools) == ("None", "None")


def test_preprocess_runs(installed, tmp_path):
    catalog = make_opencities_catalog(tmp_path / "catalog")
    root = tmp_path / "out"
    result = run(
        installed, "python", "-m", "rastervision.pipeline.cli", "--tmpdir", str(tmp_path / "rv"),
        "run", "inprocess", "benchmark.experiments.split_images", "PREPROCESS",
        *cli_args(catalog.scene_args(str(root))), "-a", "split_size", "64",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert list((root / "split_images").rglob("manifest.json"))


def test_folder_predict_runs_a_bundle(installed, finished_run, tmp_path):
    root, catalog = finished_run["root"], finished_run["catalog"]
    bundle = layout.model_bundle_uri(layout.command_dir(str(root), "bundle", EXPERIMENT))
    chips = Path(catalog.test_catalog_uri).parent
    result = run(
        installed, "benchmark-predict", bundle, str(chips), str(tmp_path / "masks"),
        "--chip-size", str(CHIP), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.stem for p in (tmp_path / "masks").glob("*.tif")) == sorted(
        catalog.test_chip_ids
    )
