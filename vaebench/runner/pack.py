"""Packed runs: K runs of one architecture trained as one batched (vmapped) computation.

The members of a pack share the model class, its config, the dataset and the train config, and
differ in seed. Their parameters are stacked along a new leading dimension and one training step
is `torch.func.vmap` of the model's loss over that dimension (convolutions with stacked weights
become grouped convolutions), so small models fill the machine's cores together instead of one
after the other.

Each member is trained exactly as `Trainer` would train it alone (tests/test_pack.py checks the
parameters against separate Trainer runs):
- its batches are drawn by index from its own generator seeded with its seed;
- its reparameterisation noise is drawn from its own generator, started from the global RNG
  state that a separate run would have after `seed_everything(seed)` and building the model, and
  handed to the model through `GaussianVAE.noise_like` (one draw of mu's shape per step);
- Adam over the stacked tensors is elementwise, so it is each member's own Adam.
A variant that draws other random numbers in its loss (info_vae's prior samples), or has its own
`training_step` (factor_vae) or optimizers (vq_vae), cannot be packed: vmap refuses random calls
inside it, and the pack says so.

At the end (and every `checkpoint_every` steps) each member's parameters, Adam state, step count,
RNG states and log are written into its own run folder through a `Trainer`, in Trainer's own
checkpoint and log format, so a member's folder reads (and resumes) as a separately trained run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, vmap

from vaebench.errors import VaebenchError
from vaebench.models.base import GaussianVAE, LatentVariableModel, adam
from vaebench.runner.train import Trainer, seed_everything


@dataclass
class PackMember:
    """One run of a pack: its model as built after seed_everything(seed), the global RNG state
    right after building it (where its noise stream starts), and its run folder."""

    model: LatentVariableModel
    seed: int
    noise_state: torch.Tensor
    run_dir: Path


def build_members(build, seeds, run_dirs) -> list[PackMember]:
    """Build each member's model as a separate run would: seed_everything(seed), then build()."""
    members = []
    for seed, run_dir in zip(seeds, run_dirs, strict=True):
        seed_everything(seed)
        model = build()
        members.append(PackMember(model, seed, torch.get_rng_state(), Path(run_dir)))
    return members


class _Loss(nn.Module):
    """model.loss as a module's forward, so functional_call can swap in one member's parameters."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, y, step, eps):
        calls = []

        def noise_like(mu):
            calls.append(mu.shape)
            return eps

        self.model.noise_like = noise_like
        try:
            terms = self.model.loss(x, y, step)
        finally:
            del self.model.noise_like
        if len(calls) != 1:
            raise VaebenchError(f"{type(self.model).__name__} draws its noise {len(calls)} times a step; "
                                f"a pack supplies one draw (runs of this variant cannot be packed)")
        return terms


def _check_packable(models) -> None:
    first = models[0]
    for m in models:
        if type(m) is not type(first) or m.hyperparameters() != first.hyperparameters():
            raise VaebenchError("a pack's runs must share the model and its hyperparameters; "
                                f"got {type(m).__name__} {m.hyperparameters()} and "
                                f"{type(first).__name__} {first.hyperparameters()}")
    cls = type(first)
    if not isinstance(first, GaussianVAE) or cls.training_step is not LatentVariableModel.training_step \
            or cls.make_optimizers is not LatentVariableModel.make_optimizers:
        raise VaebenchError(f"{cls.__name__} cannot be packed: a pack trains Gaussian VAEs with the "
                            f"default training step and one Adam")
    if any(True for _ in first.buffers()):
        raise VaebenchError(f"{cls.__name__} has buffers (running statistics); a pack does not stack them")


class PackedTrainer:
    """Trains the members' models as one vmapped computation; one folder per member."""

    def __init__(self, members: list[PackMember], dataset, train_cfg: dict, device: torch.device):
        if not members:
            raise VaebenchError("a pack needs at least one run")
        _check_packable([m.model for m in members])
        self.members, self.dataset, self.cfg, self.device = members, dataset, train_cfg, device
        for m in members:
            m.model.to(device).train()
        template = members[0].model
        self.names = [n for n, _ in template.named_parameters()]
        self.params = {n: torch.stack([dict(m.model.named_parameters())[n].detach() for m in members])
                       .requires_grad_() for n in self.names}
        self.optimizer = adam(self.params.values(), lr=train_cfg["lr"],
                              betas=(train_cfg["beta1"], train_cfg["beta2"]))
        self.loss_module = _Loss(template)
        self.data_gens = [torch.Generator().manual_seed(m.seed) for m in members]
        self.noise_gens = [torch.Generator() for _ in members]
        for g, m in zip(self.noise_gens, members):
            g.set_state(m.noise_state)
        self.latent_dim = template.config.latent_dim
        self.step, self.train_seconds = 0, 0.0
        self.log_rows: list[list[dict]] = [[] for _ in members]

    def _batched_loss(self, params, x, y, eps):
        step = self.step

        def one(p, x_k, y_k, eps_k):
            return functional_call(self.loss_module, {f"model.{n}": v for n, v in p.items()},
                                   (x_k, y_k, step, eps_k))

        try:
            return vmap(one, randomness="error")(params, x, y, eps)
        except RuntimeError as e:
            if "randomness" not in str(e):
                raise
            raise VaebenchError(f"{type(self.loss_module.model).__name__} draws random numbers in its loss "
                                f"besides the reparameterisation noise; its runs cannot be packed") from e

    def train_step(self) -> dict[str, torch.Tensor]:
        """One step of every member; returns the terms, each (K,)."""
        batch_size, n_train = self.cfg["batch_size"], self.dataset.num_examples("train")
        xs, ys, eps = [], [], []
        for data_gen, noise_gen in zip(self.data_gens, self.noise_gens):
            idx = torch.randint(0, n_train, (batch_size,), generator=data_gen)
            x, y = self.dataset.batch("train", idx, self.device)
            xs.append(x)
            ys.append(y)
            eps.append(torch.randn(batch_size, self.latent_dim, generator=noise_gen).to(self.device))
        terms = self._batched_loss(self.params, torch.stack(xs), torch.stack(ys), torch.stack(eps))
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].sum().backward()  # members are independent: each gets its own gradient
        self.optimizer.step()
        self.step += 1
        return {k: v.detach() for k, v in terms.items()}

    def run(self) -> list[Trainer]:
        """Train all members for train_cfg["steps"]; returns one Trainer per member holding its
        trained model, written to its folder (checkpoint.pt, train_log.csv)."""
        steps, log_every = self.cfg["steps"], self.cfg["log_every"]
        window, window_n, window_start = {}, 0, time.perf_counter()
        while self.step < steps:
            t0 = time.perf_counter()
            terms = self.train_step()
            for k, v in terms.items():
                window[k] = window[k] + v.float() if k in window else v.float()
            window_n += 1
            self.train_seconds += time.perf_counter() - t0
            if self.step % log_every == 0 or self.step == steps:
                self._log(window, window_n, window_start)
                window, window_n, window_start = {}, 0, time.perf_counter()
            if self.step % self.cfg["checkpoint_every"] == 0 and self.step < steps:
                self.write_members()
        return self.write_members()

    def _log(self, window, n, window_start) -> None:
        means = {k: (v / n).tolist() for k, v in window.items()}
        bad = {k: v for k, v in means.items() if not all(torch.isfinite(torch.tensor(v)))}
        if bad:
            raise VaebenchError(f"non-finite loss in a pack by step {self.step} (terms {bad})")
        images_per_s = n * self.cfg["batch_size"] / max(time.perf_counter() - window_start, 1e-9)
        for k, rows in enumerate(self.log_rows):
            rows.append({"step": self.step, "session": 0, "elapsed_s": round(self.train_seconds, 3),
                         "images_per_s": images_per_s, **{t: v[k] for t, v in means.items()}})

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        return {n: self.params[n][k].detach().clone() for n in self.names}

    def write_members(self) -> list[Trainer]:
        """Each member's model, Adam state, RNG streams and log into its folder, via a Trainer
        (Trainer owns the checkpoint and log formats)."""
        trainers, saved_rng = [], torch.get_rng_state()
        try:
            for k, m in enumerate(self.members):
                with torch.no_grad():
                    for n, p in m.model.named_parameters():
                        p.copy_(self.params[n][k])
                t = Trainer(m.model, self.dataset, self.cfg, m.run_dir, m.seed, self.device,
                            progress=False, channels_last=False)
                (opt,) = t.optimizers
                for p, n in zip(m.model.parameters(), self.names):
                    st = self.optimizer.state[self.params[n]]
                    opt.state[p] = {"step": st["step"].clone(), "exp_avg": st["exp_avg"][k].clone(),
                                    "exp_avg_sq": st["exp_avg_sq"][k].clone()}
                t.data_gen.set_state(self.data_gens[k].get_state())
                t.step, t.train_seconds, t.sessions = self.step, self.train_seconds, 1
                t.log_rows = list(self.log_rows[k])
                torch.set_rng_state(self.noise_gens[k].get_state())  # the member's global RNG stream
                t.run_dir.mkdir(parents=True, exist_ok=True)
                t.save_checkpoint()
                trainers.append(t)
        finally:
            torch.set_rng_state(saved_rng)
        return trainers
