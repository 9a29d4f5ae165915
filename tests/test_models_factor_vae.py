import pytest
import torch
from torch import nn

from vaebench.models.factor_vae import FactorVAE, FactorVAEConfig, permute_dims


def small_model(**kw):
    torch.manual_seed(0)
    cfg = FactorVAEConfig(**({"latent_dim": 4, "disc_hidden": 32} | kw))
    return FactorVAE(cfg, (1, 28, 28), 0)


def test_permutation_keeps_every_marginal_and_breaks_the_rows():
    z = torch.randn(64, 5)
    zp = permute_dims(z, torch.Generator().manual_seed(0))
    assert torch.equal(zp.sort(0).values, z.sort(0).values)  # each column: same values
    assert not torch.equal(zp, z)
    # Dimensions are permuted independently: rows of the result are not rows of z.
    rows = {tuple(r) for r in z.tolist()}
    assert sum(tuple(r) in rows for r in zp.tolist()) < 10


def test_discriminator_is_the_papers_mlp():
    model = FactorVAE(FactorVAEConfig(), (1, 28, 28), 0)
    linears = [m for m in model.discriminator if isinstance(m, nn.Linear)]
    shapes = [(m.in_features, m.out_features) for m in linears]
    assert shapes == [(10, 1000)] + [(1000, 1000)] * 5 + [(1000, 2)]
    assert sum(isinstance(m, nn.LeakyReLU) for m in model.discriminator) == 6


def test_discriminator_has_its_own_optimizer():
    model = small_model()
    vae_opt, disc_opt = model.make_optimizers(1e-4)
    vae_ids = {id(p) for g in vae_opt.param_groups for p in g["params"]}
    disc_ids = {id(p) for g in disc_opt.param_groups for p in g["params"]}
    assert vae_ids.isdisjoint(disc_ids)
    assert vae_ids | disc_ids == {id(p) for p in model.parameters()}
    assert disc_ids == {id(p) for p in model.discriminator.parameters()}
    assert disc_opt.param_groups[0]["betas"] == (0.5, 0.9) and disc_opt.param_groups[0]["lr"] == 1e-4


def _snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def _changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


@pytest.mark.parametrize("frozen", ["vae", "discriminator"])
def test_each_optimizer_steps_only_its_own_parameters(frozen):
    # With one optimizer's learning rate at 0, only the other part of the model may move.
    model = small_model(disc_lr=0.0 if frozen == "discriminator" else 1e-3)
    opts = model.make_optimizers(0.0 if frozen == "vae" else 1e-3)
    enc, disc = _snapshot(model.encoder), _snapshot(model.discriminator)
    terms = model.training_step(torch.rand(8, 1, 28, 28).round(), None, 0, opts)
    assert _changed(enc, model.encoder) == (frozen != "vae")
    assert _changed(disc, model.discriminator) == (frozen != "discriminator")
    assert {"loss", "recon", "kl", "tc", "disc_loss", "disc_acc"} <= set(terms)
    assert 0.0 <= terms["disc_acc"].item() <= 1.0


def test_vae_loss_is_elbo_plus_gamma_times_the_discriminators_log_ratio():
    model = small_model(gamma=35.0)
    x = torch.rand(6, 1, 28, 28).round()
    torch.manual_seed(1)
    terms = model.loss(x)
    torch.manual_seed(1)
    t = model.forward_terms(x)
    logits = model.discriminator(t["z"])
    tc = (logits[:, 0] - logits[:, 1]).mean()
    expected = t["recon"].mean() + t["kl_dims"].sum(1).mean() + 35.0 * tc
    assert terms["tc"].item() == pytest.approx(tc.item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_discriminator_learns_to_spot_permuted_codes():
    # Strongly correlated codes: a discriminator trained on them vs. their permutation gets accurate.
    torch.manual_seed(0)
    cfg = FactorVAEConfig(latent_dim=2, disc_hidden=64, disc_layers=2)
    disc = FactorVAE(cfg, (1, 28, 28), 0).discriminator
    opt = torch.optim.Adam(disc.parameters(), lr=1e-3)
    for _ in range(300):
        a = torch.randn(128, 1)
        z = torch.cat([a, a + 0.1 * torch.randn(128, 1)], 1)
        logits = disc(torch.cat([z, permute_dims(z)]))
        labels = torch.cat([torch.zeros(128), torch.ones(128)]).long()
        loss = nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = (logits.argmax(1) == labels).float().mean().item()
    assert acc > 0.85


@pytest.mark.parametrize("two", [True, False])
def test_minibatches_seen_by_the_vae_step(two, monkeypatch):
    model = small_model(two_minibatches=two)
    seen = []
    original = model.forward_terms
    monkeypatch.setattr(model, "forward_terms", lambda x, y=None: seen.append(len(x)) or original(x, y))
    model.training_step(torch.rand(8, 1, 28, 28).round(), None, 0, model.make_optimizers(1e-3))
    assert seen == ([4] if two else [8])


def test_default_trains_the_vae_on_the_whole_batch_as_disentanglement_lib():
    assert FactorVAEConfig().two_minibatches is False
    model = FactorVAE(FactorVAEConfig(latent_dim=3, disc_hidden=8, disc_layers=2), (1, 28, 28), 0)
    seen = []
    original = model.forward_terms
    model.forward_terms = lambda x, y=None: seen.append(len(x)) or original(x, y)
    model.training_step(torch.rand(64, 1, 28, 28).round(), None, 0, model.make_optimizers(1e-3))
    assert seen == [64]
