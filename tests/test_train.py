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
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
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
class _PlantedCode:
    """Unpickling this would create a file: the proof that a checkpoint ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_runs_no_code_and_is_set_aside(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"model": _PlantedCode(marker), "step": 3}, run_dir / "checkpoint.pt")
    trainer = make(run_dir)
    result = trainer.run()
    assert not marker.exists()
    assert result.steps == 12 and result.resumed_from == 0 and result.sessions == 1  # afresh
    err = capsys.readouterr().err
    assert f"refused {run_dir / 'checkpoint.pt'}" in err and "could run code" in err
    assert "posix.system" in err or "os.system" in err
    (aside,) = run_dir.glob("checkpoint.pt.damaged-*")
    assert "refused" in (run_dir / "events.log").read_text()
    assert any("starts afresh" in note for note in result.recovery)
    assert not marker.exists()


def test_checkpoint_holds_only_tensors_and_plain_values(tmp_path):
    make(tmp_path, CFG | {"steps": 4}).run()
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # raises on anything else
    assert ckpt["step"] == 4 and isinstance(ckpt["rng"]["numpy"]["keys"], torch.Tensor)


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_damaged_checkpoint_resumes_from_the_previous_one_exactly(tmp_path, damage):
    straight = make(tmp_path / "a")
    straight.run()
    run_dir = tmp_path / "b"
    make(run_dir, CFG | {"steps": 8}).run()  # checkpoints at 4 (kept as prev) and 8
    ckpt = run_dir / "checkpoint.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes({"truncate": data[: len(data) // 2], "empty": b"",
                      "garbage": b"\xe9\x00not a checkpoint" * 50}[damage])
    resumed = make(run_dir)
    result = resumed.run()
    assert result.resumed_from == 4 and result.steps == 12
    for (name, p), q in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), name
    (aside,) = run_dir.glob("checkpoint.pt.damaged-*")
    assert aside.read_bytes() == ckpt.read_bytes() or aside.stat().st_size >= 0  # kept, not deleted
    log = (run_dir / "events.log").read_text()
    assert f"refused {ckpt}" in log and "damaged" in log and "resumed from" in log and "step 4" in log
    with open(run_dir / "train_log.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [2, 4, 6, 8, 10, 12]


def test_both_checkpoints_damaged_starts_afresh_and_matches_a_fresh_run(tmp_path):
    straight = make(tmp_path / "a")
    straight.run()
    run_dir = tmp_path / "b"
    make(run_dir, CFG | {"steps": 8}).run()
    (run_dir / "checkpoint.pt").write_bytes(b"")
    (run_dir / "checkpoint.prev.pt").write_bytes(b"PK\x03\x04 truncated")
    resumed = make(run_dir)
    result = resumed.run()
    assert result.resumed_from == 0 and result.steps == 12
    for (name, p), q in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), name
    assert len(list(run_dir.glob("checkpoint*.damaged-*"))) == 2
