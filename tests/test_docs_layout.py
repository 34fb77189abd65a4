"""docs/layout.md's tree names every module of the package, and only modules that exist."""

import re
from pathlib import Path

import pytest

PACKAGE = "benchmark"


def _package_lines(text: str) -> dict[str, list[str]]:
    """The tree's lines about the package, by folder ("" = the package itself).

    A line indented by two spaces whose first word ends in ``/`` opens a sub-package; deeper
    lines (and continuation lines) belong to the last one opened.
    """
    block = text.split("```")[1]
    folders: dict[str, list[str]] = {}
    folder = None
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        first = line.split()[0]
        if indent == 0:
            folder = "" if first == f"{PACKAGE}/" else None
        elif indent == 2 and first.endswith("/"):
            folder = first.rstrip("/")
        elif indent == 2 and folder is not None:
            folder = ""
        if folder is not None:
            folders.setdefault(folder, []).append(line)
    return folders


@pytest.fixture(scope="module")
def layout(repo_root: Path) -> dict[str, list[str]]:
    """docs/layout.md's lines of the package, by folder."""
    return _package_lines((repo_root / "docs" / "layout.md").read_text())


def _modules(repo_root: Path) -> dict[str, set[str]]:
    """The package's modules (``__init__`` aside), by folder, as the layout groups them."""
    modules: dict[str, set[str]] = {}
    for path in (repo_root / PACKAGE).rglob("*.py"):
        relative = path.relative_to(repo_root / PACKAGE)
        if path.stem != "__init__":
            modules.setdefault(str(relative.parent).replace(".", ""), set()).add(path.stem)
    return modules


def test_every_module_is_in_the_layout(layout, repo_root):
    missing = [
        f"{folder}/{stem}.py".lstrip("/")
        for folder, stems in _modules(repo_root).items()
        for stem in sorted(stems)
        if stem not in set(re.findall(r"\w+", " ".join(layout.get(folder, []))))
    ]
    assert not missing, f"docs/layout.md names none of: {', '.join(missing)}"


def test_every_module_the_layout_names_exists(layout, repo_root):
    named = [
        (folder, name)
        for folder, lines in layout.items()
        for name in re.findall(r"\b(\w+\.py)\b", " ".join(lines))
    ]
    assert named, "no module found in docs/layout.md: has its format changed?"
    gone = [
        f"{folder}/{name}".lstrip("/")
        for folder, name in named
        if not (repo_root / PACKAGE / folder / name).is_file()
    ]
    assert not gone, f"docs/layout.md names modules that do not exist: {', '.join(gone)}"
