"""Write more training photos for a generator prior: the photographs among KDE Plasma's wallpapers.

    apt-get download plasma-workspace-wallpapers && dpkg -x plasma-workspace-wallpapers_*.deb plasma
    python scripts/export_bundled_photos.py photos                 # the demo generator's twelve
    python scripts/export_wallpaper_photos.py plasma/usr/share/wallpapers photos

The demo generator saw twelve photos (cnnvis/data/README.md), and at ``conv_head`` an inversion through it
loses the contrast sign of a third of the tuning photos (bench/RESULTS.md, issue 25). Debian's
``plasma-workspace-wallpapers`` (GPL-2+, KDE Visual Design Group) holds eleven photographs of scenes and
objects beside its drawings. They are chosen here by content (a photograph, not a rendering or a drawing)
before any generator trained on them. None is a photo of bench/photos.py, so the split holds: they are
training photos, never tuning or validation ones. Each wallpaper's largest file is area-resized to
``--side`` pixels on its short side and written as a PNG; nothing of them is committed.
"""

from __future__ import annotations

import argparse
import glob
import os

import cv2

PHOTOS = (
    "BytheWater",
    "ColdRipple",
    "ColorfulCups",
    "DarkestHour",
    "EveningGlow",
    "FallenLeaf",
    "Grey",
    "Kite",
    "OneStandsOut",
    "Path",
    "summer_1am",
)


def largest_image(folder: str) -> str:
    """The wallpaper's largest file (its other sizes are links to it or smaller copies)."""
    files = [f for f in glob.glob(os.path.join(folder, "contents", "images", "*")) if os.path.getsize(f) > 0]
    if not files:
        raise SystemExit(f"no image under {folder}; pass the package's usr/share/wallpapers folder")
    return max(files, key=os.path.getsize)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wallpapers", help="the package's usr/share/wallpapers folder")
    ap.add_argument("out", help="folder to write the photos into (the generator's --images)")
    ap.add_argument("--side", type=int, default=640, help="short side in pixels")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in PHOTOS:
        a = cv2.imread(largest_image(os.path.join(args.wallpapers, name)), cv2.IMREAD_COLOR)
        scale = args.side / min(a.shape[:2])
        size = (round(a.shape[1] * scale), round(a.shape[0] * scale))
        a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(os.path.join(args.out, f"plasma_{name.lower()}.png"), a)


if __name__ == "__main__":
    main()
