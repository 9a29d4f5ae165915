"""Encoder/decoder networks shared by every variant, chosen by image size.

64x64 (dSprites): the conv architecture of the disentanglement literature (Higgins et al. 2017;
Locatello et al. 2019, disentanglement_lib `conv_encoder` / `deconv_decoder`): four 4x4 stride-2
convs with 32, 32, 64, 64 channels, FC 256, then the latent; the decoder mirrors it.
28x28 (MNIST): two 4x4 stride-2 convs with 32, 64 channels and FC 256, mirrored.

`cond_dim` > 0 adds a conditioning vector (one-hot label for cvae) to the FC input of the encoder;
decoders take whatever vector they are given (latent, or latent + condition).
"""

from __future__ import annotations

import torch
from torch import nn

from vaebench.errors import VaebenchError

# (spatial size, conv channels) per supported image size.
_LAYOUTS = {64: (4, (32, 32, 64, 64)), 28: (7, (32, 64))}


def _layout(image_shape):
    size = image_shape[-1]
    if image_shape[-2] != size or size not in _LAYOUTS:
        raise VaebenchError(
            f"no encoder/decoder architecture for images of shape {tuple(image_shape)}; "
            f"supported: square images of side {sorted(_LAYOUTS)} (C, H, W)."
        )
    return _LAYOUTS[size]


class ConvEncoder(nn.Module):
    """x: (B, C, H, W) [+ cond: (B, cond_dim)] -> (B, out_dim)."""

    def __init__(self, image_shape, out_dim: int, cond_dim: int = 0, hidden: int = 256):
        super().__init__()
        spatial, channels = _layout(image_shape)
        layers, c_in = [], image_shape[0]
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
            c_in = c_out
        self.conv = nn.Sequential(*layers, nn.Flatten())
        self.fc = nn.Sequential(
            nn.Linear(c_in * spatial * spatial + cond_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim)
        )

    def forward(self, x, cond=None):
        h = self.conv(x)
        if cond is not None:
            h = torch.cat([h, cond], dim=1)
        return self.fc(h)


class ConvDecoder(nn.Module):
    """z: (B, in_dim) -> Bernoulli logits (B, C, H, W)."""

    def __init__(self, image_shape, in_dim: int, hidden: int = 256):
        super().__init__()
        spatial, channels = _layout(image_shape)
        channels = channels[::-1]
        self.start = (channels[0], spatial, spatial)
        self.fc = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, channels[0] * spatial * spatial), nn.ReLU()
        )
        layers = []
        for c_in, c_out in zip(channels, channels[1:] + (image_shape[0],)):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        self.deconv = nn.Sequential(*layers[:-1])  # no ReLU on the logits

    def forward(self, z):
        return self.deconv(self.fc(z).view(-1, *self.start))
