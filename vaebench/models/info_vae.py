from typing import Literal

import torch

from vaebench.models.base import GaussianVAE, ModelConfig, config_dataclass
from vaebench.registry import register_model


@config_dataclass
class InfoVAEConfig(ModelConfig):
    """Zhao et al. 2019, "InfoVAE: Balancing Learning and Inference in Variational Autoencoders"
    (Eq. 6, MMD divergence): loss = recon + (1 - alpha) * KL + (alpha + lambda_ - 1) * MMD(q(z), p(z));
    alpha=0, lambda_=1000 is the paper's MMD-VAE setting. kernel: "rbf" (Gaussian, as in the
    paper) or "imq" (inverse multiquadratic, Tolstikhin et al. 2018), both with scale 2 * latent_dim."""

    alpha: float = 0.0
    lambda_: float = 1000.0
    kernel: Literal["rbf", "imq"] = "rbf"


def kernel_matrix(a: torch.Tensor, b: torch.Tensor, kernel: str) -> torch.Tensor:
    """k(a_i, b_j) for a (N, D), b (M, D) -> (N, M); scale C = 2 D (the prior's 2 D sigma^2)."""
    c = 2.0 * a.shape[1]
    sq = torch.cdist(a, b).pow(2)
    if kernel == "rbf":
        return torch.exp(-sq / c)
    if kernel == "imq":
        return c / (c + sq)
    raise ValueError(f"unknown kernel {kernel!r}; use 'rbf' or 'imq'")


def mmd(a: torch.Tensor, b: torch.Tensor, kernel: str = "rbf") -> torch.Tensor:
    """Squared MMD between two samples (biased V-statistic, as in the paper's code): >= 0, and
    exactly 0 for identical samples."""
    return (kernel_matrix(a, a, kernel).mean() + kernel_matrix(b, b, kernel).mean()
            - 2 * kernel_matrix(a, b, kernel).mean())


@register_model("info_vae", description="InfoVAE / MMD-VAE: KL plus an MMD between aggregate "
                "posterior and prior", paper="Zhao et al. 2019, InfoVAE: Balancing Learning and "
                "Inference in Variational Autoencoders")
class InfoVAE(GaussianVAE):
    Config = InfoVAEConfig

    def loss(self, x, y=None, step=0):
        cfg = self.config
        t = self.forward_terms(x, y)
        recon, kl = t["recon"].mean(), t["kl_dims"].sum(1).mean()
        # Samples of q(z) = posterior samples of the batch; a fresh prior sample of the same size.
        d = mmd(t["z"], torch.randn_like(t["z"]), cfg.kernel)
        loss = recon + (1 - cfg.alpha) * kl + (cfg.alpha + cfg.lambda_ - 1) * d
        return {"loss": loss, "recon": recon, "kl": kl, "mmd": d}
