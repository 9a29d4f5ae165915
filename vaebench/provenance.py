"""What produced a result: library versions, vaebench's git commit, the device.

Published scores have moved with library versions before (scikit-learn's tree and logistic
regression defaults changed DCI and BetaVAE numbers), so every run's metrics.json records these.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

import vaebench

PACKAGES = {"torch": "torch", "torchvision": "torchvision", "numpy": "numpy", "scipy": "scipy",
            "scikit-learn": "scikit-learn", "pytorch-fid": "pytorch-fid", "pandas": "pandas"}


@functools.lru_cache(maxsize=1)
def git_commit() -> dict:
    """{"commit": sha, "dirty": bool} of the checkout vaebench runs from, or {} outside git."""
    root = Path(vaebench.__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if sha.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return {"commit": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def provenance(device: torch.device) -> dict:
    """Versions of python and the numeric libraries, vaebench (+ git), and the device."""
    out = {"python": platform.python_version(), "vaebench": vaebench.__version__,
           **{name: _version(dist) for name, dist in PACKAGES.items()},
           "vaebench_git": git_commit(), "platform": platform.platform(),
           "device": str(device), "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        out["device_name"] = torch.cuda.get_device_name(device)
        out["cuda"] = torch.version.cuda
    else:
        out["device_name"] = platform.processor() or platform.machine()
    return out
