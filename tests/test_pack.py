"""A pack trains each member as its own separate Trainer run would (same seed, same data order,
same noise), and leaves each member's folder as a separate run would."""

import csv

import pytest
import torch

from vaebench.errors import VaebenchError
from vaebench.models.beta_vae import BetaVAE, BetaVAEConfig
from vaebench.models.factor_vae import FactorVAE, FactorVAEConfig
from vaebench.models.info_vae import InfoVAE, InfoVAEConfig
from vaebench.runner.pack import PackedTrainer, build_members
from vaebench.runner.train import Trainer, seed_everything
from tests.test_train import tiny_dataset

CFG = {"steps": 6, "batch_size": 8, "lr": 1e-3, "beta1": 0.9, "beta2": 0.999,
       "checkpoint_every": 6, "log_every": 3, "optimizer": "adam"}


def build():
    return BetaVAE(BetaVAEConfig(beta=4.0, latent_dim=4), (1, 28, 28), 3)


def separate(seed, run_dir, cfg=CFG):
    seed_everything(seed)
    t = Trainer(build(), tiny_dataset(), cfg, run_dir, seed, torch.device("cpu"), progress=False,
                channels_last=False)
    t.run()
    return t


def assert_same_training(a, b, lr):
    """Equal within float rounding; Adam can turn a rounding-level gradient into a step of up to
    lr on a weight, so the bound is relative to lr and almost every weight agrees to 1e-5."""
    far, total = 0, 0
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        diff = (p - q).abs()
        assert diff.max() < 0.1 * lr, name
        far, total = far + int((diff > 1e-5).sum()), total + p.numel()
    assert far <= 1e-4 * total


def test_pack_of_two_equals_two_separate_runs(tmp_path):
    members = build_members(build, [0, 1], [tmp_path / "p0", tmp_path / "p1"])
    packed = PackedTrainer(members, tiny_dataset(), CFG, torch.device("cpu")).run()
    alone = [separate(s, tmp_path / f"s{s}") for s in (0, 1)]
    for p, s in zip(packed, alone):
        assert_same_training(p.model, s.model, CFG["lr"])
    # the two seeds trained differently: the comparison is not of identical models
    diff = (packed[0].model.encoder.fc[0].weight - packed[1].model.encoder.fc[0].weight).abs().max()
    assert diff > 1e-2
    for k in (0, 1):
        with open(tmp_path / f"p{k}" / "train_log.csv") as f:
            rows = list(csv.DictReader(f))
        with open(tmp_path / f"s{k}" / "train_log.csv") as f:
            ref = list(csv.DictReader(f))
        assert [r["step"] for r in rows] == [r["step"] for r in ref] == ["3", "6"]
        for r, q in zip(rows, ref):
            assert float(r["loss"]) == pytest.approx(float(q["loss"]), rel=1e-4)


def test_a_packed_member_resumes_as_a_separate_run(tmp_path):
    members = build_members(build, [0], [tmp_path / "p"])
    PackedTrainer(members, tiny_dataset(), CFG | {"steps": 3}, torch.device("cpu")).run()
    seed_everything(0)
    resumed = Trainer(build(), tiny_dataset(), CFG, tmp_path / "p", 0, torch.device("cpu"),
                      progress=False, channels_last=False)
    result = resumed.run()
    assert result.resumed_from == 3 and result.sessions == 2
    assert_same_training(resumed.model, separate(0, tmp_path / "s").model, CFG["lr"])


def test_variants_that_cannot_be_packed_say_so(tmp_path):
    info = lambda: InfoVAE(InfoVAEConfig(latent_dim=4), (1, 28, 28), 3)  # noqa: E731
    members = build_members(info, [0], [tmp_path / "i"])
    with pytest.raises(VaebenchError, match="random numbers in its loss"):
        PackedTrainer(members, tiny_dataset(), CFG, torch.device("cpu")).train_step()
    factor = lambda: FactorVAE(FactorVAEConfig(latent_dim=4), (1, 28, 28), 3)  # noqa: E731
    with pytest.raises(VaebenchError, match="cannot be packed"):
        PackedTrainer(build_members(factor, [0], [tmp_path / "f"]), tiny_dataset(), CFG, torch.device("cpu"))
    other = build_members(lambda: BetaVAE(BetaVAEConfig(beta=1.0, latent_dim=4), (1, 28, 28), 3), [1],
                          [tmp_path / "b"])
    with pytest.raises(VaebenchError, match="share the model and its hyperparameters"):
        PackedTrainer(build_members(build, [0], [tmp_path / "a"]) + other, tiny_dataset(), CFG,
                      torch.device("cpu"))
