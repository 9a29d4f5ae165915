"""Metrics. Each module registers its metrics with `@register_metric`; importing it is enough."""

from vaebench.metrics import disentanglement, elbo, nll  # noqa: F401  (registers metrics)
from vaebench.metrics import fid  # noqa: F401  (registers fid, fid_recon)
from vaebench.metrics.base import EvalContext, MetricResult
from vaebench.metrics.disentanglement.beta_vae import betavae_score
from vaebench.metrics.disentanglement.dci import dci
from vaebench.metrics.disentanglement.factor_vae import factorvae_score
from vaebench.metrics.disentanglement.mig import mig
from vaebench.metrics.disentanglement.modularity_explicitness import explicitness, modularity
from vaebench.metrics.disentanglement.sap_score import sap

__all__ = ["EvalContext", "MetricResult", "betavae_score", "dci", "explicitness",
           "factorvae_score", "mig", "modularity", "sap"]
