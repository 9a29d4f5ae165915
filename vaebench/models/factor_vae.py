"""FactorVAE: a VAE whose total correlation is estimated by a discriminator with its own optimizer.

By default (two_minibatches=False, as disentanglement_lib, the code behind Locatello et al. 2019)
the VAE is updated on the whole batch x with the TC term from the discriminator's logits on z(x);
the discriminator is then updated to tell z(x) (class 0, samples of q(z)) from the same codes with
each dimension permuted across the batch (class 1, samples of prod_j q(z_j)). So the VAE sees
train.batch_size images a step, like every other model.
two_minibatches=True is the paper's Algorithm 1: the batch is split into halves x1, x2, the VAE
step uses x1 and the permuted codes come from x2 (the VAE then sees half the batch a step).
"""

import torch
import torch.nn.functional as F
from torch import nn

from vaebench.models.base import GaussianVAE, ModelConfig, adam, config_dataclass
from vaebench.registry import register_model


@config_dataclass
class FactorVAEConfig(ModelConfig):
    """Kim & Mnih 2018, "Disentangling by Factorising": loss = ELBO + gamma * TC with
    TC ~ E[D_0(z) - D_1(z)] (discriminator logits); gamma=35 is the paper's best dSprites model;
    discriminator: 6 layers of 1000 units, leaky ReLU (0.2), Adam lr 1e-4, betas (0.5, 0.9).
    two_minibatches: permute the same batch (False, disentanglement_lib) or split each batch in
    two (True, the paper's Algorithm 1); see above."""

    gamma: float = 35.0
    two_minibatches: bool = False
    disc_hidden: int = 1000
    disc_layers: int = 6
    disc_lr: float = 1e-4
    disc_beta1: float = 0.5
    disc_beta2: float = 0.9


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Permute each latent dimension independently across the batch: samples of prod_j q(z_j).

    z: (B, D). Each column of the result is a permutation of the same column of z, so every
    marginal is kept while the dependence between dimensions is broken.
    """
    b, d = z.shape
    perms = torch.argsort(torch.rand(b, d, generator=generator, device="cpu"), dim=0).to(z.device)
    return torch.gather(z, 0, perms)


def make_discriminator(latent_dim: int, hidden: int, layers: int) -> nn.Sequential:
    """MLP z (B, D) -> logits (B, 2): column 0 "from q(z)", column 1 "permuted"."""
    mods, d_in = [], latent_dim
    for _ in range(layers):
        mods += [nn.Linear(d_in, hidden), nn.LeakyReLU(0.2)]
        d_in = hidden
    return nn.Sequential(*mods, nn.Linear(d_in, 2))


@register_model("factor_vae", description="VAE with a total-correlation penalty estimated by a "
                "discriminator on permuted latents", paper="Kim & Mnih 2018, Disentangling by Factorising")
class FactorVAE(GaussianVAE):
    Config = FactorVAEConfig

    def __init__(self, config, image_shape, num_classes, train_size=None):
        super().__init__(config, image_shape, num_classes, train_size)
        self.discriminator = make_discriminator(config.latent_dim, config.disc_hidden, config.disc_layers)

    def vae_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith("discriminator.")]

    def _vae_terms(self, x, y=None):
        t = self.forward_terms(x, y)
        logits = self.discriminator(t["z"])
        recon, kl = t["recon"].mean(), t["kl_dims"].sum(1).mean()
        # log D(z) / (1 - D(z)) with D = softmax(logits)[:, 0]: the density-ratio trick.
        tc = (logits[:, 0] - logits[:, 1]).mean()
        terms = {"loss": recon + kl + self.config.gamma * tc, "recon": recon, "kl": kl, "tc": tc}
        return terms, t["z"]

    def loss(self, x, y=None, step=0):
        return self._vae_terms(x, y)[0]

    def make_optimizers(self, lr, betas=(0.9, 0.999)):
        cfg = self.config
        return [adam(self.vae_parameters(), lr=lr, betas=betas),
                adam(self.discriminator.parameters(), lr=cfg.disc_lr, betas=(cfg.disc_beta1, cfg.disc_beta2))]

    def training_step(self, x, y, step, optimizers):
        vae_opt, disc_opt = optimizers
        if self.config.two_minibatches:
            if len(x) < 2:
                raise ValueError("factor_vae needs a batch of at least 2 (it is split into two minibatches)")
            half = len(x) // 2
            x1, x2 = x[:half], x[half:]
            y1, y2 = (None, None) if y is None else (y[:half], y[half:])
        else:
            x1, y1, x2 = x, y, None

        # VAE step on x1; the discriminator's weights need no gradient here, only its input does.
        self.discriminator.requires_grad_(False)
        terms, z1 = self._vae_terms(x1, y1)
        vae_opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        vae_opt.step()
        self.discriminator.requires_grad_(True)

        # Discriminator step: z(x1) against permuted z(x2), from the second minibatch.
        with torch.no_grad():
            if x2 is None:
                z2 = permute_dims(z1)
            else:
                mu2, logvar2 = self.encode(x2, y2)
                z2 = permute_dims(mu2 + torch.randn_like(mu2) * torch.exp(0.5 * logvar2))
        logits_q, logits_perm = self.discriminator(torch.cat([z1.detach(), z2])).split([len(z1), len(z2)])
        zeros = torch.zeros(len(z1), dtype=torch.long, device=x.device)
        ones = torch.ones(len(z2), dtype=torch.long, device=x.device)
        disc_loss = 0.5 * (F.cross_entropy(logits_q, zeros) + F.cross_entropy(logits_perm, ones))
        disc_opt.zero_grad(set_to_none=True)
        disc_loss.backward()
        disc_opt.step()
        with torch.no_grad():
            acc = 0.5 * ((logits_q.argmax(1) == 0).float().mean()
                         + (logits_perm.argmax(1) == 1).float().mean())
        return {**terms, "disc_loss": disc_loss.detach(), "disc_acc": acc}
