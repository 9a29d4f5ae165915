"""DIP-VAE-I and DIP-VAE-II: one file, two registered names (they differ in one covariance)."""

import torch

from vaebench.models.base import GaussianVAE, ModelConfig, config_dataclass
from vaebench.registry import register_model

PAPER = ("Kumar et al. 2018, Variational Inference of Disentangled Latent Concepts from "
         "Unlabeled Observations")


@config_dataclass
class DIPVAEIConfig(ModelConfig):
    """Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts from Unlabeled
    Observations" (Eq. 6): loss = ELBO + lambda_od * sum_{i!=j} Cov[mu]_ij^2 +
    lambda_d * sum_i (Cov[mu]_ii - 1)^2 with lambda_d = lambda_d_factor * lambda_od; the paper
    and disentanglement_lib use lambda_d = 10 * lambda_od for DIP-VAE-I."""

    lambda_od: float = 10.0
    lambda_d_factor: float = 10.0


@config_dataclass
class DIPVAEIIConfig(ModelConfig):
    """Kumar et al. 2018 (Eq. 7): the same penalty on Cov_q(z) = E[diag(sigma^2(x))] + Cov[mu(x)];
    the paper and disentanglement_lib use lambda_d = lambda_od for DIP-VAE-II."""

    lambda_od: float = 10.0
    lambda_d_factor: float = 1.0


def covariance(mu: torch.Tensor) -> torch.Tensor:
    """Batch covariance E[mu mu^T] - E[mu] E[mu]^T (1/B normalisation): (B, D) -> (D, D)."""
    centred = mu - mu.mean(0, keepdim=True)
    return centred.T @ centred / mu.shape[0]


def dip_penalties(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of squared off-diagonal entries, sum of squared deviations of the diagonal from 1)."""
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return off.pow(2).sum(), (diag - 1).pow(2).sum()


class _DIPVAE(GaussianVAE):
    include_variances = False  # DIP-VAE-II adds E[diag(sigma^2)] to the covariance
    loss_scalars = ("lambda_od", "lambda_d_factor")

    def loss(self, x, y=None, step=0):
        cfg = self.config
        t = self.forward_terms(x, y)
        recon, kl = t["recon"].mean(), t["kl_dims"].sum(1).mean()
        cov = covariance(t["mu"])
        if self.include_variances:
            cov = cov + torch.diag(t["logvar"].exp().mean(0))
        off_diag, diag = dip_penalties(cov)
        penalty = cfg.lambda_od * off_diag + cfg.lambda_d_factor * cfg.lambda_od * diag
        return {"loss": recon + kl + penalty, "recon": recon, "kl": kl,
                "dip_off_diag": off_diag, "dip_diag": diag}


@register_model("dip_vae_i", description="VAE whose posterior-mean covariance is pushed to the identity",
                paper=PAPER)
class DIPVAEI(_DIPVAE):
    Config = DIPVAEIConfig


@register_model("dip_vae_ii", description="VAE whose aggregate-posterior covariance is pushed to the "
                "identity", paper=PAPER)
class DIPVAEII(_DIPVAE):
    Config = DIPVAEIIConfig
    include_variances = True
