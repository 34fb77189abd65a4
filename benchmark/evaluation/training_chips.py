"""The training chips of Raster Vision's chip zips, read back for what eval decides with them.

``eval`` can choose its decision threshold from the labels the run trained on (never the
validation labels it reports): by predicting the chips (``training_threshold``) or from their
share of building pixels (``-a threshold share``). Both read the chips RV's ``chip`` zipped, a
bounded sample of them evenly taken, so the pass stays short for the full data set's thousands.
"""

import io
import zipfile
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image
from rastervision.pipeline.file_system import download_if_needed

from benchmark.data.instance_labels import body_labels
from benchmark.data.layout import TRAIN_CHIP_IMAGES, TRAIN_CHIP_LABELS

# Chips read at most, taken evenly from all of them: minutes on a CPU for the full data set
# (``eval`` runs on the CPU queue on AWS Batch).
MAX_CHIPS = 2000


def _read_png(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(zf.read(name))))


def _training_chip_names(zf: zipfile.ZipFile) -> list[str]:
    prefix = f"{TRAIN_CHIP_IMAGES}/"
    return sorted(n for n in zf.namelist() if n.startswith(prefix) and n.endswith(".png"))


def training_chips(
    chip_zip_uris: Sequence[str], tmp_dir: str, images: bool = True
) -> Iterator[tuple[np.ndarray | None, np.ndarray]]:
    """(uint8 (3, H, W) image, label) of at most :data:`MAX_CHIPS` training chips, evenly taken.

    The labels are 0/1 (and ``IGNORE_LABEL``) whatever the target: an instance target's
    label bits give their building body, which is what thresholds are chosen for.

    Args:
        chip_zip_uris: RV's chip zips (local or s3://); their ``train`` chips count.
        tmp_dir: where zips on S3 are downloaded.
        images: False: the labels only (the image is None), without decoding the images.
    """
    local = [download_if_needed(uri, tmp_dir) for uri in chip_zip_uris]
    names = []
    for path in local:
        with zipfile.ZipFile(path) as zf:
            names += [(path, name) for name in _training_chip_names(zf)]
    step = max(1, -(-len(names) // MAX_CHIPS))
    taken = names[::step]
    for path in dict.fromkeys(p for p, _ in taken):
        with zipfile.ZipFile(path) as zf:
            for _, name in (t for t in taken if t[0] == path):
                image = _read_png(zf, name)[..., :3].transpose(2, 0, 1) if images else None
                labels = _read_png(zf, name.replace(TRAIN_CHIP_IMAGES, TRAIN_CHIP_LABELS, 1))
                yield image, body_labels(labels)
