import math
from typing import Literal

import torch
from pydantic import Field

from vaebench.errors import VaebenchError
from vaebench.models.base import GaussianVAE, ModelConfig, config_dataclass, gaussian_log_density
from vaebench.registry import register_model


@config_dataclass
class BetaTCVAEConfig(ModelConfig):
    """Chen et al. 2018, "Isolating Sources of Disentanglement in Variational Autoencoders" (Eq. 4):
    loss = recon + alpha * MI + beta * TC + gamma * dimension-wise KL; alpha=gamma=1, beta=6 is the
    paper's dSprites setting. estimator: "mws" (minibatch-weighted sampling, the paper's default)
    or "mss" (minibatch-stratified sampling). dataset_size: N in the estimators; null (the default)
    takes the size of the run's training split, which the runner hands to the model."""

    alpha: float = 1.0
    beta: float = 6.0
    gamma: float = 1.0
    estimator: Literal["mws", "mss"] = "mws"
    dataset_size: int | None = Field(None, ge=1)


def log_importance_weights(batch_size: int, dataset_size: int) -> torch.Tensor:
    """(B, B) log weights of minibatch-stratified sampling (Chen et al. 2018, Appendix C.2).

    Row i estimates q(z_i) = (1/N) sum_n q(z_i | x_n): its own posterior (the diagonal) gets 1/N,
    one other member (the next one, cyclically) (N - M) / (N M), the remaining B - 2 members 1/M,
    with M = B - 1; each row sums to 1. (The reference code puts the 1/N on column 0 rather than
    on each sample's own posterior; we follow the paper.)
    """
    n, m = dataset_size, batch_size - 1
    if batch_size < 3:
        raise VaebenchError(f"beta_tcvae: minibatch-stratified sampling needs a batch of at least 3, "
                            f"got {batch_size}; raise train.batch_size or use estimator: mws")
    if dataset_size < batch_size:
        raise VaebenchError(f"beta_tcvae: dataset_size {dataset_size} is smaller than the batch "
                            f"({batch_size}); set dataset_size to the size of the training split")
    w = torch.full((batch_size, batch_size), 1.0 / m)
    rows = torch.arange(batch_size)
    w[rows, rows] = 1.0 / n
    w[rows, (rows + 1) % batch_size] = (n - m) / (n * m)
    return w.log()


def log_qz_estimates(z, mu, logvar, dataset_size: int, estimator: str = "mws"):
    """Minibatch estimates of log q(z_i) and sum_l log q(z_il) at each sample z_i, in nats.

    z, mu, logvar: (B, D), z_i drawn from q(z | x_i). Returns two (B,) tensors.
    MWS: log q(z) ~ logsumexp_j log q(z_i | x_j) - log(N B), as in the paper and its code.
    """
    b = z.shape[0]
    # (i, j, l): log q(z_il | x_j)
    log_q = gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])
    if estimator == "mws":
        log_nm = math.log(b * dataset_size)
        log_qz = torch.logsumexp(log_q.sum(2), dim=1) - log_nm
        log_prod_qzi = (torch.logsumexp(log_q, dim=1) - log_nm).sum(1)
    elif estimator == "mss":
        log_w = log_importance_weights(b, dataset_size).to(z)
        log_qz = torch.logsumexp(log_w + log_q.sum(2), dim=1)
        log_prod_qzi = torch.logsumexp(log_w[:, :, None] + log_q, dim=1).sum(1)
    else:
        raise ValueError(f"unknown estimator {estimator!r}; use 'mws' or 'mss'")
    return log_qz, log_prod_qzi


def total_correlation(z, mu, logvar, dataset_size: int, estimator: str = "mws") -> torch.Tensor:
    """Batch estimate of TC = KL(q(z) || prod_l q(z_l)) in nats."""
    log_qz, log_prod_qzi = log_qz_estimates(z, mu, logvar, dataset_size, estimator)
    return (log_qz - log_prod_qzi).mean()


@register_model("beta_tcvae", description="VAE with the total-correlation term of the KL weighted by "
                "beta (minibatch estimators)", paper="Chen et al. 2018, Isolating Sources of "
                "Disentanglement in Variational Autoencoders")
class BetaTCVAE(GaussianVAE):
    Config = BetaTCVAEConfig
    loss_scalars = ("alpha", "beta", "gamma")

    @property
    def dataset_size(self) -> int:
        """N of the estimators: the config's dataset_size, else the training split's size."""
        n = self.config.dataset_size or self.train_size
        if n is None:
            raise VaebenchError("beta_tcvae needs N, the size of the training split: the runner "
                                "hands it over (train_size); set dataset_size when building the "
                                "model by hand")
        return n

    def loss(self, x, y=None, step=0):
        cfg = self.config
        t = self.forward_terms(x, y)
        z, mu, logvar = t["z"], t["mu"], t["logvar"]
        n = self.dataset_size
        log_qz, log_prod_qzi = log_qz_estimates(z, mu, logvar, n, cfg.estimator)
        log_qz_x = gaussian_log_density(z, mu, logvar).sum(1)
        log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
        # Sample estimates; MI + TC + DWKL = log q(z|x) - log p(z), a one-sample KL estimate.
        mi = (log_qz_x - log_qz).mean()
        tc = (log_qz - log_prod_qzi).mean()
        dwkl = (log_prod_qzi - log_pz).mean()
        recon, kl = t["recon"].mean(), t["kl_dims"].sum(1).mean()
        loss = recon + cfg.alpha * mi + cfg.beta * tc + cfg.gamma * dwkl
        # MWS divides every density by N B, which puts (D - 1) log N on top of its TC (about 159
        # nats on dSprites at D = 10): a constant without effect on gradients that makes the
        # logged value unreadable. tc_free is the same estimate without it (MSS has none).
        tc_free = tc - (z.shape[1] - 1) * math.log(n) if cfg.estimator == "mws" else tc
        return {"loss": loss, "recon": recon, "kl": kl, "mi": mi, "tc": tc, "tc_free": tc_free,
                "dwkl": dwkl}
