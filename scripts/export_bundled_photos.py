"""Write the natural photos bundled in installed packages into one folder, for train-generator.

By default it writes the shipped demo generator's training photos (bench/photos.py ``TRAINING``, 12):
every bundled photo except the validation set (china, flower, grace_hopper, motorcycle), which
bench/inversion.py and bench/dgn.py report on, so that the prior is measured on photos it never
saw and the defaults on photos nobody tuned on. ``--all`` also writes the validation photos.
``--shipped`` writes the 12 photos the first demo generator (replaced in issue 14) was trained
on, before this split existed: it includes china, flower and grace_hopper.

- scikit-image ``skimage.data``: astronaut, chelsea, coffee, rocket (the tuning set),
  hubble_deep_field, immunohistochemistry, retina, camera (grey), brick, grass, gravel (grey
  textures), stereo_motorcycle (left view; validation);
- scikit-learn's sample images: china.jpg, flower.jpg (validation);
- matplotlib's sample data: grace_hopper.jpg (validation), Minduka_Present_Blue_Pack.png.

Usage: python scripts/export_bundled_photos.py OUTDIR [--all | --shipped]
       (needs scikit-image, scikit-learn, matplotlib)
"""

from __future__ import annotations

import os
import sys

import imageio.v3 as iio

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
from photos import TRAINING, VALIDATION, full_photo  # noqa: E402  (bench/photos.py: the split, written once)

# the first demo generator's photos (trained before the tuning / validation split; replaced in issue 14)
SHIPPED = (
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "camera",
    "brick",
    "grass",
    "gravel",
    "motorcycle",
    "china",
    "flower",
    "grace_hopper",
    "minduka",
)


def main(out: str, include_validation: bool = False, shipped: bool = False) -> None:
    os.makedirs(out, exist_ok=True)
    names = SHIPPED if shipped else TRAINING + (VALIDATION if include_validation else ())
    for name in names:
        iio.imwrite(os.path.join(out, f"{name}.png"), full_photo(name))
    print(f"wrote {len(names)} photos to {out}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a not in ("--all", "--shipped")]
    main(args[0] if args else "bundled_photos", "--all" in sys.argv[1:], "--shipped" in sys.argv[1:])
