"""A pack trains each member as its own separate Trainer run would (same seed, same data order,
same noise), and leaves each member's folder as a separate run would."""

import csv
import json

import pytest
import torch

from vaebench.errors import VaebenchError
from vaebench.models.beta_vae import BetaVAE, BetaVAEConfig
from vaebench.models.factor_vae import FactorVAE, FactorVAEConfig
from vaebench.models.info_vae import InfoVAE, InfoVAEConfig
from vaebench.cli import main
from vaebench.runner.pack import NotPackable, PackedTrainer, build_member, build_members, plan_packs
from vaebench.runner.run import run_job
from vaebench.runner.suite import expand, load_suite
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


def assert_same_training(a, b, lr, steps_of_lr=0.1):
    """Equal within float rounding; Adam can turn a rounding-level gradient into a step of up to
    lr on a weight, so the bound is relative to lr and almost every weight agrees to 1e-5."""
    far, total = 0, 0
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        diff = (p - q).abs()
        assert diff.max() < steps_of_lr * lr, name
        far, total = far + int((diff > 1e-5).sum()), total + p.numel()
    assert far <= 1e-4 * total


def assert_same_weights(a_path, b_path):
    """Two model.pt files of one training within float rounding. A separate run trains
    channels_last on CPU, a pack in NCHW: rounding differs, and Adam turns a rounding-level
    gradient into a step of up to lr, so a few weights differ by more (0.3% by over 1e-5 after 6
    steps here), while another seed or a wrong resume changes nearly all of them."""
    a = torch.load(a_path, weights_only=True)
    b = torch.load(b_path, weights_only=True)
    far = sum(int(((a[k] - b[k]).abs() > 1e-5).sum()) for k in a)
    assert far <= 0.01 * sum(v.numel() for v in a.values())


def test_pack_of_two_equals_two_separate_runs(tmp_path):
    members = build_members(build, [0, 1], [tmp_path / "p0", tmp_path / "p1"])
    PackedTrainer(members, tiny_dataset(), CFG, torch.device("cpu")).run()
    packed = [m.model for m in members]
    alone = [separate(s, tmp_path / f"s{s}") for s in (0, 1)]
    for p, s in zip(packed, alone):
        assert_same_training(p, s.model, CFG["lr"])
    # the two seeds trained differently: the comparison is not of identical models
    diff = (packed[0].encoder.fc[0].weight - packed[1].encoder.fc[0].weight).abs().max()
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
    other = build_members(lambda: BetaVAE(BetaVAEConfig(beta=4.0, latent_dim=3), (1, 28, 28), 3), [1],
                          [tmp_path / "b"])
    with pytest.raises(VaebenchError, match=r"share the model and its hyperparameters \(but beta\)"):
        PackedTrainer(build_members(build, [0], [tmp_path / "a"]) + other, tiny_dataset(), CFG,
                      torch.device("cpu"))


def test_a_pack_resumes_from_its_members_checkpoints_as_one_pack(tmp_path):
    dirs = [tmp_path / "p0", tmp_path / "p1"]
    PackedTrainer(build_members(build, [0, 1], dirs), tiny_dataset(), CFG | {"steps": 3},
                  torch.device("cpu")).run()
    members = build_members(build, [0, 1], dirs)  # a new process: fresh models, same folders
    pack = PackedTrainer(members, tiny_dataset(), CFG, torch.device("cpu"))
    assert pack.step == 3
    results = pack.run()
    assert [(r.steps, r.sessions, r.resumed_from) for r in results] == [(6, 2, 3)] * 2
    for m, seed in zip(members, (0, 1)):
        assert_same_training(m.model, separate(seed, tmp_path / f"s{seed}").model, CFG["lr"])


def test_members_with_checkpoints_of_different_steps_are_not_packed(tmp_path):
    PackedTrainer(build_members(build, [0], [tmp_path / "p0"]), tiny_dataset(), CFG | {"steps": 3},
                  torch.device("cpu")).run()
    members = build_members(build, [0, 1], [tmp_path / "p0", tmp_path / "p1"])
    with pytest.raises(NotPackable, match=r"different steps \(steps \[3, 0\]\)"):
        PackedTrainer(members, tiny_dataset(), CFG, torch.device("cpu"))


def loss_scalar_variants():
    """Every registered model that declares loss scalars, with a config for a short test run."""
    from vaebench.registry import MODELS

    out = []
    for entry in MODELS.entries():
        cls = MODELS.get(entry.name)
        if cls.loss_scalars:
            # annealed_vae: a capacity that reaches c_max within the 6 steps, so c_max matters
            extra = {"iteration_threshold": 4} if "c_max" in cls.loss_scalars else {}
            out.append(pytest.param(cls, extra, id=entry.name))
    return out


@pytest.mark.parametrize("cls, extra", loss_scalar_variants())
def test_runs_that_differ_in_loss_scalars_pack_and_each_trains_as_alone(tmp_path, cls, extra):
    """Two members of one seed and different values of every loss scalar: each ends as its own
    separate training, so each member's values reached its loss (a value shared across the pack,
    or read where the pack cannot replace it, would make one of them differ)."""
    data = tiny_dataset()
    defaults = cls.Config()
    values = [{n: getattr(defaults, n) for n in cls.loss_scalars},
              {n: 2.5 * getattr(defaults, n) + 0.5 for n in cls.loss_scalars}]

    def builder(v):
        return lambda: cls(cls.Config(latent_dim=4, **extra, **v), (1, 28, 28), 3, data.num_examples("train"))

    members = [build_member(builder(v), 0, tmp_path / f"p{k}") for k, v in enumerate(values)]
    pack = PackedTrainer(members, data, CFG, torch.device("cpu"))
    assert sorted(pack.scalars) == sorted(cls.loss_scalars)
    pack.run()
    for k, v in enumerate(values):
        seed_everything(0)
        alone = Trainer(builder(v)(), data, CFG, tmp_path / f"s{k}", 0, torch.device("cpu"),
                        progress=False, channels_last=False)
        alone.run()
        # large weights (beta_tcvae's 15.5) scale rounding-level gradient differences up: a few
        # weights (3 of 1.7M for beta_tcvae) end up to one Adam step (lr) apart
        assert_same_training(members[k].model, alone.model, CFG["lr"], steps_of_lr=1.0)
    diff = (members[0].model.encoder.fc[0].weight - members[1].model.encoder.fc[0].weight).abs().max()
    assert diff > 1e-5  # one seed: the scalars alone made the two trainings differ


def spec_like(run_id, model="vae", seed=0, pack=4, **params):
    from vaebench.runner.suite import RunSpec

    return RunSpec(run_id=run_id, suite="s", dataset="d", dataset_params={}, model=model,
                   model_params=params, seed=seed, train={"steps": 1}, metrics=[], pack=pack)


def test_plan_groups_runs_of_one_configuration_up_to_the_pack_size():
    specs = ([spec_like(f"a{s}", seed=s, beta=1.0) for s in range(5)]
             + [spec_like(f"b{s}", seed=s, beta=4.0) for s in range(2)]
             + [spec_like(f"f{s}", model="factor_vae", seed=s) for s in range(2)])
    packs = [[s.run_id for s in p] for p in plan_packs(specs)]
    assert packs == [["a0", "a1", "a2", "a3"], ["a4"], ["b0", "b1"], ["f0"], ["f1"]]
    # beta is a loss scalar of beta_vae (not of vae): its values share packs, its latent size not
    betas = [spec_like(f"beta{b}", model="beta_vae", beta=b) for b in (1.0, 2.0, 4.0)] \
        + [spec_like("wide", model="beta_vae", beta=1.0, latent_dim=12)]
    assert [[s.run_id for s in p] for p in plan_packs(betas)] == [["beta1.0", "beta2.0", "beta4.0"], ["wide"]]
    assert [[s.run_id for s in p] for p in plan_packs([spec_like("x", pack=1), spec_like("y", seed=1, pack=1)])] \
        == [["x"], ["y"]]


PACK_SUITE = """
name: packed
datasets: [{name: dsprites_procedural, params: {train_size: 256, test_size: 64}}]
models: [{name: beta_vae, grid: {beta: [1, 4]}}, info_vae]
seeds: [0, 1]
pack: 4
train: {steps: 6, batch_size: 8, lr: 1.0e-3, checkpoint_every: 3, log_every: 3}
metrics: [{name: elbo, params: {num_examples: 32}}]
"""


def test_a_packed_suite_gives_each_run_what_its_separate_training_gives(tmp_path, capsys):
    """Through the local executor: the beta_vae runs (two betas, two seeds) train as a pack of
    4 in one process, the info_vae runs (noise drawn in the loss) are found unpackable and train
    alone; every run's folder and scores are those of its separate training, and the run ids do
    not change."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(PACK_SUITE)
    assert main(["run", str(suite), "--results", str(tmp_path / "packed"), "--no-progress",
                 "--no-report", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "6 run(s) in 2 pack(s)" in out and out.count("pack of 4") == 4 and out.count("pack of 2") == 2
    specs = expand(load_suite(suite, ["pack=1"]))
    for spec in specs:
        run_job(spec, tmp_path / "alone", tmp_path, progress=False)
    for spec in specs:
        packed = json.loads((tmp_path / "packed" / "packed" / spec.run_id / "metrics.json").read_text())
        assert_same_weights(tmp_path / "packed" / "packed" / spec.run_id / "model.pt",
                            tmp_path / "alone" / "packed" / spec.run_id / "model.pt")
        events = (tmp_path / "packed" / "packed" / spec.run_id / "events.log").read_text()
        if spec.model == "beta_vae":
            assert packed["cost"]["pack_size"] == 4 and "trained in a pack of 4" in events
        else:
            assert packed["cost"]["pack_size"] == 1 and "random numbers in its loss" in events


def test_a_pack_that_stops_leaves_each_run_to_train_alone_from_its_checkpoint(tmp_path, monkeypatch):
    """A failure inside the pack (here an exception at step 4, after the pack's checkpoint at
    step 3) is not the runs' failure: each resumes alone from the checkpoint the pack wrote and
    ends as its separate training would."""
    from vaebench.runner.run import run_pack

    suite = tmp_path / "suite.yaml"
    suite.write_text(PACK_SUITE.replace("grid: {beta: [1, 4]}", "params: {beta: 4}").replace(", info_vae]", "]"))
    specs = expand(load_suite(suite))
    step = PackedTrainer.train_step

    def failing_step(self):
        if self.step == 4:
            raise RuntimeError("boom")
        return step(self)

    monkeypatch.setattr(PackedTrainer, "train_step", failing_step)
    statuses = run_pack(specs, tmp_path / "r", tmp_path, progress=False)
    assert [s["status"] for s in statuses] == ["done", "done"]
    monkeypatch.setattr(PackedTrainer, "train_step", step)
    for spec in specs:
        run_dir = tmp_path / "r" / "packed" / spec.run_id
        cost = json.loads((run_dir / "metrics.json").read_text())["cost"]
        assert (cost["pack_size"], cost["sessions"], cost["resumed_from_step"]) == (1, 2, 3)
        assert "its pack of 2 stopped (RuntimeError('boom'))" in (run_dir / "events.log").read_text()
        run_job(spec, tmp_path / "alone", tmp_path, progress=False)
        assert_same_weights(run_dir / "model.pt", tmp_path / "alone" / "packed" / spec.run_id / "model.pt")
