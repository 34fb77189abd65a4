"""Every module of the package imports first, in a fresh interpreter: no import cycles.

Loading the plugin (which RV does on its first import) while one of our modules is half
imported is where a cycle would show. Each module gets its own forked child of a parent that
has imported only third-party libraries, so every child imports ``benchmark`` from nothing.
"""

import subprocess
import sys

WALK = """
import importlib.util, multiprocessing, pathlib, sys

# Third-party only, so every child skips their ~5 s (Raster Vision's plugins alone pull in
# scikit-learn, scipy.stats and pyplot: 3 s a child); RV and benchmark stay unimported.
for heavy in ("torch", "torch._dynamo", "torch.utils.tensorboard", "torchvision",
              "albumentations", "boto3", "geopandas", "matplotlib.pyplot", "onnx", "onnxruntime",
              "pystac", "rasterio", "scipy.stats", "segmentation_models_pytorch", "shapely",
              "skimage.io", "sklearn", "xarray"):
    importlib.import_module(heavy)
root = pathlib.Path(importlib.util.find_spec("benchmark").origin).parent
names = sorted(
    ".".join(("benchmark", *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
    for path in root.rglob("*.py")
)
assert "benchmark" not in sys.modules

def first_import(name, errors):
    try:
        importlib.import_module(name)
    except BaseException as exc:
        errors[name] = f"{type(exc).__name__}: {exc}"


# A new forked child per module, two at a time (the machines have two cores).
fork = multiprocessing.get_context("fork")
errors = fork.Manager().dict()
for pair in (names[i : i + 2] for i in range(0, len(names), 2)):
    children = [fork.Process(target=first_import, args=(name, errors)) for name in pair]
    for child in children:
        child.start()
    for name, child in zip(pair, children):
        child.join(120)
        if child.exitcode and name not in errors:
            errors[name] = f"exit code {child.exitcode}"
failures = sorted(errors.items())
print(len(names), "modules")
for name, error in failures:
    print("FAILED", name, error)
sys.exit(1 if failures else 0)
"""


def test_every_module_imports_first_in_a_fresh_interpreter():
    result = subprocess.run([sys.executable, "-c", WALK], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert int(result.stdout.split()[0]) > 30
