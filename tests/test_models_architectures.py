"""The 64x64 networks against disentanglement_lib's conv_encoder / deconv_decoder.

Reference counts, by hand from architectures.py of google-research/disentanglement_lib (latent 10,
one channel): encoder e1 1*32*16+32, e2 32*32*16+32, e3 32*64*4+64, e4 64*64*4+64, e5 1024*256+256,
means and log_var 2 * (256*10+10) = 309,204; decoder 10*256+256, 256*1024+1024, 64*64*16+64,
64*32*16+32, 32*32*16+32, 32*1*16+1 = 381,313.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vaebench.models.architectures import ConvDecoder, ConvEncoder, Deconv4x4
from vaebench.models.vae import VAE, VAEConfig


def _count(m):
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_the_reference():
    assert _count(ConvEncoder((1, 64, 64), 20, heads=2)) == 309_204
    assert _count(ConvDecoder((1, 64, 64), 10)) == 381_313


def test_layer_shapes_match_the_reference():
    enc = ConvEncoder((1, 64, 64), 20, heads=2)
    convs = [m for m in enc.conv if isinstance(m, nn.Conv2d)]
    assert [tuple(c.weight.shape) for c in convs] == [(32, 1, 4, 4), (32, 32, 4, 4), (64, 32, 2, 2), (64, 64, 2, 2)]
    h, sizes = torch.zeros(2, 1, 64, 64), []
    for c in convs:
        h = c(h)
        sizes.append(h.shape[-1])
    assert sizes == [32, 16, 8, 4]  # TF "same" with stride 2 halves each side
    assert [tuple(l.weight.shape) for l in enc.fc if isinstance(l, nn.Linear)] == [(256, 1024), (20, 256)]

    dec = ConvDecoder((1, 64, 64), 10)
    assert [tuple(l.weight.shape) for l in dec.fc if isinstance(l, nn.Linear)] == [(256, 10), (1024, 256)]
    deconvs = [m for m in dec.deconv if isinstance(m, nn.ConvTranspose2d)]
    # ConvTranspose2d weight is (in, out, kh, kw): 64 -> 64 -> 32 -> 32 -> 1
    assert [tuple(d.weight.shape) for d in deconvs] == [(64, 64, 4, 4), (64, 32, 4, 4), (32, 32, 4, 4), (32, 1, 4, 4)]
    h, sizes = torch.zeros(2, 64, 4, 4), []
    for d in deconvs:
        h = d(h)
        sizes.append(h.shape[-1])
    assert sizes == [8, 16, 32, 64]
    assert not isinstance(dec.deconv[-1], nn.ReLU)  # logits


def test_biases_are_zero_and_weights_within_glorot_bounds():
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=10), (1, 64, 64), 0)
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    assert len(layers) == 6 + 6
    for m in layers:
        assert torch.count_nonzero(m.bias) == 0
        w = m.weight
        if isinstance(m, nn.Linear):
            fan_in, fan_out = w.shape[1], w.shape[0]
        elif isinstance(m, nn.Conv2d):
            fan_in, fan_out = w[0].numel(), w.shape[0] * w[0, 0].numel()
        else:  # transposed: (in, out, kh, kw); TF's kernel (kh, kw, out, in) has the same fan sum
            fan_in, fan_out = w.shape[1] * w[0, 0].numel(), w.shape[0] * w[0, 0].numel()
        if m is model.encoder.fc[2]:
            fan_out //= 2  # two heads, means and log_var, each 256 -> 10
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert w.abs().max() <= bound
        # uniform on (-a, a) fills its range: the largest of >= 40 draws is near a, the std is a/sqrt(3)
        assert w.abs().max() > 0.8 * bound
        assert abs(w.std().item() - bound / math.sqrt(3)) < 0.2 * bound / math.sqrt(3)


def test_the_two_heads_get_separate_bounds():
    torch.manual_seed(0)
    w = ConvEncoder((1, 64, 64), 20, heads=2).fc[2].weight
    one = math.sqrt(6.0 / (256 + 20))  # a single 256 -> 20 layer's bound
    assert w.abs().max() > one  # only reachable with the per-head bound sqrt(6 / 266)


@pytest.mark.parametrize("c_in, c_out, size", [(32, 1, 8), (32, 32, 8), (64, 32, 4)])
def test_the_decoders_transposed_convolution_is_conv_transpose2d(c_in, c_out, size):
    """Deconv4x4's channels_last CPU path (its own bias gradient, and a matmul + col2im forward
    to one channel) against F.conv_transpose2d: the same outputs and gradients within float
    rounding, in NCHW and under vmap (a pack) it is nn.ConvTranspose2d's own path."""
    torch.manual_seed(0)
    layer = Deconv4x4(c_in, c_out)
    nn.init.normal_(layer.bias)
    x = torch.randn(3, c_in, size, size)
    g = torch.randn(3, c_out, 2 * size, 2 * size)
    ref = F.conv_transpose2d(x.requires_grad_(), layer.weight, layer.bias, stride=2, padding=1)
    ref_grads = torch.autograd.grad(ref, (x, layer.weight, layer.bias), g)
    x_cl = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    out = layer(x_cl)
    assert type(out.grad_fn).__name__ == "_Deconv4x4Backward"
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(torch.autograd.grad(out, (x_cl, layer.weight, layer.bias), g), ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4 * want.abs().max().item())
    assert type(layer(x.detach()).grad_fn).__name__ == "ConvolutionBackward0"
    batched = torch.func.vmap(layer)(torch.stack([x_cl.detach(), x_cl.detach()]))
    torch.testing.assert_close(batched[1], ref, rtol=1e-5, atol=1e-5)
