"""keep_freed_memory sets glibc's malloc thresholds, and leaves a user's own settings alone."""

import platform
import subprocess
import sys

import pytest

from vaebench.runner.allocator import keep_freed_memory

PROBE = """
import ctypes, resource, sys
from vaebench.runner.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):  # a step: four 8 MB activations alive at once, touched, then freed
    blocks = [libc.malloc(8 << 20) for _ in range(4)]
    for p in blocks:
        ctypes.memset(p, 1, 8 << 20)
    for p in blocks:
        libc.free(p)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
"""


def _page_faults(mode):
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's")
def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    # glibc's default hands the freed blocks back to the kernel and faults them in again every
    # step (2048 page faults a block); kept, they are faulted in once and reused
    default, kept = _page_faults("default"), _page_faults("keep")
    assert default > 10 * 4 * 2048
    assert kept < 2 * 4 * 2048


def test_a_users_own_malloc_settings_are_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert keep_freed_memory() is False
