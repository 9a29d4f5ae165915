"""Model variants. One file per variant; its `@register_model` line puts it in `vaebench list models`.

To add a variant: copy `beta_vae.py`, change the config and `loss`, add the import below.
"""

from vaebench.models import (annealed_vae, beta_tcvae, beta_vae, cvae, dip_vae, factor_vae, hvae,  # noqa: F401
                             info_vae, iwae, vae, vq_vae)  # (registers models)
from vaebench.models.base import GaussianVAE, LatentVariableModel, ModelConfig

__all__ = ["GaussianVAE", "LatentVariableModel", "ModelConfig"]
