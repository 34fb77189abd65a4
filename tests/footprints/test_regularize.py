"""Squared outlines: right angles for rectilinear roofs, never a lost building."""

import numpy as np
import pytest
import shapely
from shapely.affinity import rotate

from benchmark.footprints.regularize import dominant_angle, regularize


def jittered(polygon: shapely.Polygon, step: float, noise: float, seed: int = 0):
    """``polygon`` with a vertex every ``step`` m along its sides, each moved by ``noise``."""
    ring = polygon.exterior.segmentize(step)
    coords = np.asarray(ring.coords)[:-1]
    coords = coords + np.random.default_rng(seed).normal(0, noise, coords.shape)
    return shapely.Polygon(coords)


def corner_angles(polygon: shapely.Polygon) -> np.ndarray:
    coords = np.asarray(polygon.exterior.coords)[:-1]
    before = coords - np.roll(coords, 1, axis=0)
    after = np.roll(coords, -1, axis=0) - coords
    cos = (before * after).sum(1) / np.hypot(*before.T) / np.hypot(*after.T)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def iou(a, b) -> float:
    return a.intersection(b).area / a.union(b).area


L_SHAPE = shapely.Polygon([(0, 0), (20, 0), (20, 8), (9, 8), (9, 15), (0, 15)])


class TestRegularize:
    @pytest.mark.parametrize("angle", [0, 17, 30, 44, -25])
    def test_dominant_angle_is_the_rotation_modulo_90(self, angle):
        turned = rotate(L_SHAPE, angle, origin=(0, 0))
        found = np.degrees(dominant_angle(np.asarray(turned.exterior.coords)))
        assert (found - angle + 45) % 90 - 45 == pytest.approx(0, abs=1e-6)

    @pytest.mark.parametrize("seed", range(4))
    @pytest.mark.parametrize(("shape", "corners"), [(shapely.box(0, 0, 12, 7), 4), (L_SHAPE, 6)])
    def test_a_noisy_rotated_outline_comes_out_square(self, shape, corners, seed):
        truth = rotate(shape, 30, origin="centroid")
        traced = jittered(truth, step=0.5, noise=0.1, seed=seed).simplify(
            0.3
        )  # as outlines.py does
        squared = regularize(traced)
        assert len(squared.exterior.coords) - 1 == corners
        assert corner_angles(squared) == pytest.approx(np.full(corners, 90.0), abs=1e-6)
        assert iou(squared, truth) > 0.95

    def test_an_invalid_outline_is_left_alone(self):
        bowtie = shapely.Polygon([(0, 0), (4, 4), (4, 0), (0, 4)])
        assert regularize(bowtie) is bowtie

    def test_a_round_outline_is_kept(self):
        disc = shapely.Point(0, 0).buffer(5)
        assert regularize(disc).equals(disc)

    def test_holes_are_squared_too(self):
        courtyard = shapely.Polygon(
            shapely.box(0, 0, 20, 20).exterior.coords, [shapely.box(6, 6, 14, 14).exterior.coords]
        )
        squared = regularize(courtyard)
        assert len(squared.interiors) == 1
        assert squared.area == pytest.approx(400 - 64)
