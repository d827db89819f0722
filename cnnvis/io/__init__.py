"""Files in and out: images, videos, feature arrays, manifests, atomic writes. Called by the CLI;
the library itself never writes."""

from cnnvis.io.images import hwc_to_bchw, read_image, save_image, to_uint8

__all__ = ["hwc_to_bchw", "read_image", "save_image", "to_uint8"]
