"""The package's stages import only the stages below them (pyproject.toml's import-linter contract).

The contract names the order (cli > experiments > pipeline > evaluation > footprints >
training | inference > networks > data > the leaves), so an import that points up fails the
suite with import-linter's own account of the chain, not a reviewer's reading of the diff.
"""

import re
import subprocess
import sys
from pathlib import Path


def test_imports_point_down(repo_root: Path):
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--config", "pyproject.toml", "--no-cache"],
        cwd=repo_root,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_the_contract_names_every_stage(repo_root: Path):
    """A new stage folder must be placed in the layers, or it escapes the check."""
    contract = (repo_root / "pyproject.toml").read_text().split("[tool.importlinter]", 1)[1]
    placed = set(re.findall(r"benchmark\.(\w+)", contract))
    package = repo_root / "benchmark"
    parts = {p.parent.name for p in package.glob("*/__init__.py")}
    parts |= {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    assert parts <= placed, f"place these in pyproject.toml's layers: {sorted(parts - placed)}"
