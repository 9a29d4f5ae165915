"""Inception FID features: pytorch-fid's InceptionV3, pool3 (2048-d), with pytorch-fid's weights.

The weights are pytorch-fid's port of the TensorFlow FID Inception, the file FID_WEIGHTS_FILE.
They are looked for where pytorch-fid looks (the torch hub cache, $TORCH_HOME/hub/checkpoints/,
by default ~/.cache/torch/hub/checkpoints/), unless a file is given (`--fid-weights`, or the
metric's `weights` parameter). When they are in neither place, one download is tried with a short
timeout; if that fails (no network), a VaebenchError says which file, where to put it and where
to get it. Grey images are replicated to 3 channels; pytorch-fid resizes to 299x299 and scales to
[-1, 1] itself, so features match pytorch-fid's own CLI on the same PNG files.
"""

from __future__ import annotations

import hashlib
import pickle
import urllib.request
from pathlib import Path
from unittest import mock

import pytorch_fid.inception
import torch
from pytorch_fid.inception import FID_WEIGHTS_URL, InceptionV3

from vaebench.errors import VaebenchError
from vaebench.metrics.fid.frechet import FeatureExtractor
from vaebench.files import atomic_write_bytes

FID_WEIGHTS_FILE = FID_WEIGHTS_URL.rsplit("/", 1)[1]  # pt_inception-2015-12-05-6726825d.pth
SHA256_PREFIX = "6726825d"  # torch hub's convention: the file name carries its hash's prefix
DOWNLOAD_TIMEOUT_S = 20  # without network, fail in seconds instead of hanging


def hub_weights_path() -> Path:
    """Where pytorch-fid (torch.hub.load_state_dict_from_url) keeps the weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def download_weights(dest: Path, url: str = FID_WEIGHTS_URL, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Fetch the weights file to dest (atomically), checking its hash."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if not digest.startswith(SHA256_PREFIX):
        raise ValueError(f"the file downloaded from {url} has sha256 {digest[:16]}..., expected "
                         f"{SHA256_PREFIX}...")
    atomic_write_bytes(dest, data)


def resolve_weights(weights: str | Path | None = None) -> Path:
    """The Inception weights file to use: `weights` if given, else the torch hub cache (downloading
    it there if possible). Raises VaebenchError with instructions when there is none."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise VaebenchError(
                f"Inception weights file {path} (given by --fid-weights or the fid metric's "
                f"`weights` parameter) does not exist. It should be pytorch-fid's "
                f"{FID_WEIGHTS_FILE}, from {FID_WEIGHTS_URL}")
        return path
    path = hub_weights_path()
    if path.is_file():
        return path
    try:
        download_weights(path)
    except (OSError, ValueError) as e:  # URLError and timeouts are OSErrors
        raise VaebenchError(
            f"Inception FID needs pytorch-fid's weights file {FID_WEIGHTS_FILE}; it is not in "
            f"{path.parent} and could not be downloaded ({type(e).__name__}: {e}). On a machine "
            f"with internet access get it from {FID_WEIGHTS_URL} and put it at {path} (torch hub's "
            f"cache, where pytorch-fid looks; $TORCH_HOME moves it), or pass --fid-weights PATH "
            f"(suite: params: {{extractor: inception, weights: PATH}}). The domain extractor "
            f"(extractor: domain, the default) needs no download.") from None
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


class InceptionExtractor(FeatureExtractor):
    """pytorch-fid's InceptionV3 pool3 features: images (B, 1 or 3, H, W) in [0, 1] -> (B, 2048)."""

    name = "inception"
    dim = 2048

    def __init__(self, weights_path: Path):
        super().__init__()
        weights_path = Path(weights_path)
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
            # pytorch-fid builds the network and fetches its weights in one call; hand it ours.
            with mock.patch.object(pytorch_fid.inception, "load_state_dict_from_url",
                                   lambda *args, **kwargs: state):
                self.net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[self.dim]],
                                       resize_input=True, normalize_input=True)
        except (RuntimeError, OSError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as e:
            raise VaebenchError(f"{weights_path} is not pytorch-fid's Inception weights file "
                                f"{FID_WEIGHTS_FILE} ({type(e).__name__}: {str(e)[:300]}); get "
                                f"it from {FID_WEIGHTS_URL}") from None
        self.key = file_sha256(weights_path)
        self.info = {"extractor": "inception", "features": "pytorch-fid InceptionV3 pool3 (2048-d)",
                     "weights": str(weights_path), "weights_sha256": self.key}

    def forward(self, x):
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net(x)[0].flatten(1)
