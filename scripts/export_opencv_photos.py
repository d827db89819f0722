"""Write the validation photos taken from OpenCV's sample data (bench/data/photos/).

    apt-get download opencv-doc && dpkg -x opencv-doc_*.deb opencv-doc
    python scripts/export_opencv_photos.py opencv-doc/usr/share/doc/opencv-doc/examples/data

Debian's ``opencv-doc`` package (4.6.0, Apache-2.0 AND BSD-3-Clause, bench/data/photos/README.md)
ships OpenCV's ``samples/data``. Ten of its colour photos of natural scenes and objects widen
the validation set of bench/photos.py (issue 25): each is centre-cropped to a square and
area-resized to ``--side`` pixels, then written as a JPEG, so the repository holds about 0.3 MB
and no bench needs the package. They were chosen for their content (no drawing, no calibration
board, no text, no photo of a person) before any inversion ran on them, and nothing is tuned on
them: they are validation photos only.

Nine more (``TUNING_PHOTOS``) widen the *tuning* set (issue 25's deep-layer defaults were chosen on four
photos, and a rule chosen there did not hold on the fourteen validation photos). They are the
sample data's remaining colour photos of scenes and objects, chosen by content before any inversion ran
on them: no drawing, no grey photo, no person, and no second view of a validation photo (aloeR,
leuvenB). Nothing is reported on them, and the demo generator never trained on them.
"""

from __future__ import annotations

import argparse
import os

import cv2

# file in samples/data -> name in bench/photos.py
PHOTOS = {
    "aloeL.jpg": "aloe",
    "apple.jpg": "apple",
    "baboon.jpg": "baboon",
    "butterfly.jpg": "butterfly",
    "building.jpg": "building",
    "fruits.jpg": "fruits",
    "leuvenA.jpg": "leuven",
    "orange.jpg": "orange",
    "squirrel_cls.jpg": "squirrel",
    "smarties.png": "smarties",
}
TUNING_PHOTOS = {
    "aero1.jpg": "aero",
    "board.jpg": "board",
    "chicky_512.png": "chicky",
    "ela_original.jpg": "notebook",
    "graf1.png": "graffiti",
    "home.jpg": "home",
    "left.jpg": "books",
    "rubberwhale1.png": "toys",
    "stuff.jpg": "stuff",
}
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "data", "photos")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("samples", help="OpenCV's samples/data folder")
    ap.add_argument("--side", type=int, default=320)
    ap.add_argument("--quality", type=int, default=92)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    for src, name in {**PHOTOS, **TUNING_PHOTOS}.items():
        a = cv2.imread(os.path.join(args.samples, src), cv2.IMREAD_COLOR)
        h, w = a.shape[:2]
        s = min(h, w)
        a = a[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        a = cv2.resize(a, (args.side, args.side), interpolation=cv2.INTER_AREA)
        cv2.imwrite(os.path.join(OUT, f"{name}.jpg"), a, [cv2.IMWRITE_JPEG_QUALITY, args.quality])


if __name__ == "__main__":
    main()
