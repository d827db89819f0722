"""The natural photos bundled in installed packages, split once into a tuning and a validation set.

- **Tuning** (``TUNING``): the four scikit-image photos the inversion defaults were chosen on
  (bench/inversion.py's history), and which the demo generator may train on.
- **Validation** (``VALIDATION``): fourteen colour photos, used only to report: never to choose a
  default, never to train the demo generator (scripts/export_bundled_photos.py leaves them out).
  Four come from three other packages (``PACKAGE_VALIDATION``), ten from OpenCV's sample data
  (``OPENCV_VALIDATION``, bench/data/photos/, scripts/export_opencv_photos.py). A default that
  holds here holds on photos nobody tuned on.
- **Wider tuning** (``OPENCV_TUNING``, the set ``tuning-opencv``): nine more colour photos from OpenCV's
  sample data (bench/data/photos/, scripts/export_opencv_photos.py), for choices that four photos cannot
  make (issue 25). Tuning only: nothing is reported on them, and the demo generator never trained on them.
- **Training** (``TRAINING``): every other bundled photo, for the demo generator, with the
  tuning photos.

Every photo is RGB, centre-cropped to a square and area-resized (:func:`photo`).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

TUNING = ("chelsea", "coffee", "astronaut", "rocket")
PACKAGE_VALIDATION = ("china", "flower", "grace_hopper", "motorcycle")
OPENCV_VALIDATION = (
    "aloe",
    "apple",
    "baboon",
    "butterfly",
    "building",
    "fruits",
    "leuven",
    "orange",
    "smarties",
    "squirrel",
)
OPENCV_TUNING = ("aero", "board", "books", "chicky", "graffiti", "home", "notebook", "stuff", "toys")
VALIDATION = PACKAGE_VALIDATION + OPENCV_VALIDATION
FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "photos")
OTHERS = ("hubble_deep_field", "immunohistochemistry", "retina", "camera", "brick", "grass", "gravel", "minduka")
TRAINING = TUNING + OTHERS  # the demo generator's photos: everything but the validation set
SETS = {"tuning": TUNING, "validation": VALIDATION, "tuning-opencv": OPENCV_TUNING}


def _rgb(a: np.ndarray) -> np.ndarray:
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    a = a[..., :3]
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    return a


def full_photo(name: str) -> np.ndarray:
    """One bundled photo at its own size, (H, W, 3) uint8."""
    if name in OPENCV_VALIDATION + OPENCV_TUNING:
        return cv2.cvtColor(cv2.imread(os.path.join(FOLDER, f"{name}.jpg"), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if name in ("china", "flower"):
        import sklearn.datasets

        return _rgb(sklearn.datasets.load_sample_images().images[("china", "flower").index(name)])
    if name in ("grace_hopper", "minduka"):
        import imageio.v3 as iio
        import matplotlib

        f = "grace_hopper.jpg" if name == "grace_hopper" else "Minduka_Present_Blue_Pack.png"
        return _rgb(iio.imread(os.path.join(matplotlib.get_data_path(), "sample_data", f)))
    import skimage.data

    if name == "motorcycle":
        return _rgb(skimage.data.stereo_motorcycle()[0])
    return _rgb(getattr(skimage.data, name)())


def photo(name: str, side: int) -> np.ndarray:
    """A bundled photo as (side, side, 3) float32 RGB in [0, 1]: centre square crop, area resize."""
    a = full_photo(name)
    h, w = a.shape[:2]
    s = min(h, w)
    a = a[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    return cv2.resize(a, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
