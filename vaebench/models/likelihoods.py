"""Decoder likelihoods p(x | z): the decoder's output `out` (B, C, H, W) -> nats per image.

- bernoulli: `out` are logits; -log p is the binary cross-entropy summed over pixels. A proper
  probability only of binary images (dSprites); on grey or colour images (as disentanglement_lib
  uses it on Shapes3D, MPI3D, Cars3D) it is a training loss, not a bound: `is_bound` says which.
- gaussian: mean sigmoid(out), one standard deviation sigma shared by every pixel (learned as a
  log-scale parameter, initialised at 0.1, or fixed by `scale`), on uniformly dequantised 8-bit
  data y = (255 x + u) / 256, u ~ U[0, 1)^D (x = k / 255 as the datasets give it).
- logistic: the discretised logistic of PixelCNN++ (Salimans et al. 2017) over the 256 levels
  k / 255, mean sigmoid(out), one shared scale (learned, initialised at 0.1, or fixed); the edge
  levels take the tails. A probability of the 8-bit image itself, no dequantisation.

Units. `nll` is always the negative log-probability of the discrete 8-bit (or binary) image in
nats, so an ELBO built from it bounds log P(image) and converts to bits per dimension as
bpd = -elbo / (D log 2), D = C * H * W. For the Gaussian this folds in the Jacobian of
dequantisation: with density p on [0, 1)^D, log P(k) >= E_u log p((k + u) / 256) + log(256^-D), so
nll = -log p(y) + D log 256 and, from a continuous log-density ll, bpd = -(ll - D log 256) /
(D log 2) (`discrete_nll_from_density`). All three report images as sigmoid(out) in [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG_256 = math.log(256.0)
NAMES = ("bernoulli", "gaussian", "logistic")


def discrete_nll_from_density(log_density: torch.Tensor, num_dims: int) -> torch.Tensor:
    """-log P of 8-bit images from a log-density of their dequantised copy on [0, 1)^D (nats):
    the bin volume 256^-D enters as + D log 256."""
    return -log_density + num_dims * LOG_256


def bits_per_dim(nats: float | torch.Tensor, num_dims: int):
    """Nats per image of a discrete image -> bits per dimension."""
    return nats / (num_dims * math.log(2.0))


def on_8bit_grid(x: torch.Tensor) -> bool:
    """True when every value is k / 255 for an integer 0 <= k <= 255 (what the datasets give)."""
    k = x * 255.0
    return bool(((k - k.round()).abs() < 1e-3).all() and (x >= 0).all() and (x <= 1).all())


class Likelihood(nn.Module):
    name = ""

    def nll(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """out, x (B, C, H, W), x in [0, 1] -> (B,) nats."""
        raise NotImplementedError

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out)

    def is_bound(self, x: torch.Tensor) -> bool:
        """Whether exp(-nll) is a probability of images like x (so the ELBO is a bound)."""
        return on_8bit_grid(x)


class Bernoulli(Likelihood):
    name = "bernoulli"

    def nll(self, out, x):
        return F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)

    def is_bound(self, x):
        return bool(((x == 0) | (x == 1)).all())


class _Scaled(Likelihood):
    """A shared scale: learned (log-parameter, init 0.1) when `scale` is None, else fixed."""

    def __init__(self, scale: float | None = None):
        super().__init__()
        if scale is None:
            self.log_scale = nn.Parameter(torch.tensor(math.log(0.1)))
        else:
            if scale <= 0:
                raise ValueError(f"likelihood_scale must be positive; got {scale}")
            self.register_buffer("log_scale", torch.tensor(math.log(scale)))


class Gaussian(_Scaled):
    name = "gaussian"

    def nll(self, out, x):
        y = (torch.round(x * 255.0) + torch.rand_like(x)) / 256.0
        log_sigma = self.log_scale
        log_density = -0.5 * math.log(2 * math.pi) - log_sigma \
            - 0.5 * ((y - self.mean(out)) * torch.exp(-log_sigma)) ** 2
        return discrete_nll_from_density(log_density.flatten(1).sum(1), x[0].numel())


class DiscretisedLogistic(_Scaled):
    name = "logistic"

    def nll(self, out, x):
        x = torch.round(x * 255.0) / 255.0
        centred, inv_s = x - self.mean(out), torch.exp(-self.log_scale)
        plus, minus = inv_s * (centred + 0.5 / 255.0), inv_s * (centred - 0.5 / 255.0)
        log_cdf_plus = F.logsigmoid(plus)  # the k = 0 bin: P = sigmoid(plus)
        log_one_minus_cdf_minus = F.logsigmoid(-minus)  # k = 255: P = 1 - sigmoid(minus)
        # inner bins: sigmoid(b) - sigmoid(a) = sigmoid(b) sigmoid(-a) (1 - e^(a - b)), in logs so
        # the far tails keep their precision
        log_inner = F.logsigmoid(plus) + F.logsigmoid(-minus) + torch.log(-torch.expm1(minus - plus))
        log_p = torch.where(x < 0.5 / 255.0, log_cdf_plus,
                            torch.where(x > 1 - 0.5 / 255.0, log_one_minus_cdf_minus, log_inner))
        return -log_p.flatten(1).sum(1)


def make_likelihood(name: str, scale: float | None = None) -> Likelihood:
    if name == "bernoulli":
        return Bernoulli()
    if name == "gaussian":
        return Gaussian(scale)
    if name == "logistic":
        return DiscretisedLogistic(scale)
    raise ValueError(f"unknown likelihood {name!r}; known: {', '.join(NAMES)}")
