from vaebench.models.base import GaussianVAE, ModelConfig, config_dataclass
from vaebench.registry import register_model


@config_dataclass
class BetaVAEConfig(ModelConfig):
    """Higgins et al. 2017, "beta-VAE: Learning Basic Visual Concepts with a Constrained
    Variational Framework": loss = recon + beta * KL; beta=4 is the paper's dSprites setting."""

    beta: float = 4.0


@register_model("beta_vae", description="VAE with the KL term weighted by beta",
                paper="Higgins et al. 2017, beta-VAE: Learning Basic Visual Concepts with a "
                      "Constrained Variational Framework")
class BetaVAE(GaussianVAE):
    Config = BetaVAEConfig
    loss_scalars = ("beta",)

    def loss(self, x, y=None, step=0):
        t = self.forward_terms(x, y)
        recon, kl = t["recon"].mean(), t["kl_dims"].sum(1).mean()
        return {"loss": recon + self.config.beta * kl, "recon": recon, "kl": kl}
