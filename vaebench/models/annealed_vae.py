import torch
from pydantic import Field

from vaebench.models.base import GaussianVAE, ModelConfig, config_dataclass
from vaebench.registry import register_model


@config_dataclass
class AnnealedVAEConfig(ModelConfig):
    """Burgess et al. 2018, "Understanding disentangling in beta-VAE": loss = recon +
    gamma * |KL - C|, the capacity C rising linearly from 0 to c_max nats over
    iteration_threshold steps; gamma=1000, c_max=25, 100,000 steps is the paper's dSprites setting
    (disentanglement_lib's names for the parameters)."""

    gamma: float = 1000.0
    c_max: float = 25.0
    iteration_threshold: int = Field(100_000, ge=1)


def capacity(step: int, c_max, iteration_threshold: int):
    """C(step) = c_max * min(1, step / iteration_threshold), in nats; c_max a float or, in a pack,
    a tensor (so no comparison touches it)."""
    return c_max * min(1.0, step / iteration_threshold)


@register_model("annealed_vae", description="beta-VAE with a linearly growing KL capacity target C",
                paper="Burgess et al. 2018, Understanding disentangling in beta-VAE")
class AnnealedVAE(GaussianVAE):
    Config = AnnealedVAEConfig
    loss_scalars = ("gamma", "c_max")

    def loss(self, x, y=None, step=0):
        cfg = self.config
        t = self.forward_terms(x, y)
        recon, kl = t["recon"].mean(), t["kl_dims"].sum(1).mean()
        c = capacity(step, cfg.c_max, cfg.iteration_threshold)
        # |KL - C| on the batch-mean KL, as in the paper's Eq. 8 and disentanglement_lib.
        return {"loss": recon + cfg.gamma * (kl - c).abs(), "recon": recon, "kl": kl,
                "capacity": torch.as_tensor(c).to(kl)}
