"""glibc malloc settings for training on CPU: freed memory stays in the process for reuse.

A vae step at batch 64 on 64x64 images allocates and frees a few dozen activations and
gradients of 8 MB (64 x 32 x 32 x 32 float32) every step. With glibc's defaults each comes
back to the kernel when freed (mmap'd, or trimmed from the top of the heap) and is page-faulted
in again the next step: the whole step takes 1.29x as long (1.26-1.37) on the 2-core box
(benchmarks/train_throughput.py, "allocator"). A fixed mmap threshold of 32 MB (glibc's largest) and a
trim threshold of 1 GB keep those blocks in the heap; the process's peak memory is the same,
it is only not handed back until the process ends. This is what running under
MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 does (or under jemalloc or
tcmalloc, as PyTorch's CPU tuning guides advise), done from inside the process so every run
gets it without a wrapper. A user's own MALLOC_* settings are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 2**30
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


# once per process: find_library runs ldconfig (about 1 ms), and a pack builds a Trainer per
# member at every checkpoint
@functools.cache
def _glibc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # only glibc has it (and mallopt's parameter numbers)
        return libc
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Set glibc's thresholds for this process (idempotent). False where there is no glibc
    (macOS, musl) or the user set MALLOC_* variables of their own; nothing changes then."""
    if any(v in os.environ for v in _USER_SETTINGS):
        return False
    libc = _glibc()
    if libc is None:
        return False
    done = [libc.mallopt(param, value) for param, value in
            ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD))]
    return all(done)
