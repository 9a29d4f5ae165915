"""Hierarchical VAE with top-down inference (Ladder VAE, Sonderby et al. 2016), multi-scale latents.

Stochastic layers, numbered from the image up: layers 0 .. L-2 are spatial latents with
`spatial_channels[l]` channels on the last L-1 feature maps of the shared conv layout (8x8 and 4x4
for 64x64 images, 14x14 and 7x7 for 28x28 with the default two), layer L-1 (the top) is a vector
of `latent_dim`.

Inference: a bottom-up deterministic pass gives Gaussian "likelihood" terms (mu_hat, var_hat) per
layer; the top-down pass starts from q(z_top | x) = N(mu_hat, var_hat) and, for each lower layer,
combines the generative prior p(z_l | z_{l+1}) = N(mu_p, var_p) with the bottom-up term by
precision weighting: var_q = 1 / (1/var_hat + 1/var_p), mu_q = var_q (mu_hat/var_hat + mu_p/var_p).
The KL of each layer (analytic, given the sampled layer above) is reported as kl_layer<l>, so a
collapsed layer (KL ~ 0) is visible.

Representation for the metrics: the top layer's posterior mean, (B, latent_dim).
"""

import torch
from pydantic import Field
from torch import nn

from vaebench.errors import VaebenchError
from vaebench.models.architectures import _layout
from vaebench.models.base import (LatentVariableModel, ModelConfig, bernoulli_nll, config_dataclass,
                                   gaussian_kl)
from vaebench.registry import register_model

HIDDEN = 256  # width of the FC layer, as in ConvEncoder / ConvDecoder


@config_dataclass
class HVAEConfig(ModelConfig):
    """Sonderby et al. 2016, "Ladder Variational Autoencoders": top-down inference with
    precision-weighted posteriors. latent_dim: the top (vector) layer; spatial_channels: the spatial
    layers below it, finest first. kl_warmup_steps: KL weight rising linearly from 0 to 1 (the paper
    warms up over its first 200 epochs; 0 = off, the plain ELBO from the first step)."""

    spatial_channels: tuple[int, ...] = (2, 4)
    kl_warmup_steps: int = Field(0, ge=0)


def gaussian_kl_two(mu_q, logvar_q, mu_p, logvar_p):
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) elementwise, in nats."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0)


def precision_weighted(mu_hat, logvar_hat, mu_p, logvar_p):
    """Combine a bottom-up Gaussian term with the top-down prior (Ladder VAE, Eq. 17-18)."""
    logvar_q = -torch.logaddexp(-logvar_hat, -logvar_p)
    mu_q = (mu_hat * torch.exp(-logvar_hat) + mu_p * torch.exp(-logvar_p)) * logvar_q.exp()
    return mu_q, logvar_q


def _noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.randn_like(like)
    return torch.randn(like.shape, generator=generator, dtype=like.dtype).to(like.device)


def _conv3(c_in, c_out):
    return nn.Conv2d(c_in, c_out, 3, padding=1)


@register_model("hvae", description="hierarchical VAE (Ladder VAE): several stochastic layers, "
                "top-down inference, per-layer KL", paper="Sonderby et al. 2016, Ladder Variational "
                "Autoencoders")
class HVAE(LatentVariableModel):
    Config = HVAEConfig

    def __init__(self, config, image_shape, num_classes, train_size=None):
        super().__init__(config, image_shape, num_classes, train_size)
        if config.likelihood != "bernoulli":  # its top-down decoder has only the Bernoulli head
            raise VaebenchError(f"model hvae: likelihood {config.likelihood!r} is not supported; "
                                f"hvae has a Bernoulli decoder only (likelihood: bernoulli)")
        spatial, channels = _layout(self.image_shape)
        n_sp = len(config.spatial_channels)
        if not 1 <= n_sp <= len(channels):
            raise VaebenchError(f"hvae: spatial_channels {tuple(config.spatial_channels)} gives {n_sp} "
                                f"spatial layers; images of shape {self.image_shape} allow 1 to "
                                f"{len(channels)}")
        self.channels, self.spatial = channels, spatial
        # Conv stage index (0 = first conv after the image) of each spatial layer, finest first.
        self.stage_of = list(range(len(channels) - n_sp, len(channels)))
        c_img, d = self.image_shape[0], config.latent_dim
        spatial_layers = list(zip(self.stage_of, config.spatial_channels))  # (stage, latent channels)

        # Bottom-up: the shared conv layout, a head per stochastic layer.
        self.up = nn.ModuleList()
        c_in = c_img
        for c in channels:
            self.up.append(nn.Conv2d(c_in, c, 4, stride=2, padding=1))
            c_in = c
        flat = channels[-1] * spatial * spatial
        self.up_fc = nn.Linear(flat, HIDDEN)
        self.up_top = nn.Linear(HIDDEN, 2 * d)
        self.up_heads = nn.ModuleList(_conv3(channels[s], 2 * z) for s, z in spatial_layers)

        # Top-down: the decoder's stages, with a prior head and a latent merge at each spatial layer.
        self.down_fc = nn.Sequential(nn.Linear(d, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, flat), nn.ReLU())
        self.prior_heads = nn.ModuleList(_conv3(channels[s], 2 * z) for s, z in spatial_layers)
        self.merges = nn.ModuleList(_conv3(z, channels[s]) for s, z in spatial_layers)
        outs = (c_img,) + tuple(channels[:-1])
        self.down = nn.ModuleList(nn.ConvTranspose2d(channels[i], outs[i], 4, stride=2, padding=1)
                                  for i in range(len(channels)))

    @property
    def num_layers(self) -> int:
        return len(self.config.spatial_channels) + 1

    def bottom_up(self, x):
        """Bottom-up (mu_hat, logvar_hat) per layer, finest first; the last is the top vector."""
        h, feats = x, []
        for conv in self.up:
            h = torch.relu(conv(h))
            feats.append(h)
        top = tuple(self.up_top(torch.relu(self.up_fc(h.flatten(1)))).chunk(2, dim=1))
        spatial = [tuple(head(feats[s]).chunk(2, dim=1)) for head, s in zip(self.up_heads, self.stage_of)]
        return spatial + [top]

    def top_down(self, z_top, bottom_up=None, mode: str = "sample", generator=None,
                 shift: tuple[int, int, float] | None = None, kl_channels: bool = False):
        """Run the generative path from z_top. With bottom_up terms, spatial layers use the
        precision-weighted posterior, otherwise the prior. mode: "sample" draws each layer,
        "mean" takes its mean. Returns Bernoulli logits and per-layer KL terms (B,) (posterior only).
        For latent traversals: shift=(layer, channel, value) adds value to that channel of that
        layer's z at every position; kl_channels=True returns each layer's KL per channel (C,)
        (summed over positions, averaged over the batch) instead."""
        t = self.down_fc(z_top).view(-1, self.channels[-1], self.spatial, self.spatial)
        kls = {}
        for stage in range(len(self.channels) - 1, -1, -1):
            if stage in self.stage_of:
                l = self.stage_of.index(stage)
                mu_p, logvar_p = self.prior_heads[l](t).chunk(2, dim=1)
                if bottom_up is not None:
                    mu, logvar = precision_weighted(*bottom_up[l], mu_p, logvar_p)
                    kl = gaussian_kl_two(mu, logvar, mu_p, logvar_p)
                    kls[l] = kl.sum((2, 3)).mean(0) if kl_channels else kl.flatten(1).sum(1)
                else:
                    mu, logvar = mu_p, logvar_p
                z = mu if mode == "mean" else mu + _noise(mu, generator) * torch.exp(0.5 * logvar)
                if shift is not None and shift[0] == l:
                    z = z.clone()
                    z[:, shift[1]] += shift[2]
                t = torch.relu(t + self.merges[l](z))
            t = self.down[stage](t)
            if stage:
                t = torch.relu(t)
        return t, kls

    def forward_terms(self, x, mode: str = "sample"):
        """Per-image recon (B,), per-layer KL {l: (B,)} (finest first, top last) and the top mean."""
        bu = self.bottom_up(x)
        mu_top, logvar_top = bu[-1]
        z_top = mu_top if mode == "mean" else mu_top + torch.randn_like(mu_top) * torch.exp(0.5 * logvar_top)
        logits, kls = self.top_down(z_top, bu[:-1], mode)
        kls[self.num_layers - 1] = gaussian_kl(mu_top, logvar_top).sum(1)
        return {"recon": bernoulli_nll(logits, x), "kls": [kls[l] for l in range(self.num_layers)],
                "mu_top": mu_top, "logits": logits}

    def loss(self, x, y=None, step=0):
        t = self.forward_terms(x)
        recon = t["recon"].mean()
        layer_kls = [k.mean() for k in t["kls"]]
        kl = sum(layer_kls)
        warm = self.config.kl_warmup_steps
        weight = min(1.0, step / warm) if warm > 0 else 1.0
        terms = {"loss": recon + weight * kl, "recon": recon, "kl": kl}
        terms.update({f"kl_layer{l}": k for l, k in enumerate(layer_kls)})
        return terms

    def elbo_terms(self, x, y=None):
        """recon, kl (sum over layers), elbo, and kl_layer<l> per layer (0 = finest), each (B,)."""
        t = self.forward_terms(x)
        kl = torch.stack(t["kls"]).sum(0)
        out = {"recon": t["recon"], "kl": kl, "elbo": -(t["recon"] + kl)}
        out.update({f"kl_layer{l}": k for l, k in enumerate(t["kls"])})
        return out

    def representation(self, x, y=None):
        return self.bottom_up(x)[-1][0]

    def reconstruction_logits(self, x, y=None):
        return self.forward_terms(x, mode="mean")["logits"]

    def sample(self, n, y=None, generator=None):
        device = self.up_top.weight.device
        z_top = torch.randn(n, self.config.latent_dim, generator=generator).to(device)
        return torch.sigmoid(self.top_down(z_top, generator=generator)[0])
