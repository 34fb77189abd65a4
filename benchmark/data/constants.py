"""Classes and the benchmark's scene selection.

Scene ids are ``area/id`` as in the Open Cities ``train_tier_1`` catalog. The defaults are the
original benchmark's: four cities, one training and one validation scene each.
"""

# Pixel values in label rasters, predictions and the submission: 0 = no building, 1 = building.
CLASS_NAMES = ("No Building", "Building")
CLASS_COLORS = ("#000000", "#e6194b")
NO_BUILDING = 0
BUILDING = 1
# In training labels only: pixels no loss looks at (self-training's unsure pseudo-labels).
IGNORE_LABEL = 255

TRAIN_IDS = ("mon/401175", "acc/d41d81", "dar/a017f9", "znz/75cdfa")
VALID_IDS = ("mon/f15272", "acc/a42435", "dar/353093", "znz/aee7fd")

# The Kampala sample shipped in data/ (one training and one validation scene).
SAMPLE_TRAIN_IDS = ("kam/94f080",)
SAMPLE_VALID_IDS = ("kam/8a5983",)

# A pixel is a building when P(building) > this, unless a threshold was chosen (eval's, kept
# in the bundle): the softmax's own decision between the two classes.
DEFAULT_THRESHOLD = 0.5

# Submission chips: single band uint8 of this size, one per test image.
CHIP_SIZE = 1024

# An instance target's training labels (benchmark.data.instance_labels): bits of one uint8 band,
# so Raster Vision's chips store them as they are. A binary label (0, 1) is its body bit alone,
# and IGNORE_LABEL (all bits set) stays the pixel no loss looks at.
BODY_BIT = 1
BORDER_BIT = 2
CONTACT_BIT = 4
