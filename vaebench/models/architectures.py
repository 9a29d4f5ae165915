"""Encoder/decoder networks shared by every variant, chosen by image size.

64x64 (dSprites): disentanglement_lib's `conv_encoder` / `deconv_decoder` (Locatello et al. 2019,
after Higgins et al. 2017 Table 1 row 3), layer for layer:
- encoder: conv 32 4x4/2, conv 32 4x4/2, conv 64 2x2/2, conv 64 2x2/2 (ReLU each; 64 -> 32 -> 16
  -> 8 -> 4), FC 256 (ReLU), then the latent heads: 309,204 parameters at latent 10, as the reference.
- decoder: FC 256, FC 1024 viewed as 64x4x4 (ReLU each), then 4x4 stride-2 transposed convs with
  64, 32, 32, C channels (ReLU on all but the last, which gives the logits; 4 -> 8 -> 16 -> 32 -> 64).
TF's padding="same" is reproduced exactly, not approximated: with stride 2 and an even input the
total padding TF adds is k - 2, so 4x4 kernels pad 1 on each side (symmetric, PyTorch padding=1) and
2x2 kernels pad nothing (padding=0); TF's asymmetric case (an odd total) never arises at these
sizes. The transposed convs' "same" (output = 2 x input) is PyTorch's padding=1 with 4x4 kernels.
The reference is NHWC, so its flatten / reshape orders the FC units differently; that is a fixed
permutation of the same parameters (same count, same initial distribution). The transposed convs
are `Deconv4x4`, nn.ConvTranspose2d with a faster path on CPU in channels_last (same parameters,
same sums in another order).
28x28 (MNIST): two 4x4 stride-2 convs with 32, 64 channels and FC 256, mirrored.

Initialisation everywhere is TF's layer default, as in the reference: glorot-uniform weights
(U(-a, a), a = sqrt(6 / (fan_in + fan_out)); for convs the fans include the kernel area) and zero
biases. The encoder's output layer is initialised as `heads` separate dense layers (the
reference's two, `means` and `log_var`, each 256 -> latent), so each head has the reference's bound.

`cond_dim` > 0 adds a conditioning vector (one-hot label for cvae) to the FC input of the encoder;
decoders take whatever vector they are given (latent, or latent + condition).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vaebench.errors import VaebenchError

# (spatial size at the FC layer, conv channels) per supported image size.
_LAYOUTS = {64: (4, (32, 32, 64, 64)), 28: (7, (32, 64))}
# Encoder kernel size per conv (stride 2 each); padding is k // 2 - 1 (TF "same" at these sizes).
_ENCODER_KERNELS = {64: (4, 4, 2, 2), 28: (4, 4)}


def _layout(image_shape):
    size = image_shape[-1]
    if image_shape[-2] != size or size not in _LAYOUTS:
        raise VaebenchError(
            f"no encoder/decoder architecture for images of shape {tuple(image_shape)}; "
            f"supported: square images of side {sorted(_LAYOUTS)} (C, H, W)."
        )
    return _LAYOUTS[size]


def glorot_init_(module: nn.Module, heads: int = 1) -> None:
    """TF's default layer initialisation in place: glorot-uniform weights, zero biases, for every
    Linear / Conv2d / ConvTranspose2d in `module`. heads > 1: a Linear's output rows are split into
    `heads` equal blocks, each initialised as its own layer (fan_out = rows / heads)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            n = heads if isinstance(m, nn.Linear) else 1
            for block in m.weight.data.chunk(n, dim=0):
                nn.init.xavier_uniform_(block)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ConvEncoder(nn.Module):
    """x: (B, C, H, W) [+ cond: (B, cond_dim)] -> (B, out_dim).

    heads: how many equal output blocks out_dim holds (2 for a Gaussian's mu and logvar); only the
    output layer's initialisation depends on it."""

    def __init__(self, image_shape, out_dim: int, cond_dim: int = 0, hidden: int = 256, heads: int = 1):
        super().__init__()
        spatial, channels = _layout(image_shape)
        if out_dim % heads:
            raise ValueError(f"out_dim {out_dim} does not split into {heads} heads")
        layers, c_in = [], image_shape[0]
        for c_out, k in zip(channels, _ENCODER_KERNELS[image_shape[-1]]):
            layers += [nn.Conv2d(c_in, c_out, k, stride=2, padding=k // 2 - 1), nn.ReLU()]
            c_in = c_out
        self.conv = nn.Sequential(*layers, nn.Flatten())
        self.fc = nn.Sequential(
            nn.Linear(c_in * spatial * spatial + cond_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim)
        )
        glorot_init_(self)
        glorot_init_(self.fc[2], heads=heads)  # the output layer: `heads` dense layers side by side

    def forward(self, x, cond=None):
        h = self.conv(x)
        if cond is not None:
            h = torch.cat([h, cond], dim=1)
        return self.fc(h)


def _one_channel_deconv(x, weight, bias):
    """conv_transpose2d(x, weight, bias, stride=2, padding=1) to one channel, 4x4 kernels, x
    channels_last: one matmul, then the overlap-add of its 16 taps (col2im)."""
    n, c_in, h, w = x.shape
    # x channels_last is (B, H, W, C_in) in memory, so this is a view; taps[..., ky, kx]
    taps = x.permute(0, 2, 3, 1).reshape(-1, c_in) @ weight.reshape(c_in, 16)
    # output row 2i - 1 + ky = 2 (i + qy) + sy - 1 for ky = 2 qy + sy: an output padded by one
    # pixel, viewed as (row pair, row parity), receives tap (qy, sy) at row pair i + qy
    taps = taps.view(n, h, w, 2, 2, 2, 2)  # (qy, sy, qx, sx)
    out = x.new_zeros(n, h + 1, 2, w + 1, 2)
    for qy in (0, 1):
        for qx in (0, 1):
            out[:, qy:qy + h, :, qx:qx + w, :] += taps[:, :, :, qy, :, qx, :].permute(0, 1, 3, 2, 4)
    out = out.view(n, 1, 2 * h + 2, 2 * w + 2)[:, :, 1:-1, 1:-1]
    return out + bias.view(1, 1, 1, 1) if bias is not None else out.contiguous()


class _Deconv4x4(torch.autograd.Function):
    """conv_transpose2d(x, weight, bias, stride=2, padding=1) with 4x4 kernels on CPU tensors
    in channels_last, with nn.ConvTranspose2d's math in two faster pieces (timed in
    benchmarks/train_throughput.py): the bias gradient is grad.sum((0, 2, 3)), which oneDNN's
    transposed-convolution backward computes about 13x slower when asked for it (3 ms of a
    step for the 32x32 layer at batch 64); and to one channel the forward is a matmul and
    col2im (oneDNN ran it at about 15 GFLOP/s, 4.5 ms against 1.4 ms)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        if weight.shape[1] == 1:
            return _one_channel_deconv(x, weight, bias)
        return F.conv_transpose2d(x, weight, bias, stride=2, padding=1)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        gx, gw, _ = torch.ops.aten.convolution_backward(
            grad, x, weight, None, [2, 2], [1, 1], [1, 1], True, [0, 0], 1, [need_x, need_w, False])
        gb = grad.sum((0, 2, 3)) if ctx.has_bias and need_b else None
        return gx, gw, gb


class Deconv4x4(nn.ConvTranspose2d):
    """nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1): the same parameters, the same
    sums within float rounding (tests/test_models_architectures.py), faster on CPU in
    channels_last (`_Deconv4x4`). Elsewhere (a GPU, NCHW, inside a pack's vmap) it is
    nn.ConvTranspose2d itself."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 4, stride=2, padding=1)

    def forward(self, x):
        if x.device.type == "cpu" and not torch._C._are_functorch_transforms_active() \
                and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            return _Deconv4x4.apply(x, self.weight, self.bias)
        return super().forward(x)


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
            layers += [Deconv4x4(c_in, c_out), nn.ReLU()]
        self.deconv = nn.Sequential(*layers[:-1])  # no ReLU on the logits
        glorot_init_(self)

    def forward(self, z):
        return self.deconv(self.fc(z).view(-1, *self.start))
