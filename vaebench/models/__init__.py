"""Model variants. One file per variant; its `@register_model` line puts it in `vaebench list models`.

To add a variant: copy `beta_vae.py`, change the config and `loss`, add the import below.
"""

from vaebench.models import beta_vae, cvae, vae  # noqa: F401  (registers models)
from vaebench.models.base import GaussianVAE, LatentVariableModel, ModelConfig

__all__ = ["GaussianVAE", "LatentVariableModel", "ModelConfig"]
