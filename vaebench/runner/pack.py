"""Packed runs: K runs of one architecture trained as one batched (vmapped) computation.

The members of a pack share the model class, its config, the dataset and the train config, and
differ in seed and in the hyperparameters the model lists as `loss_scalars` (beta-VAE's beta):
the loss reads each member's value from a (K,) tensor. Their parameters are stacked along a new
leading dimension and one training step is `torch.func.vmap` of the model's loss over that
dimension (convolutions with stacked weights become grouped convolutions), so small models fill
the machine's cores together instead of one after the other.

Each member is trained exactly as `Trainer` would train it alone (tests/test_pack.py checks the
parameters against separate Trainer runs):
- its batches are drawn by index from its own generator seeded with its seed;
- its reparameterisation noise is drawn from its own generator, started from the global RNG
  state that a separate run would have after `seed_everything(seed)` and building the model, and
  handed to the model through `GaussianVAE.noise_like` (one draw of mu's shape per step);
- Adam over the stacked tensors is elementwise, so it is each member's own Adam.
A variant that draws other random numbers in its loss (info_vae's prior samples), or has its own
`training_step` (factor_vae) or optimizers (vq_vae), cannot be packed: vmap refuses random calls
inside it, and the pack raises NotPackable (the runner then trains its runs one by one).

At the end (and every `checkpoint_every` steps) each member's parameters, Adam state, step count,
RNG states and log are written into its own run folder through a `Trainer`, in Trainer's own
checkpoint and log format, so a member's folder reads (and resumes) as a separately trained run.
A pack whose members all hold checkpoints of the same step resumes from them as one pack.
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
from vaebench.runner.allocator import keep_freed_memory
from vaebench.runner.train import LOG_FIELDS_FIRST, Trainer, TrainResult, seed_everything


class NotPackable(VaebenchError):
    """These runs cannot train as one pack; train them one by one instead."""


def plan_packs(specs: list) -> list[list]:
    """The runs to train, grouped into packs: runs of one configuration (model, hyperparameters
    other than its `loss_scalars`, dataset, training budget, device; differing in seed and those
    scalars) in order of first appearance, at most `spec.pack` to a pack; runs of a variant that
    cannot be packed stay alone."""
    import json

    from vaebench.registry import MODELS

    groups: dict[str, list] = {}
    for spec in specs:
        cls = MODELS.get(spec.model)
        if spec.pack == 1 or class_refusal(cls):
            groups[spec.run_id] = [spec]
            continue
        shared = spec.configuration()
        shared["model_params"] = _without(shared["model_params"], cls.loss_scalars)
        key = json.dumps([shared, spec.device], sort_keys=True)
        groups.setdefault(key, []).append(spec)
    packs = []
    for group in groups.values():
        size = group[0].pack
        packs.extend(group[i:i + size] for i in range(0, len(group), size))
    return packs


@dataclass
class PackMember:
    """One run of a pack: its model as built after seed_everything(seed), the global RNG state
    right after building it (where its noise stream starts), and its run folder."""

    model: LatentVariableModel
    seed: int
    noise_state: torch.Tensor
    run_dir: Path


def build_member(build, seed: int, run_dir) -> PackMember:
    """One member's model built as a separate run would build it: seed_everything(seed), then build()."""
    seed_everything(seed)
    model = build()
    return PackMember(model, seed, torch.get_rng_state(), Path(run_dir))


def build_members(build, seeds, run_dirs) -> list[PackMember]:
    """Members of one build() (one configuration), one per seed."""
    return [build_member(build, seed, run_dir) for seed, run_dir in zip(seeds, run_dirs, strict=True)]


def _without(params: dict, names) -> dict:
    return {k: v for k, v in params.items() if k not in names}


class _ConfigWith:
    """A model config read through, with some fields replaced (a member's loss scalars)."""

    def __init__(self, config, values: dict):
        self._config, self._values = config, values

    def __getattr__(self, name):
        values = self.__dict__["_values"]
        return values[name] if name in values else getattr(self.__dict__["_config"], name)


class _Loss(nn.Module):
    """model.loss as a module's forward, so functional_call can swap in one member's parameters
    (and its loss scalars, each a 0-dim tensor inside vmap)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, y, step, eps, scalars):
        calls = []

        def noise_like(mu):
            calls.append(mu.shape)
            return eps

        config = self.model.config
        self.model.noise_like = noise_like
        self.model.config = _ConfigWith(config, scalars)
        try:
            terms = self.model.loss(x, y, step)
        finally:
            del self.model.noise_like
            self.model.config = config
        if len(calls) != 1:
            raise NotPackable(f"{type(self.model).__name__} draws its noise {len(calls)} times a step; "
                                f"a pack supplies one draw (runs of this variant cannot be packed)")
        return terms


def class_refusal(cls) -> str | None:
    """Why runs of this model class cannot be packed, judged from the class alone (None: they may
    be; a loss that draws random numbers is only found at the first step)."""
    if not issubclass(cls, GaussianVAE) or cls.training_step is not LatentVariableModel.training_step \
            or cls.make_optimizers is not LatentVariableModel.make_optimizers:
        return (f"{cls.__name__} cannot be packed: a pack trains Gaussian VAEs with the default "
                f"training step and one Adam")
    return None


def _check_packable(models) -> None:
    first = models[0]
    scalars = type(first).loss_scalars
    for m in models:
        if type(m) is not type(first) or _without(m.hyperparameters(), scalars) != \
                _without(first.hyperparameters(), scalars):
            raise NotPackable(f"a pack's runs must share the model and its hyperparameters (but "
                              f"{', '.join(scalars) or 'none'}); got {type(m).__name__} "
                              f"{m.hyperparameters()} and {type(first).__name__} {first.hyperparameters()}")
    refusal = class_refusal(type(first))
    if refusal:
        raise NotPackable(refusal)
    if any(True for _ in first.buffers()):
        raise NotPackable(f"{type(first).__name__} has buffers (running statistics); a pack does "
                          f"not stack them")


class PackedTrainer:
    """Trains the members' models as one vmapped computation; one folder per member."""

    def __init__(self, members: list[PackMember], dataset, train_cfg: dict, device: torch.device,
                 progress: bool = False, desc: str = "pack"):
        if not members:
            raise VaebenchError("a pack needs at least one run")
        _check_packable([m.model for m in members])
        if device.type == "cpu":
            keep_freed_memory()
        self.members, self.dataset, self.cfg, self.device = members, dataset, train_cfg, device
        self.progress, self.desc = progress, desc
        self.step, self.train_seconds, self.session = 0, 0.0, 0
        self.log_rows: list[list[dict]] = [[] for _ in members]
        self.recovery: list[list[str]] = [[] for _ in members]
        self.data_gens = [torch.Generator().manual_seed(m.seed) for m in members]
        adam_states = self._resume()
        for m in members:
            m.model.to(device).train()
        template = members[0].model
        self.names = [n for n, _ in template.named_parameters()]
        self.params = {n: torch.stack([dict(m.model.named_parameters())[n].detach() for m in members])
                       .requires_grad_() for n in self.names}
        self.optimizer = adam(self.params.values(), lr=train_cfg["lr"],
                              betas=(train_cfg["beta1"], train_cfg["beta2"]))
        if adam_states:  # each member's Adam moments, stacked like its parameters
            for i, n in enumerate(self.names):
                per = [st[i] for st in adam_states]
                self.optimizer.state[self.params[n]] = {
                    "step": per[0]["step"].clone(),
                    # in the stacked parameters' (contiguous) layout: see train._match_layouts
                    "exp_avg": torch.stack([st["exp_avg"].contiguous() for st in per]).contiguous(),
                    "exp_avg_sq": torch.stack([st["exp_avg_sq"].contiguous() for st in per]).contiguous()}
        self.loss_module = _Loss(template)
        # only the scalars that differ go in as tensors: a pack of one value computes as before
        values = {n: [getattr(m.model.config, n) for m in members] for n in type(template).loss_scalars}
        self.scalars = {n: torch.tensor(v, dtype=torch.float32, device=device)
                        for n, v in values.items() if len(set(v)) > 1}
        self.noise_gens = [torch.Generator() for _ in members]
        for g, m in zip(self.noise_gens, members):
            g.set_state(m.noise_state)
        self.latent_dim = template.config.latent_dim
        self.resumed_from = self.step
        self._in_step = False

    def _resume(self) -> list[list[dict]] | None:
        """Members whose folders hold checkpoints continue from them, all at one step: their
        weights, Adam moments, data and noise streams and logs are read through Trainer (which
        owns the format). None when every member starts afresh. Raises NotPackable when only
        some members have a checkpoint, or theirs are of different steps."""
        if not any((m.run_dir / name).is_file() for m in self.members
                   for name in ("checkpoint.pt", "checkpoint.prev.pt")):
            return None
        saved_rng, loaded = torch.get_rng_state(), []
        try:
            for k, m in enumerate(self.members):
                t = Trainer(m.model, self.dataset, self.cfg, m.run_dir, m.seed, self.device,
                            progress=False, desc=m.run_dir.name, channels_last=False)
                ok = t._load_checkpoint()
                self.recovery[k] = list(t.recovery)
                if ok:  # the global RNG is now this member's noise stream
                    m.noise_state = torch.get_rng_state()
                    self.data_gens[k].set_state(t.data_gen.get_state())
                loaded.append((ok, t))
        finally:
            torch.set_rng_state(saved_rng)
        steps = {t.step for ok, t in loaded if ok}
        if not all(ok for ok, _ in loaded) or len(steps) != 1:
            raise NotPackable("the pack's runs hold checkpoints of different steps (steps "
                              f"{[t.step if ok else 0 for ok, t in loaded]}); each resumes alone")
        first = loaded[0][1]
        self.step, self.train_seconds, self.session = first.step, first.train_seconds, first.sessions
        for k, (_, t) in enumerate(loaded):
            self.log_rows[k] = list(t.log_rows)
        return [[t.optimizers[0].state[p] for p in t.model.parameters()] for _, t in loaded]

    def _batched_loss(self, params, x, y, eps):
        step = self.step

        def one(p, x_k, y_k, eps_k, scalars_k):
            return functional_call(self.loss_module, {f"model.{n}": v for n, v in p.items()},
                                   (x_k, y_k, step, eps_k, scalars_k))

        try:
            return vmap(one, randomness="error")(params, x, y, eps, self.scalars)
        except RuntimeError as e:
            if "randomness" not in str(e):
                raise
            raise NotPackable(f"{type(self.loss_module.model).__name__} draws random numbers in its loss "
                                f"besides the reparameterisation noise; its runs cannot be packed") from e

    def train_step(self) -> dict[str, torch.Tensor]:
        """One step of every member; returns the terms, each (K,)."""
        batch_size, n_train = self.cfg["batch_size"], self.dataset.num_examples("train")
        xs, ys, eps = [], [], []
        for data_gen, noise_gen in zip(self.data_gens, self.noise_gens):
            idx = torch.randint(0, n_train, (batch_size,), generator=data_gen)
            x, y = self.dataset.batch("train", idx, self.device, generator=data_gen)
            xs.append(x)
            ys.append(y)
            eps.append(torch.randn(batch_size, self.latent_dim, generator=noise_gen).to(self.device))
        self._in_step = True
        try:
            terms = self._batched_loss(self.params, torch.stack(xs), torch.stack(ys), torch.stack(eps))
            self.optimizer.zero_grad(set_to_none=True)
            terms["loss"].sum().backward()  # members are independent: each gets its own gradient
            self.optimizer.step()
            self.step += 1
        finally:
            self._in_step = False
        return {k: v.detach() for k, v in terms.items()}

    def save_if_between_steps(self) -> bool:
        """For a preemption signal (SLURM): write every member's checkpoint unless mid-step."""
        if self._in_step:
            return False
        self.write_members()
        return True

    def run(self) -> list[TrainResult]:
        """Train all members for train_cfg["steps"], each written to its folder (checkpoint.pt,
        train_log.csv) as it goes; returns one TrainResult per member (the models, trained, are
        the members' own)."""
        from tqdm import tqdm

        steps, log_every = self.cfg["steps"], self.cfg["log_every"]
        window, window_n, window_start = {}, 0, time.perf_counter()
        bar = tqdm(total=steps, initial=self.step, desc=self.desc, unit="step", dynamic_ncols=True,
                   disable=not self.progress, leave=False)
        try:
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
                bar.update(1)
        finally:
            bar.close()
        self.write_members()
        batch = self.cfg["batch_size"]
        results = []
        for k in range(len(self.members)):
            last = self.log_rows[k][-1] if self.log_rows[k] else {}
            results.append(TrainResult(
                steps=self.step, train_seconds=self.train_seconds,
                images_per_s=self.step * batch / max(self.train_seconds, 1e-9),
                sessions=self.session + 1, resumed_from=self.resumed_from,
                final_terms={t: v for t, v in last.items() if t not in LOG_FIELDS_FIRST},
                recovery=list(self.recovery[k])))
        return results

    def _log(self, window, n, window_start) -> None:
        means = {k: (v / n).tolist() for k, v in window.items()}
        bad = {k: v for k, v in means.items() if not all(torch.isfinite(torch.tensor(v)))}
        if bad:
            raise VaebenchError(f"non-finite loss in a pack by step {self.step} (terms {bad})")
        images_per_s = n * self.cfg["batch_size"] / max(time.perf_counter() - window_start, 1e-9)
        for k, rows in enumerate(self.log_rows):
            rows.append({"step": self.step, "session": self.session, "elapsed_s": round(self.train_seconds, 3),
                         "images_per_s": images_per_s, **{t: v[k] for t, v in means.items()}})

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
                t.step, t.train_seconds, t.sessions = self.step, self.train_seconds, self.session + 1
                t.log_rows = list(self.log_rows[k])
                torch.set_rng_state(self.noise_gens[k].get_state())  # the member's global RNG stream
                t.run_dir.mkdir(parents=True, exist_ok=True)
                t.save_checkpoint()
                trainers.append(t)
        finally:
            torch.set_rng_state(saved_rng)
        return trainers
