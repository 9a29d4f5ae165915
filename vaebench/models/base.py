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
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from torch import nn

from vaebench.models.architectures import ConvDecoder, ConvEncoder
from vaebench.models.likelihoods import make_likelihood

# extra="forbid": a misspelt hyperparameter in a suite is an error, not silently ignored.
config_dataclass = dataclass(config=ConfigDict(extra="forbid"))

LOG_2PI = math.log(2 * math.pi)


@config_dataclass
class ModelConfig:
    latent_dim: int = Field(10, ge=1, strict=True)
    # decoder p(x|z) (likelihoods.py): bernoulli (binary data; not a bound on grey/colour),
    # gaussian (dequantised 8-bit) or logistic (discretised); scale None = learned
    likelihood: Literal["bernoulli", "gaussian", "logistic"] = "bernoulli"
    likelihood_scale: float | None = None


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image negative log-likelihood in nats: logits, x (B, C, H, W) -> (B,)."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per latent dim: (B, D) -> (B, D), in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_log_density(z, mu, logvar):
    """log N(z; mu, exp(logvar)) elementwise (broadcasting), in nats."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def adam(params, lr: float, betas=(0.9, 0.999)) -> torch.optim.Adam:
    """The trainers' Adam: the fused kernel (one pass over all parameters, CPU and CUDA), which
    gives the per-tensor loop's numbers within float rounding (tests/test_train_speed.py)."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)


class LatentVariableModel(nn.Module):
    """Interface used by the trainer and the metrics. Shapes: x (B, C, H, W) in [0, 1], y (B,)."""

    Config: ClassVar[type] = ModelConfig
    conditional: ClassVar[bool] = False  # True: encode/decode/sample need labels y
    # Hyperparameters that only `loss` reads, as plain numbers (weights, targets): runs that differ
    # in them can train as one pack, each member's value handed to the loss as a tensor
    # (vaebench/runner/pack.py). A value read in __init__ or in Python control flow must not be
    # listed; tests/test_pack.py checks every listed one against separate training.
    loss_scalars: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config, image_shape, num_classes: int, train_size: int | None = None):
        """image_shape (C, H, W), num_classes and train_size (images in the training split) are
        facts about the dataset, handed over by the runner: a model keeps no dataset default."""
        super().__init__()
        self.config = config
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.train_size = train_size

    def loss(self, x, y=None, step: int = 0) -> dict[str, torch.Tensor]:
        """Batch-mean loss terms; key "loss" is what is minimised, the rest are logged."""
        raise NotImplementedError

    def sample(self, n: int, y=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """n prior samples as images (n, C, H, W) in [0, 1] (Bernoulli means)."""
        raise NotImplementedError

    def reconstruct(self, x, y=None) -> torch.Tensor:
        """Decoded posterior mean, (B, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.reconstruction_logits(x, y))

    def reconstruction_logits(self, x, y=None) -> torch.Tensor:
        """Bernoulli logits (B, C, H, W) of the decoded posterior mean."""
        raise NotImplementedError

    def reconstruction_nll(self, x, y=None) -> torch.Tensor:
        """-log p(x | decoded posterior mean) per image (B,) in nats, from the logits."""
        return bernoulli_nll(self.reconstruction_logits(x, y), x)

    def representation(self, x, y=None) -> torch.Tensor:
        """(B, D) codes the disentanglement metrics score: the posterior mean."""
        raise NotImplementedError

    def elbo_terms(self, x, y=None) -> dict[str, torch.Tensor]:
        """Per-image terms in nats, each (B,): "elbo", the single-sample ELBO of log p(x)
        (= -(recon + kl)), its "recon" (-log p(x|z)) and "kl" terms, and any further named
        terms (a variant's own bound is `<name>_bound`, e.g. IWAE's "iwae_bound")."""
        raise NotImplementedError

    # --- trainer hooks -------------------------------------------------------------------
    def make_optimizers(self, lr: float, betas=(0.9, 0.999)) -> list[torch.optim.Optimizer]:
        return [adam(self.parameters(), lr=lr, betas=betas)]

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
    """Diagonal-Gaussian posterior, standard-normal prior, decoder likelihood from the config
    (Bernoulli by default; see likelihoods.py).

    Variants that only change the objective subclass this and override `loss`.
    """

    def __init__(self, config, image_shape, num_classes, train_size=None):
        super().__init__(config, image_shape, num_classes, train_size)
        cond = num_classes if self.conditional else 0
        self.encoder = ConvEncoder(image_shape, 2 * config.latent_dim, cond_dim=cond, heads=2)
        self.decoder = ConvDecoder(image_shape, config.latent_dim + cond)
        self.likelihood = make_likelihood(config.likelihood, config.likelihood_scale)

    def noise_like(self, mu):
        """The reparameterisation noise (standard normal, mu's shape). A packed run
        (the runner's pack.py) substitutes each member's own draws here."""
        return torch.randn_like(mu)

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
        """Decoder output (B, C, H, W): logits of the likelihood's mean (self.likelihood)."""
        c = self._cond(y)
        return self.decoder(z if c is None else torch.cat([z, c], dim=1))

    def decoder_nll(self, x, z, y=None):
        """-log p(x | z) per image (B,) in nats under the model's likelihood; z (B, D)."""
        return self.likelihood.nll(self.decode(z, y), x)

    def forward_terms(self, x, y=None):
        """One reparameterised pass: z (B, D), per-image recon (B,), per-dim KL (B, D)."""
        mu, logvar = self.encode(x, y)
        z = mu + self.noise_like(mu) * torch.exp(0.5 * logvar)
        recon = self.decoder_nll(x, z, y)
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

    def reconstruction_logits(self, x, y=None):
        return self.decode(self.encode(x, y)[0], y)

    def reconstruction_nll(self, x, y=None):
        return self.decoder_nll(x, self.encode(x, y)[0], y)

    def sample(self, n, y=None, generator=None):
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator, device="cpu").to(device)
        if self.conditional and y is None:
            y = torch.randint(0, self.num_classes, (n,), generator=generator).to(device)
        return torch.sigmoid(self.decode(z, y))
