import math

import pytest
import torch

from vaebench.errors import VaebenchError
from vaebench.models.hvae import HVAE, HVAEConfig, gaussian_kl_two, precision_weighted


def model(shape=(1, 64, 64), **kw):
    torch.manual_seed(0)
    return HVAE(HVAEConfig(**kw), shape, 0)


def test_precision_weighting_by_hand():
    one, zero = torch.tensor([1.0]), torch.tensor([0.0])
    # N(1, 1) combined with N(0, 1): variance 1/2, mean 1/2
    mu, logvar = precision_weighted(one, zero, zero, zero)
    assert mu.item() == pytest.approx(0.5) and logvar.exp().item() == pytest.approx(0.5)
    # N(2, var 1) with N(0, var 3): var = 1 / (1 + 1/3) = 0.75, mean = 0.75 * 2 = 1.5
    mu, logvar = precision_weighted(torch.tensor([2.0]), zero, zero, torch.tensor([math.log(3.0)]))
    assert mu.item() == pytest.approx(1.5) and logvar.exp().item() == pytest.approx(0.75)


def test_two_gaussian_kl_by_hand():
    # KL(N(1, 1) || N(0, 4)) = 0.5 (log 4 + (1 + 1^2) / 4 - 1)
    t = torch.tensor
    kl = gaussian_kl_two(t([1.0]), t([0.0]), t([0.0]), t([math.log(4.0)]))
    assert kl.item() == pytest.approx(0.5 * (math.log(4.0) + (1 + 1) / 4 - 1))


@pytest.mark.parametrize("shape,grids", [((1, 64, 64), [(2, 8, 8), (4, 4, 4)]),
                                         ((1, 28, 28), [(2, 14, 14), (4, 7, 7)])])
def test_multi_scale_layers(shape, grids):
    m = model(shape)
    bu = m.bottom_up(torch.rand(2, *shape))
    assert [tuple(mu.shape[1:]) for mu, _ in bu[:-1]] == grids
    assert bu[-1][0].shape == (2, 10)  # the top layer: a vector of latent_dim
    assert m.num_layers == 3


def test_per_layer_kl_is_non_negative_and_sums_to_the_total():
    m = model()
    x = torch.rand(4, 1, 64, 64).round()
    t = m.elbo_terms(x)
    layers = [t[f"kl_layer{l}"] for l in range(3)]
    assert all((k >= 0).all() for k in layers)
    assert torch.allclose(sum(layers), t["kl"])
    assert torch.allclose(t["elbo"], -(t["recon"] + t["kl"]))
    terms = m.loss(x)
    assert terms["kl"].item() == pytest.approx(sum(terms[f"kl_layer{l}"].item() for l in range(3)), rel=1e-5)
    assert terms["loss"].item() == pytest.approx((terms["recon"] + terms["kl"]).item(), rel=1e-6)


def test_top_layer_kl_is_the_standard_normal_kl_of_the_bottom_up_posterior():
    m = model()
    x = torch.rand(3, 1, 64, 64).round()
    mu, logvar = m.bottom_up(x)[-1]
    expected = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
    assert torch.allclose(m.elbo_terms(x)["kl_layer2"], expected, atol=1e-5)


def test_kl_warmup_scales_the_kl_term():
    m = model(kl_warmup_steps=100)
    x = torch.rand(3, 1, 64, 64).round()
    torch.manual_seed(1)
    terms = m.loss(x, step=25)
    assert terms["loss"].item() == pytest.approx((terms["recon"] + 0.25 * terms["kl"]).item(), rel=1e-6)


def test_representation_is_the_deterministic_top_posterior_mean():
    m = model()
    x = torch.rand(3, 1, 64, 64).round()
    assert torch.equal(m.representation(x), m.representation(x))
    assert torch.equal(m.representation(x), m.bottom_up(x)[-1][0])


def test_samples_follow_the_generator():
    m = model()
    a = m.sample(2, generator=torch.Generator().manual_seed(0))
    b = m.sample(2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (2, 1, 64, 64)


def test_too_many_spatial_layers_is_a_clear_error():
    with pytest.raises(VaebenchError, match="allow 1 to 2"):
        model((1, 28, 28), spatial_channels=(2, 2, 2))
