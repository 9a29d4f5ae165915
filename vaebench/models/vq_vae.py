"""VQ-VAE: a discrete code grid, trained with a uniform prior, then given a PixelCNN prior.

Training (van den Oord et al. 2017, Eq. 3, summed over the code grid per image):
    loss = -log p(x | z_q) + ||sg[z_e] - e||^2 + beta * ||z_e - sg[e]||^2
with the straight-through estimator copying the decoder's gradient from z_q to z_e. With
codebook_update="ema" the codebook term is dropped and codes follow exponential moving averages of
their assigned encoder outputs (the paper's Appendix A.1).

After training, `after_training` fits a small gated PixelCNN over code grids of training images
(prior_steps Adam steps); `sample` then draws code grids from it, and the run's metrics.json says
"prior": "pixelcnn". Before that, `sample` draws codes uniformly (the training-time prior).
The prior's budget is its own config value (`prior_steps`, not the run's `train.steps`; a quick
suite sets it low, 0 skips the prior); its fit shows a progress bar on a terminal and its wall time
is returned as "prior_seconds" (recorded under metrics.json's "after_training").

Bound: the posterior is one-hot, so "kl" in `elbo_terms` is -log prior(codes): H' W' log K nats
per image under the uniform training prior (as in the paper), the PixelCNN's NLL of the code grid
once it is fitted.
Representation: the pre-quantisation encoder output z_e (B, D, H', W') flattened to
(B, D H' W'), in (channel, row, column) order.
"""

import math
import time
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from tqdm import tqdm

from vaebench.errors import VaebenchError
from vaebench.models.base import LatentVariableModel, adam, bernoulli_nll, config_dataclass
from vaebench.models.pixelcnn import GatedPixelCNN
from vaebench.registry import register_model


@config_dataclass
class VQVAEConfig:
    """van den Oord et al. 2017, "Neural Discrete Representation Learning": K=512 codes,
    commitment beta=0.25, EMA decay 0.99; encoder: two 4x4 stride-2 convs and two residual blocks
    (the paper uses 256 channels; 64 here to keep CPU runs affordable), so the code grid is the
    image downsampled 4x (16x16 for 64x64, 7x7 for 28x28). prior_*: the gated PixelCNN prior."""

    num_codes: int = Field(512, ge=2)
    code_dim: int = 64
    commitment_cost: float = 0.25
    codebook_update: Literal["loss", "ema"] = "loss"
    ema_decay: float = Field(0.99, gt=0, lt=1)
    hidden: int = 64
    res_hidden: int = 32
    prior_channels: int = 32
    prior_layers: int = 5
    prior_steps: int = Field(1000, ge=0)
    prior_batch_size: int = 64
    prior_lr: float = 1e-3


class _Residual(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))), the paper's residual block."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.block = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
                                   nn.Conv2d(hidden, channels, 1))

    def forward(self, x):
        return x + self.block(x)


class VectorQuantizer(nn.Module):
    """Nearest-neighbour lookup in a (K, D) codebook, with an optional EMA update.

    EMA state starts as one pseudo-observation of each initial code (count 1, sum = the code), so
    a code that is never chosen keeps its place instead of being divided by a zero count.
    """

    def __init__(self, num_codes: int, code_dim: int, ema: bool, decay: float, eps: float = 1e-5):
        super().__init__()
        self.ema, self.decay, self.eps = ema, decay, eps
        # Entries with variance 1/D (codes of norm ~1, like Sonnet's unit-scaling initialiser): a
        # codebook much smaller than the encoder's outputs leaves the commitment term chasing them.
        bound = (3.0 / code_dim) ** 0.5
        self.codebook = nn.Parameter(torch.empty(num_codes, code_dim).uniform_(-bound, bound),
                                     requires_grad=not ema)
        if ema:
            self.register_buffer("ema_count", torch.ones(num_codes))
            self.register_buffer("ema_sum", self.codebook.detach().clone())

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N,) index of the closest code (squared Euclidean distance)."""
        e = self.codebook
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.T + e.pow(2).sum(1)
        return dist.argmin(1)

    @torch.no_grad()
    def ema_update(self, flat: torch.Tensor, idx: torch.Tensor) -> None:
        """N_k <- g N_k + (1-g) n_k;  m_k <- g m_k + (1-g) sum_{i: idx_i=k} flat_i;  e_k = m_k / N_k,
        with N_k Laplace-smoothed by eps (as in the paper's released code) against empty codes."""
        onehot = F.one_hot(idx, len(self.codebook)).to(flat.dtype)
        self.ema_count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(onehot.T @ flat, alpha=1 - self.decay)
        total = self.ema_count.sum()
        count = (self.ema_count + self.eps) / (total + len(self.codebook) * self.eps) * total
        self.codebook.copy_(self.ema_sum / count[:, None])


def perplexity(counts: torch.Tensor) -> torch.Tensor:
    """exp(entropy of code usage) from per-code counts (K,): K if all codes are used equally,
    1 if a single code is."""
    p = counts.float() / counts.sum().clamp_min(1)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


@register_model("vq_vae", description="vector-quantised VAE with a PixelCNN prior fitted after training",
                paper="van den Oord et al. 2017, Neural Discrete Representation Learning")
class VQVAE(LatentVariableModel):
    Config = VQVAEConfig

    def __init__(self, config, image_shape, num_classes, train_size=None):
        super().__init__(config, image_shape, num_classes, train_size)
        c, h, w = self.image_shape
        if h % 4 or w % 4:
            raise VaebenchError(f"vq_vae downsamples images 4x; image shape {self.image_shape} (C, H, W) "
                                f"needs H and W divisible by 4 (supported: 28x28, 64x64)")
        self.grid = (h // 4, w // 4)
        hid, res, d = config.hidden, config.res_hidden, config.code_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(c, hid, 4, 2, 1), nn.ReLU(), nn.Conv2d(hid, hid, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(hid, hid, 3, padding=1), _Residual(hid, res), _Residual(hid, res), nn.ReLU(),
            nn.Conv2d(hid, d, 1))
        self.decoder = nn.Sequential(
            nn.Conv2d(d, hid, 3, padding=1), _Residual(hid, res), _Residual(hid, res), nn.ReLU(),
            nn.ConvTranspose2d(hid, hid, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(hid, c, 4, 2, 1))
        self.quantizer = VectorQuantizer(config.num_codes, d, ema=config.codebook_update == "ema",
                                         decay=config.ema_decay)
        self.prior = GatedPixelCNN(config.num_codes, config.prior_channels, config.prior_layers)
        self.register_buffer("prior_fitted", torch.tensor(False))

    # --- pieces ------------------------------------------------------------------------------
    def encode(self, x, y=None):
        """Pre-quantisation encoder output z_e: (B, D, H', W')."""
        return self.encoder(x)

    def quantize(self, z_e):
        """(z_q (B, D, H', W') with straight-through gradients to z_e, codes (B, H', W'), the
        flattened z_e (B H' W', D) and its codes (B H' W',))."""
        b, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
        idx = self.quantizer.nearest(flat.detach())
        z_q = self.codes_to_latents(idx.view(b, h, w))
        # Straight-through: the forward value is z_q, the gradient w.r.t. z_q goes to z_e unchanged.
        return z_e + (z_q - z_e).detach(), z_q, idx.view(b, h, w), flat, idx

    def codes_to_latents(self, codes):
        """(B, H', W') code indices -> (B, D, H', W') code vectors."""
        return self.quantizer.codebook[codes].permute(0, 3, 1, 2)

    def decode(self, z_q):
        """Bernoulli logits (B, C, H, W)."""
        return self.decoder(z_q)

    def forward_terms(self, x):
        z_e = self.encode(x)
        z_st, z_q, codes, flat, idx = self.quantize(z_e)
        recon = bernoulli_nll(self.decode(z_st), x)
        commitment = (z_e - z_q.detach()).pow(2).flatten(1).sum(1)
        codebook = (z_e.detach() - z_q).pow(2).flatten(1).sum(1)
        return {"recon": recon, "commitment": commitment, "codebook": codebook, "flat": flat, "idx": idx}

    def _loss_terms(self, t):
        cfg = self.config
        recon, commitment, codebook = t["recon"].mean(), t["commitment"].mean(), t["codebook"].mean()
        loss = recon + cfg.commitment_cost * commitment
        if cfg.codebook_update == "loss":
            loss = loss + codebook
        with torch.no_grad():
            counts = torch.bincount(t["idx"], minlength=cfg.num_codes)
            used, ppl = (counts > 0).sum().float(), perplexity(counts)
        return {"loss": loss, "recon": recon, "codebook": codebook, "commitment": commitment,
                "perplexity": ppl, "codes_used": used}

    # --- interface ---------------------------------------------------------------------------
    def loss(self, x, y=None, step=0):
        return self._loss_terms(self.forward_terms(x))

    def make_optimizers(self, lr, betas=(0.9, 0.999)):
        params = [p for n, p in self.named_parameters() if not n.startswith("prior.") and p.requires_grad]
        return [adam(params, lr=lr, betas=betas)]

    def training_step(self, x, y, step, optimizers):
        (opt,) = optimizers
        t = self.forward_terms(x)
        terms = self._loss_terms(t)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        if self.config.codebook_update == "ema":
            self.quantizer.ema_update(t["flat"].detach(), t["idx"])
        return terms

    def elbo_terms(self, x, y=None):
        """recon: -log p(x | z_q); kl: KL of the one-hot posterior to the prior, which is
        -log prior(codes): the fitted PixelCNN's code-grid NLL once `after_training` has run, else
        the uniform training-time prior's log K per code position."""
        t = self.forward_terms(x)
        if bool(self.prior_fitted):
            kl = self.prior.nll(t["idx"].view(len(x), *self.grid))
        else:
            kl = t["recon"].new_full(t["recon"].shape, self.grid[0] * self.grid[1] * math.log(self.config.num_codes))
        return {"recon": t["recon"], "kl": kl, "elbo": -(t["recon"] + kl)}

    def representation(self, x, y=None):
        return self.encode(x).flatten(1)

    def reconstruction_logits(self, x, y=None):
        return self.decode(self.quantize(self.encode(x))[1])

    def sample(self, n, y=None, generator=None):
        device = self.quantizer.codebook.device
        if bool(self.prior_fitted):
            codes = self.prior.sample(n, self.grid, device, generator)
        else:
            codes = torch.randint(0, self.config.num_codes, (n, *self.grid), generator=generator).to(device)
        return torch.sigmoid(self.decode(self.codes_to_latents(codes)))

    @torch.enable_grad()
    def after_training(self, dataset, device, seed):
        """Fit the PixelCNN prior on code grids of random training images (encoder frozen)."""
        cfg = self.config
        if cfg.prior_steps == 0:
            return {"prior": "uniform", "prior_steps": 0, "prior_seconds": 0.0}
        gen = torch.Generator().manual_seed(seed)
        n_train = dataset.num_examples("train")
        opt = torch.optim.Adam(self.prior.parameters(), lr=cfg.prior_lr)
        usage = torch.zeros(cfg.num_codes, device=device)
        was_training = self.training
        self.eval()
        self.prior.train()
        recent, t0 = [], time.perf_counter()
        for step in tqdm(range(cfg.prior_steps), desc="vq_vae prior", unit="step", leave=False,
                         dynamic_ncols=True, disable=None):  # disable=None: off when not a terminal
            idx = torch.randint(0, n_train, (cfg.prior_batch_size,), generator=gen)
            x, _ = dataset.batch("train", idx, device)
            with torch.no_grad():
                codes = self.quantize(self.encode(x))[2]
            usage += torch.bincount(codes.flatten(), minlength=cfg.num_codes)
            nll = self.prior.nll(codes).mean()
            opt.zero_grad(set_to_none=True)
            nll.backward()
            opt.step()
            if step >= cfg.prior_steps - max(1, cfg.prior_steps // 10):
                recent.append(nll.item())
        self.prior.eval()
        self.train(was_training)
        self.prior_fitted.fill_(True)
        prior_seconds = time.perf_counter() - t0
        positions = self.grid[0] * self.grid[1]
        return {"prior": "pixelcnn", "prior_steps": cfg.prior_steps, "prior_seconds": prior_seconds,
                "prior_train_nll_nats": sum(recent) / len(recent),
                "uniform_prior_nll_nats": positions * math.log(cfg.num_codes),
                "codebook_used": int((usage > 0).sum().item()), "num_codes": cfg.num_codes,
                "codebook_perplexity": perplexity(usage).item()}
