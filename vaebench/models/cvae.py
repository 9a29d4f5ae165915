from vaebench.models.base import GaussianVAE, ModelConfig, config_dataclass
from vaebench.registry import register_model


@config_dataclass
class CVAEConfig(ModelConfig):
    """Sohn et al. 2015, "Learning Structured Output Representation using Deep Conditional
    Generative Models": encoder q(z|x,y) and decoder p(x|z,y) both see the one-hot label y
    (the digit for MNIST, the shape for dSprites); the prior is N(0, I)."""


@register_model("cvae", description="conditional VAE: encoder and decoder see the label",
                paper="Sohn et al. 2015, Learning Structured Output Representation using Deep "
                      "Conditional Generative Models")
class CVAE(GaussianVAE):
    Config = CVAEConfig
    conditional = True
