"""The disentanglement panel: MIG, FactorVAE score, BetaVAE score, DCI, SAP, modularity.

Protocol and defaults follow google-research/disentanglement_lib (Locatello et al. 2019), one
module per reference file (mig.py, factor_vae.py, beta_vae.py, dci.py, sap_score.py,
modularity_explicitness.py). Each module has
- a public function on plain arrays (`mig(codes, factors)`, `dci(...)`, ...) or, for the two
  sampling scores, on a ground-truth dataset and a representation function
  (`factorvae_score(ground_truth, representation_fn, random_state)`), exported from
  `vaebench.metrics`; and
- its registered metric `<name>_metric(ctx, **params)` (registry name `<name>`), which draws
  factors from the run's dataset with `np.random.RandomState(ctx.seed)` and reads codes from
  the run's shared code table (code_table.py).

Shared pieces: mutual_info.py (discretization, MI matrix), sampling.py (the reference's draws;
per-sample encoding), code_table.py (each grid image encoded at most once), context.py.
"""

# importing the modules registers their metrics
from vaebench.metrics.disentanglement import (beta_vae, dci, factor_vae, mig,  # noqa: F401
                                              modularity_explicitness, sap_score)
