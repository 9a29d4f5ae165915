import math

import torch
from pydantic import Field

from vaebench.models.base import (GaussianVAE, ModelConfig, config_dataclass,
                                   gaussian_log_density)
from vaebench.registry import register_model


@config_dataclass
class IWAEConfig(ModelConfig):
    """Burda et al. 2016, "Importance Weighted Autoencoders": maximise
    log (1/k) sum_j p(x, z_j) / q(z_j | x) with k posterior samples (the paper uses k in {1, 5, 50});
    k=1 is the VAE's ELBO."""

    k: int = Field(5, ge=1)


@register_model("iwae", description="importance-weighted autoencoder: a tighter bound from k "
                "posterior samples", paper="Burda et al. 2016, Importance Weighted Autoencoders")
class IWAE(GaussianVAE):
    Config = IWAEConfig

    def bound_terms(self, x, y=None, k: int | None = None):
        """Per-image terms with k shared samples, each (B,) in nats: "iwae" (the bound), "recon"
        (-mean_j log p(x | z_j)) and "kl" (mean_j [log q(z_j | x) - log p(z_j)], a sample estimate),
        so that -(recon + kl) is the k-sample average ELBO and iwae >= -(recon + kl), with equality
        at k=1."""
        k = k or self.config.k
        mu, logvar = self.encode(x, y)
        b, d = mu.shape
        z = mu + torch.randn(k, b, d, device=mu.device, dtype=mu.dtype) * torch.exp(0.5 * logvar)  # (k, B, D)
        x_k = x.expand(k, *x.shape).reshape(k * b, *x.shape[1:])
        y_k = None if y is None else y.repeat(k)
        log_px_z = -self.likelihood.nll(self.decode(z.reshape(k * b, d), y_k), x_k).view(k, b)
        log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)
        log_qz_x = gaussian_log_density(z, mu, logvar).sum(-1)
        log_w = log_px_z + log_pz - log_qz_x  # (k, B)
        iwae = torch.logsumexp(log_w, dim=0) - math.log(k)
        return {"iwae": iwae, "recon": -log_px_z.mean(0), "kl": (log_qz_x - log_pz).mean(0)}

    def loss(self, x, y=None, step=0):
        t = self.bound_terms(x, y)
        return {"loss": -t["iwae"].mean(), "recon": t["recon"].mean(), "kl": t["kl"].mean()}

    def elbo_terms(self, x, y=None):
        """"elbo": the single-sample ELBO of log p(x), as for every model (k=1, analytic KL);
        "iwae_bound": the k-sample bound the model is trained on (tighter by construction)."""
        out = super().elbo_terms(x, y)
        out["iwae_bound"] = self.bound_terms(x, y)["iwae"]
        return out
