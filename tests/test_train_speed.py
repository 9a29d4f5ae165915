"""The CPU speed levers leave the numbers alone: fused Adam and channels_last train the same
parameters as the per-tensor Adam loop and NCHW, within float rounding."""

import torch

from vaebench.data.base import TensorImageDataset
from vaebench.models.vae import VAE, VAEConfig
from vaebench.runner.train import Trainer, seed_everything

CFG = {"steps": 4, "batch_size": 4, "lr": 1e-3, "beta1": 0.9, "beta2": 0.999,
       "checkpoint_every": 4, "log_every": 2, "optimizer": "adam"}


def dataset64(n=16):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n, 1, 64, 64, generator=g) > 0.7).to(torch.uint8) * 255
    y = torch.zeros(n, dtype=torch.long)
    return TensorImageDataset("tiny64", x, y, x[:4], y[:4], num_classes=1)


def test_fused_adam_matches_the_per_tensor_loop():
    torch.manual_seed(0)
    a = VAE(VAEConfig(latent_dim=4), (1, 28, 28), 0)
    b = VAE(VAEConfig(latent_dim=4), (1, 28, 28), 0)
    b.load_state_dict(a.state_dict())
    (fused,) = a.make_optimizers(1e-3)
    assert fused.defaults["fused"]
    loop = torch.optim.Adam(b.parameters(), lr=1e-3, foreach=False)
    x = torch.rand(8, 1, 28, 28).round()
    for step in range(5):
        for model, opt in ((a, fused), (b, loop)):
            torch.manual_seed(step)
            model.training_step(x, None, step, [opt])
    moved = 0.0
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
        moved = max(moved, (p - VAE(VAEConfig(latent_dim=4), (1, 28, 28), 0).state_dict()[name]).abs().max().item())
    assert moved > 1e-3  # the comparison is of trained weights, not of the initial ones


def test_channels_last_gives_the_nchw_gradients():
    torch.manual_seed(0)
    a = VAE(VAEConfig(latent_dim=4), (1, 64, 64), 0)
    b = VAE(VAEConfig(latent_dim=4), (1, 64, 64), 0)
    b.load_state_dict(a.state_dict())
    b = b.to(memory_format=torch.channels_last)
    x = torch.rand(6, 1, 64, 64).round()
    losses = []
    for model, batch in ((a, x), (b, x.contiguous(memory_format=torch.channels_last))):
        torch.manual_seed(1)
        loss = model.loss(batch)["loss"]
        loss.backward()
        losses.append(loss.item())
    assert abs(losses[0] - losses[1]) <= 1e-6 * abs(losses[0])
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        scale = p.grad.abs().max().item()
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5 * scale, msg=name)


def test_channels_last_training_matches_nchw(tmp_path):
    """Through the Trainer. Adam's first updates are lr * g / |g| elementwise, so a weight whose
    gradient is ~1e-8 (rounding noise) can move by up to lr either way: parameters are compared
    with a tolerance relative to lr, and nearly all of them exactly to 1e-6."""
    runs = {}
    for fmt in (False, True):
        seed_everything(0)
        model = VAE(VAEConfig(latent_dim=4), (1, 64, 64), 1)
        trainer = Trainer(model, dataset64(), CFG, tmp_path / str(fmt), seed=0, device=torch.device("cpu"),
                          progress=False, channels_last=fmt)
        runs[fmt] = (trainer.run(), trainer.model)
    assert runs[True][1].encoder.conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert runs[False][1].encoder.conv[0].weight.is_contiguous()
    lr, far, total = CFG["lr"], 0, 0
    for (name, p), q in zip(runs[False][1].named_parameters(), runs[True][1].parameters()):
        diff = (p - q).abs()
        assert diff.max() < 0.1 * lr, name
        far, total = far + int((diff > 1e-6).sum()), total + p.numel()
    assert far <= 1e-4 * total
    loss_nchw, loss_cl = runs[False][0].final_terms["loss"], runs[True][0].final_terms["loss"]
    assert abs(loss_nchw - loss_cl) <= 1e-5 * abs(loss_nchw)


def test_a_checkpoint_of_the_other_layout_resumes_with_its_moments_in_place(tmp_path):
    """A run checkpointed in NCHW (a GPU, or a pack) and resumed channels_last (on CPU), and the
    other way round, trains on as it would have: the loaded Adam moments take the parameters'
    layout (the fused kernel pairs elements by memory position; mismatched strides scrambled
    the moments and changed most weights)."""
    half = CFG | {"steps": 2, "checkpoint_every": 2}
    for first, then in ((False, True), (True, False)):
        seed_everything(0)
        Trainer(VAE(VAEConfig(latent_dim=4), (1, 64, 64), 1), dataset64(), half, tmp_path / f"r{first}",
                seed=0, device=torch.device("cpu"), progress=False, channels_last=first).run()
        seed_everything(0)
        resumed = Trainer(VAE(VAEConfig(latent_dim=4), (1, 64, 64), 1), dataset64(), CFG,
                          tmp_path / f"r{first}", seed=0, device=torch.device("cpu"), progress=False,
                          channels_last=then)
        assert resumed.run().resumed_from == 2
        seed_everything(0)
        straight = Trainer(VAE(VAEConfig(latent_dim=4), (1, 64, 64), 1), dataset64(), CFG,
                           tmp_path / f"s{first}", seed=0, device=torch.device("cpu"), progress=False,
                           channels_last=then)
        straight.run()
        far = total = 0
        for p, q in zip(resumed.model.parameters(), straight.model.parameters()):
            far, total = far + int(((p - q).abs() > 1e-5).sum()), total + p.numel()
        assert far <= 0.01 * total, (first, then, far / total)
