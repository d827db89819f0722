"""Process-level memory settings for the command line (never applied by the library itself)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def return_freed_memory_to_os(threshold_bytes: int = 1 << 20) -> bool:
    """Ask glibc to serve allocations above ``threshold_bytes`` with mmap, for good.

    glibc raises its mmap threshold each time a large block is freed, after which strip- and
    tile-sized buffers (10-60 MB) come from the heap and freed ones stay resident. Pinning the
    threshold returns them to the OS at once: a 4096x4096 dream peaks at 1.5 GB instead of
    1.7 GB (bench/dream_memory.py). Returns False where glibc is absent (macOS, Windows).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    except (OSError, AttributeError):
        return False
