import math

import pytest
import torch

from vaebench.models.info_vae import InfoVAE, InfoVAEConfig, kernel_matrix, mmd


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_mmd_of_identical_samples_is_zero(kernel):
    z = torch.randn(50, 4)
    assert mmd(z, z.clone(), kernel).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_mmd_grows_with_a_shift(kernel):
    torch.manual_seed(0)
    z = torch.randn(200, 4)
    fresh = torch.randn(200, 4)
    values = [mmd(z, fresh + s, kernel).item() for s in (0.0, 0.5, 1.0, 2.0)]
    assert values[0] < 0.02
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_kernels_and_mmd_by_hand_in_one_dimension():
    a, b = torch.tensor([[0.0]]), torch.tensor([[1.0]])  # D = 1: rbf scale D^2 = 1, imq 2 D = 2
    assert kernel_matrix(a, b, "rbf").item() == pytest.approx(math.exp(-1.0))
    assert kernel_matrix(a, b, "imq").item() == pytest.approx(2 / 3)
    assert mmd(a, b, "rbf").item() == pytest.approx(2 - 2 * math.exp(-1.0))
    assert mmd(a, b, "imq").item() == pytest.approx(2 - 4 / 3)


def test_rbf_kernel_is_the_authors_exp_of_mean_square_over_dim():
    """MMD-VAE's released code: exp(-mean_d (a_d - b_d)^2 / D), i.e. scale D^2, not 2 D."""
    torch.manual_seed(0)
    a, b = torch.randn(5, 10), torch.randn(7, 10)
    authors = torch.exp(-((a[:, None, :] - b[None, :, :]) ** 2).mean(2) / 10)
    assert torch.allclose(kernel_matrix(a, b, "rbf"), authors, atol=1e-6)
    # the bandwidth is a parameter: 2 D gives the earlier, 5x larger kernel scale at D = 10
    old = torch.exp(-torch.cdist(a, b).pow(2) / 20)
    assert torch.allclose(kernel_matrix(a, b, "rbf", bandwidth=20.0), old, atol=1e-6)
    assert not torch.allclose(kernel_matrix(a, b, "rbf"), old, atol=1e-3)


def test_loss_weights_kl_and_mmd_as_in_the_paper():
    torch.manual_seed(0)
    model = InfoVAE(InfoVAEConfig(alpha=0.25, lambda_=10.0, latent_dim=3), (1, 28, 28), 0)
    terms = model.loss(torch.rand(6, 1, 28, 28).round())
    expected = terms["recon"] + 0.75 * terms["kl"] + 9.25 * terms["mmd"]
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms["mmd"].item() >= 0
