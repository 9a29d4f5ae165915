import math

import pytest
import torch

from vaebench.models.vq_vae import VQVAE, VectorQuantizer, VQVAEConfig, perplexity

TINY = {"num_codes": 16, "code_dim": 4, "hidden": 16, "res_hidden": 8,
        "prior_channels": 8, "prior_layers": 2, "prior_steps": 3, "prior_batch_size": 4}


def tiny(**kw):
    torch.manual_seed(0)
    return VQVAE(VQVAEConfig(**(TINY | kw)), (1, 28, 28), 0)


def test_nearest_code_by_hand():
    vq = VectorQuantizer(3, 2, ema=False, decay=0.99)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]))
    assert vq.nearest(torch.tensor([[0.9, 0.8], [4.0, 4.0], [-1.0, 0.0]])).tolist() == [1, 2, 0]


def test_straight_through_gradient_reaches_the_encoder_unchanged():
    model = tiny()
    x = torch.rand(4, 1, 28, 28).round()
    z_e = model.encode(x)
    z_st, z_q, *_ = model.quantize(z_e)
    z_e.retain_grad()
    z_st.retain_grad()
    model.decode(z_st).sum().backward()
    assert torch.allclose(z_st, z_q, atol=1e-6)  # forward value: the quantised codes
    assert torch.allclose(z_e.grad, z_st.grad)  # backward: copied to z_e as is
    assert model.encoder[0].weight.grad.abs().sum() > 0
    assert model.quantizer.codebook.grad is None  # only the codebook term trains the codebook


def test_loss_terms_by_hand():
    model = tiny(commitment_cost=0.25)
    x = torch.rand(4, 1, 28, 28).round()
    terms = model.loss(x)
    z_e = model.encode(x)
    z_q = model.quantize(z_e)[1]
    sq = (z_e - z_q).pow(2).flatten(1).sum(1).mean()
    assert terms["commitment"].item() == pytest.approx(sq.item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx((terms["recon"] + 1.25 * sq).item(), rel=1e-5)
    terms["loss"].backward()
    assert model.quantizer.codebook.grad.abs().sum() > 0


def test_ema_update_by_hand():
    vq = VectorQuantizer(2, 1, ema=True, decay=0.5)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0], [10.0]]))
        vq.ema_sum.copy_(vq.codebook)
    vq.ema_update(torch.tensor([[1.0], [3.0], [11.0]]), torch.tensor([0, 0, 1]))
    # N = 0.5 * 1 + 0.5 * (2, 1) = (1.5, 1.0);  m = 0.5 * (0, 10) + 0.5 * (1 + 3, 11) = (2, 10.5)
    assert vq.ema_count.tolist() == pytest.approx([1.5, 1.0])
    assert vq.codebook[:, 0].tolist() == pytest.approx([2 / 1.5, 10.5], rel=1e-4)


def test_ema_mode_moves_codes_without_the_optimizer():
    model = tiny(codebook_update="ema")
    (opt,) = model.make_optimizers(1e-3)
    assert all(p is not model.quantizer.codebook for g in opt.param_groups for p in g["params"])
    before = model.quantizer.codebook.detach().clone()
    model.training_step(torch.rand(4, 1, 28, 28).round(), None, 0, [opt])
    assert not torch.equal(before, model.quantizer.codebook)


def test_perplexity_and_usage_logging():
    assert perplexity(torch.tensor([5, 5, 5, 5])).item() == pytest.approx(4.0)
    assert perplexity(torch.tensor([9, 0, 0, 0])).item() == pytest.approx(1.0)
    terms = tiny().loss(torch.rand(4, 1, 28, 28).round())
    assert 1 <= terms["codes_used"].item() <= 16 and 1 <= terms["perplexity"].item() <= 16


def test_elbo_kl_is_log_k_per_position_and_representation_is_flat_z_e():
    model = tiny()
    x = torch.rand(3, 1, 28, 28).round()
    t = model.elbo_terms(x)
    assert torch.allclose(t["kl"], torch.full((3,), 7 * 7 * math.log(16)))
    assert torch.allclose(t["elbo"], -(t["recon"] + t["kl"]))
    assert torch.equal(model.representation(x), model.encode(x).flatten(1))
    assert model.representation(x).shape == (3, 4 * 7 * 7)


class _Data:
    image_shape, num_classes = (1, 28, 28), 0

    def __init__(self):
        self.x = torch.rand(20, 1, 28, 28).round()

    def num_examples(self, split):
        return len(self.x)

    def batch(self, split, idx, device="cpu"):
        return self.x[idx], torch.zeros(len(idx), dtype=torch.long)


def test_after_training_fits_the_pixelcnn_prior_and_sampling_uses_it():
    model = tiny()
    assert not bool(model.prior_fitted)
    out = model.after_training(_Data(), torch.device("cpu"), seed=0)
    assert out["prior"] == "pixelcnn" and out["prior_steps"] == 3
    assert 0 < out["prior_seconds"] < 60  # the prior's own wall time, apart from training
    assert out["uniform_prior_nll_nats"] == pytest.approx(49 * math.log(16))
    assert 1 <= out["codebook_used"] <= 16
    assert bool(model.prior_fitted)
    assert "prior_fitted" in model.state_dict()
    s = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert s.shape == (3, 1, 28, 28) and 0 <= s.min() and s.max() <= 1
    skipped = tiny(prior_steps=0).after_training(_Data(), torch.device("cpu"), 0)
    assert skipped["prior"] == "uniform" and skipped["prior_seconds"] == 0.0


def test_elbo_kl_is_minus_log_prior_of_the_codes_once_the_prior_is_fitted():
    torch.manual_seed(0)
    model = tiny()
    x = torch.rand(4, 1, 28, 28).round()
    uniform = model.elbo_terms(x)["kl"]
    assert torch.allclose(uniform, torch.full((4,), 49 * math.log(16)))
    model.after_training(_Data(), torch.device("cpu"), seed=0)
    with torch.no_grad():
        terms = model.elbo_terms(x)
        codes = model.quantize(model.encode(x))[2]
        assert torch.allclose(terms["kl"], model.prior.nll(codes))
        assert torch.allclose(terms["elbo"], -(terms["recon"] + terms["kl"]))
    assert not torch.allclose(terms["kl"], uniform)
