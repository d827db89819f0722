"""bench/photos.py's split: no validation photo is tuned or trained on, not even as a second view of itself."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
from photos import OPENCV_TUNING, SETS, TRAINING, TUNING, VALIDATION, photo  # noqa: E402  (bench/photos.py)


def test_validation_photos_are_neither_tuned_nor_trained_on():
    chosen_on = set(TUNING) | set(OPENCV_TUNING) | set(TRAINING)
    assert not chosen_on & set(VALIDATION)
    assert not set(OPENCV_TUNING) & set(TRAINING)  # the demo generator never saw the wider tuning set
    assert sum(len(names) for names in SETS.values()) == len(set().union(*SETS.values()))


def _palette(name: str) -> np.ndarray:
    """The photo's colour histogram: 4 levels per channel, 64 bins summing to 1."""
    levels = np.minimum((photo(name, 64) * 4).astype(int), 3)
    counts = np.bincount((levels[..., 0] * 16 + levels[..., 1] * 4 + levels[..., 2]).ravel(), minlength=64)
    return counts / counts.sum()


@pytest.mark.parametrize("name", OPENCV_TUNING)
def test_no_tuning_photo_is_a_view_of_a_validation_photo(name):
    a = photo(name, 224)
    assert a.shape == (224, 224, 3) and a.std() > 0.05  # a real photo, in colour range
    # the second view of a stereo pair shares its palette: aloeR against aloe 0.92, leuvenB against leuven 0.84;
    # the tuning photos' closest is 0.76 (graffiti)
    closest = max(float(np.minimum(_palette(name), _palette(v)).sum()) for v in VALIDATION)
    assert closest < 0.8, f"{name} has a validation photo's colours (histogram intersection {closest:.2f})"
