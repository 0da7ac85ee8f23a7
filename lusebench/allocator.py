"""The C allocator's settings for processes that render or score one large item after another."""

from __future__ import annotations

import ctypes
import sys

# glibc's mallopt parameters (malloc.h) and the values retain_freed_memory sets: the largest mmap
# threshold glibc accepts on 64-bit, and room to keep a few mixtures' worth of freed memory.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 32 << 20
_TRIM_THRESHOLD_BYTES = 64 << 20


def retain_freed_memory() -> None:
    """Keep memory freed by one item for the next one instead of returning it to the OS.

    Rendering or scoring a 10 s mixture allocates and frees some 20 MB of signals and spectra.
    With glibc's default thresholds the freed memory goes back to the OS after each item and the
    next one page-faults it in again: ~2,900 faults per dynamic-mixing item (a third of its time),
    and 29 of 77 CPU-seconds in system time when scoring 1,000 items. Call it once in each
    rendering or scoring process: it is process-wide, keeps at most 64 MB spare, changes no
    result, and does nothing where the C library is not glibc.
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None) if sys.platform.startswith("linux") else None
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
