from vaebench.models.base import GaussianVAE, ModelConfig, config_dataclass
from vaebench.registry import register_model


@config_dataclass
class VAEConfig(ModelConfig):
    """Kingma & Welling 2014, "Auto-Encoding Variational Bayes": latent 10 as in the benchmark."""


@register_model("vae", description="Gaussian VAE trained on the ELBO",
                paper="Kingma & Welling 2014, Auto-Encoding Variational Bayes")
class VAE(GaussianVAE):
    Config = VAEConfig
