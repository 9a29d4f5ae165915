"""A small gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
Decoders") over a grid of discrete codes: the autoregressive prior vq_vae fits after training.

Vertical and horizontal stacks remove the blind spot: the vertical stack sees the rows above,
the horizontal stack the pixels to the left in the current row. The first layer (mask "A")
excludes the current position; later layers (mask "B") may see it through their own stack.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _gate(h: torch.Tensor) -> torch.Tensor:
    a, b = h.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    def __init__(self, channels: int, kernel: int, first: bool):
        super().__init__()
        self.k, self.first = kernel, first
        self.v = nn.Conv2d(channels, 2 * channels, (kernel // 2 + 1, kernel))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h = nn.Conv2d(channels, 2 * channels, (1, kernel // 2 + 1))
        self.h_out = nn.Conv2d(channels, channels, 1)

    def forward(self, v, h):
        k = self.k
        # Vertical: output row i sees input rows i - k//2 .. i (all columns within k//2).
        v_pre = self.v(F.pad(v, (k // 2, k // 2, k // 2, 0)))
        # Shifted down one row before feeding the horizontal stack, so it only sees rows above.
        v_shift = F.pad(v_pre, (0, 0, 1, 0))[:, :, :-1]
        # Horizontal: output column j sees columns j - k//2 .. j; the first layer shifts right
        # one more column so position (i, j) never sees itself.
        if self.first:
            h_in = F.pad(h, (k // 2 + 1, 0))[:, :, :, :-1]
        else:
            h_in = F.pad(h, (k // 2, 0))
        h_pre = self.h(h_in) + self.v_to_h(v_shift)
        h_new = self.h_out(_gate(h_pre))
        if not self.first:  # a residual from the input would leak the current code in layer 1
            h_new = h_new + h
        return _gate(v_pre), h_new


class GatedPixelCNN(nn.Module):
    """codes (B, H, W) int64 in [0, K) -> logits (B, K, H, W) of p(code_ij | codes before ij in
    raster order)."""

    def __init__(self, num_codes: int, channels: int = 64, layers: int = 5, kernel: int = 5):
        super().__init__()
        self.num_codes = num_codes
        self.embed = nn.Embedding(num_codes, channels)
        self.layers = nn.ModuleList(GatedLayer(channels, kernel if i else 7, first=(i == 0))
                                    for i in range(layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                                  nn.Conv2d(channels, num_codes, 1))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        v = h = self.embed(codes).permute(0, 3, 1, 2)
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)

    def nll(self, codes: torch.Tensor) -> torch.Tensor:
        """-log p(codes) per grid in nats: (B, H, W) -> (B,)."""
        return F.cross_entropy(self(codes), codes, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, n: int, grid: tuple[int, int], device, generator: torch.Generator | None = None):
        """n code grids (n, H, W), one position at a time in raster order."""
        codes = torch.zeros(n, *grid, dtype=torch.long, device=device)
        for i in range(grid[0]):
            for j in range(grid[1]):
                # Row i depends on rows <= i only, so the rows below need not be computed.
                probs = F.softmax(self(codes[:, : i + 1])[:, :, i, j].float(), dim=1).cpu()
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(device)
        return codes
