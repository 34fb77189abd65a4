"""Keep freed memory for reuse: PyTorch on CPU frees and allocates the same blocks every step.

A training step or a forward pass allocates its activations and gradients afresh, frees them,
and asks for the same sizes again on the next step. glibc's allocator serves blocks above its
mmap threshold (at most 32 MB, adjusted as it goes) with fresh mappings and returns freed heap
above its trim threshold to the system, so every step pays for the same pages again in page
faults, which cost most on a virtual machine (measured by ``tools/bench.py``'s
``allocator_*``). Raising both thresholds keeps freed blocks in the heap for the next step; the
process's peak stays close to what its largest step needs.
"""

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt's parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks below this size come from the heap: a 1024 px chip's activations (64 MB at most), not
# the 205 MB strips of a 40,000 px scene (their pages would stay in the process).
MMAP_THRESHOLD_BYTES = 128 << 20
# Free memory at the top of the heap the process keeps instead of returning it.
TRIM_THRESHOLD_BYTES = 512 << 20

_kept = False


def keep_freed_memory() -> None:
    """Raise glibc's mmap and trim thresholds, once per process (no-op without glibc)."""
    global _kept
    if _kept:
        return
    _kept = True
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and libc.mallopt(
            _M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES
        )
    except (OSError, AttributeError, TypeError):  # no C library by that name, or not glibc
        ok = False
    if not ok:
        log.debug("mallopt unavailable: freed memory goes back to the system")
