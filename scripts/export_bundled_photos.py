"""Write the natural photos bundled in installed packages into one folder, for train-generator.

The demo generator (cnnvis/data/demo_generator_lite0.pt) was trained on exactly the
photos this script writes by default (12), which leave out chelsea, coffee, astronaut and
rocket: those four are the inversion benchmark's photos (bench/inversion.py, bench/dgn.py),
held out so that the prior is measured on images it never saw. ``--all`` writes all 16:

- scikit-image ``skimage.data``: astronaut, chelsea, coffee, rocket, stereo_motorcycle (left
  view), hubble_deep_field, immunohistochemistry, retina, camera (grey), brick, grass, gravel
  (grey textures);
- scikit-learn's sample images: china.jpg, flower.jpg;
- matplotlib's sample data: grace_hopper.jpg, Minduka_Present_Blue_Pack.png.

Usage: python scripts/export_bundled_photos.py OUTDIR [--all]   (needs scikit-image, scikit-learn, matplotlib)
"""

from __future__ import annotations

import os
import sys

import imageio.v3 as iio
import numpy as np

HELD_OUT = ("chelsea", "coffee", "astronaut", "rocket")  # bench/dgn.py evaluates on these
SKIMAGE = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "camera",
           "brick", "grass", "gravel"]


def _rgb(a: np.ndarray) -> np.ndarray:
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return a[..., :3]


def main(out: str, include_held_out: bool = False) -> None:
    import matplotlib
    import skimage.data
    import sklearn.datasets

    os.makedirs(out, exist_ok=True)
    for name in SKIMAGE:
        if name in HELD_OUT and not include_held_out:
            continue
        iio.imwrite(os.path.join(out, f"skimage_{name}.png"), _rgb(getattr(skimage.data, name)()))
    iio.imwrite(os.path.join(out, "skimage_motorcycle.png"), skimage.data.stereo_motorcycle()[0])
    for name, img in zip(("china", "flower"), sklearn.datasets.load_sample_images().images):
        iio.imwrite(os.path.join(out, f"sklearn_{name}.png"), _rgb(img))
    sample = os.path.join(matplotlib.get_data_path(), "sample_data")
    for f in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"):
        img = iio.imread(os.path.join(sample, f))
        if img.dtype != np.uint8:
            img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
        iio.imwrite(os.path.join(out, "matplotlib_" + os.path.splitext(f)[0] + ".png"), _rgb(img))
    print(f"wrote {len(os.listdir(out))} photos to {out}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--all"]
    main(args[0] if args else "bundled_photos", "--all" in sys.argv[1:])
