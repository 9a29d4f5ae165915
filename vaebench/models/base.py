"""The interface every variant implements, and the Gaussian VAE most variants build on.

A variant is one file in this folder: a typed config (pydantic dataclass with the paper's
defaults, citation in the docstring) and an `nn.Module` subclass of `LatentVariableModel`,
registered with `@register_model`. The trainer and the metrics only use the methods below.

Trainer hooks (the only places a variant changes how it is trained):
- `make_optimizers` / `training_step`: a variant with a second optimizer (factor_vae) overrides
  these; the default is one Adam over all parameters and one gradient step on `loss`.
- `after_training`: a post-training stage (vq_vae fits its prior here). Returns a dict that is
  recorded in the run's metrics.json under "after_training".
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from torch import nn

from vaebench.models.architectures import ConvDecoder, ConvEncoder

# extra="forbid": a misspelt hyperparameter in a suite is an error, not silently ignored.
config_dataclass = dataclass(config=ConfigDict(extra="forbid"))

LOG_2PI = math.log(2 * math.pi)


@config_dataclass
class ModelConfig:
    latent_dim: int = Field(10, ge=1, strict=True)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image negative log-likelihood in nats: logits, x (B, C, H, W) -> (B,)."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per latent dim: (B, D) -> (B, D), in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_log_density(z, mu, logvar):
    """log N(z; mu, exp(logvar)) elementwise (broadcasting), in nats."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


class LatentVariableModel(nn.Module):
    """Interface used by the trainer and the metrics. Shapes: x (B, C, H, W) in [0, 1], y (B,)."""

    Config: ClassVar[type] = ModelConfig
    conditional: ClassVar[bool] = False  # True: encode/decode/sample need labels y

    def __init__(self, config, image_shape, num_classes: int):
        super().__init__()
        self.config = config
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes

    def loss(self, x, y=None, step: int = 0) -> dict[str, torch.Tensor]:
        """Batch-mean loss terms; key "loss" is what is minimised, the rest are logged."""
        raise NotImplementedError

    def sample(self, n: int, y=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """n prior samples as images (n, C, H, W) in [0, 1] (Bernoulli means)."""
        raise NotImplementedError

    def reconstruct(self, x, y=None) -> torch.Tensor:
        """Decoded posterior mean, (B, C, H, W) in [0, 1]."""
        raise NotImplementedError

    def representation(self, x, y=None) -> torch.Tensor:
        """(B, D) codes the disentanglement metrics score: the posterior mean."""
        raise NotImplementedError

    def elbo_terms(self, x, y=None) -> dict[str, torch.Tensor]:
        """Per-image terms of the model's bound in nats, each (B,): "recon" (-E log p(x|z)),
        "kl" and "elbo" (= -(recon + kl), or the variant's own bound)."""
        raise NotImplementedError

    # --- trainer hooks -------------------------------------------------------------------
    def make_optimizers(self, lr: float, betas=(0.9, 0.999)) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.parameters(), lr=lr, betas=betas)]

    def training_step(self, x, y, step: int, optimizers) -> dict[str, torch.Tensor]:
        """One optimisation step; returns the batch's loss terms (detached by the trainer)."""
        (opt,) = optimizers
        terms = self.loss(x, y, step)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        return terms

    def after_training(self, dataset, device, seed: int) -> dict:
        return {}

    def hyperparameters(self) -> dict:
        return asdict(self.config)


class GaussianVAE(LatentVariableModel):
    """Diagonal-Gaussian posterior, standard-normal prior, Bernoulli decoder.

    Variants that only change the objective subclass this and override `loss`.
    """

    def __init__(self, config, image_shape, num_classes):
        super().__init__(config, image_shape, num_classes)
        cond = num_classes if self.conditional else 0
        self.encoder = ConvEncoder(image_shape, 2 * config.latent_dim, cond_dim=cond)
        self.decoder = ConvDecoder(image_shape, config.latent_dim + cond)

    def _cond(self, y):
        if not self.conditional:
            return None
        if y is None:
            raise ValueError(f"{type(self).__name__} is conditional: pass labels y")
        return F.one_hot(y, self.num_classes).float()

    def encode(self, x, y=None):
        """Posterior parameters (mu, logvar), each (B, D)."""
        mu, logvar = self.encoder(x, self._cond(y)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z, y=None):
        """Bernoulli logits (B, C, H, W)."""
        c = self._cond(y)
        return self.decoder(z if c is None else torch.cat([z, c], dim=1))

    def forward_terms(self, x, y=None):
        """One reparameterised pass: z (B, D), per-image recon (B,), per-dim KL (B, D)."""
        mu, logvar = self.encode(x, y)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = bernoulli_nll(self.decode(z, y), x)
        return {"mu": mu, "logvar": logvar, "z": z, "recon": recon, "kl_dims": gaussian_kl(mu, logvar)}

    def loss(self, x, y=None, step=0):
        t = self.forward_terms(x, y)
        recon, kl = t["recon"].mean(), t["kl_dims"].sum(1).mean()
        return {"loss": recon + kl, "recon": recon, "kl": kl}

    def elbo_terms(self, x, y=None):
        t = self.forward_terms(x, y)
        kl = t["kl_dims"].sum(1)
        return {"recon": t["recon"], "kl": kl, "elbo": -(t["recon"] + kl)}

    def representation(self, x, y=None):
        return self.encode(x, y)[0]

    def reconstruct(self, x, y=None):
        return torch.sigmoid(self.decode(self.encode(x, y)[0], y))

    def sample(self, n, y=None, generator=None):
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator, device="cpu").to(device)
        if self.conditional and y is None:
            y = torch.randint(0, self.num_classes, (n,), generator=generator).to(device)
        return torch.sigmoid(self.decode(z, y))
