"""The training loop: resume equals an uninterrupted run, NaN stops the run, logs are kept."""

import csv

import pytest
import torch

from vaebench.data.base import TensorImageDataset
from vaebench.models.base import GaussianVAE
from vaebench.models.vae import VAE, VAEConfig
from vaebench.runner.train import NonFiniteLoss, Trainer, seed_everything

CFG = {"steps": 12, "batch_size": 8, "lr": 1e-3, "beta1": 0.9, "beta2": 0.999,
       "checkpoint_every": 4, "log_every": 2, "optimizer": "adam"}


def tiny_dataset(n=64):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n, 1, 28, 28, generator=g) > 0.7).to(torch.uint8) * 255
    y = torch.randint(0, 3, (n,), generator=g)
    return TensorImageDataset("tiny", x, y, x[:16], y[:16], num_classes=3)


def make(run_dir, cfg=CFG, model_cls=VAE):
    seed_everything(0)
    model = model_cls(VAEConfig(latent_dim=4), (1, 28, 28), 3)
    return Trainer(model, tiny_dataset(), cfg, run_dir, seed=0, device=torch.device("cpu"), progress=False)


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    straight = make(tmp_path / "a")
    result = straight.run()
    assert result.steps == 12 and result.sessions == 1

    first = make(tmp_path / "b", CFG | {"steps": 8})
    first.run()
    resumed = make(tmp_path / "b")  # a fresh process would build the model from scratch
    result_b = resumed.run()
    assert result_b.steps == 12 and result_b.sessions == 2 and result_b.resumed_from == 8
    for (name, p), q in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), name

    with open(tmp_path / "b" / "train_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8, 10, 12]
    assert [int(r["session"]) for r in rows] == [0, 0, 0, 0, 1, 1]
    assert {"loss", "recon", "kl", "images_per_s"} <= set(rows[0])


def test_finished_run_does_not_train_again(tmp_path):
    make(tmp_path).run()
    again = make(tmp_path)
    before = {k: v.clone() for k, v in again.model.state_dict().items()}
    result = again.run()
    assert result.steps == 12
    assert any(not torch.equal(before[k], v) for k, v in again.model.state_dict().items())  # loaded
    assert again.step == 12


class ExplodingVAE(GaussianVAE):
    def loss(self, x, y=None, step=0):
        terms = super().loss(x, y, step)
        if step >= 3:
            terms["loss"] = terms["loss"] * float("nan")
        return terms


def test_nan_loss_stops_the_run_before_a_bad_checkpoint(tmp_path):
    trainer = make(tmp_path, CFG | {"checkpoint_every": 2, "log_every": 4}, model_cls=ExplodingVAE)
    with pytest.raises(NonFiniteLoss, match="non-finite loss by step 4"):
        trainer.run()
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_cpu_peak_memory_is_per_run_after_a_reset():
    from vaebench.runner.train import peak_memory, reset_peak_memory

    cpu = torch.device("cpu")
    big = torch.ones(400 * 2**20 // 4)  # 400 MiB resident
    del big
    before, kind = peak_memory(cpu)
    assert kind == "cpu_peak_rss_of_run"
    reset_peak_memory(cpu)
    after, _ = peak_memory(cpu)
    assert before - after > 300 * 2**20  # the earlier 400 MiB no longer counts
