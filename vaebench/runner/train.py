"""The training loop: plain PyTorch, read top to bottom.

Batches are drawn by index (uniformly with replacement, as in disentanglement_lib) from a
seeded generator. On CPU, convolution weights and batches are kept channels_last (NHWC), which
oneDNN runs faster, and the decoder's transposed convolutions take their faster path there
(architectures.Deconv4x4); the numbers are the NCHW ones within float rounding
(tests/test_train_speed.py). A CPU trainer also keeps freed memory in the process
(allocator.py). A checkpoint (model, optimizers, step, every RNG state, elapsed time) is written
atomically every `checkpoint_every` steps and at the end, so a killed run resumes where its last
checkpoint left off and continues exactly as an uninterrupted run would.

Checkpoints hold only tensors and plain values (RNG states included) and are read with
`torch.load(weights_only=True)`: a checkpoint planted in a results folder cannot run code. One that
cannot be read safely is set aside (renamed, never deleted) and the run resumes from the previous
checkpoint, or starts afresh; the run's events.log and results say so.
"""

from __future__ import annotations

import copy
import csv
import io
import pickle
import sys
import random
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vaebench.errors import VaebenchError
from vaebench.runner.allocator import keep_freed_memory
from vaebench.runner.store import (CHECKPOINT, LOG, PREV_CHECKPOINT, atomic_write_bytes, log_event,
                                   set_aside)

LOG_FIELDS_FIRST = ["step", "session", "elapsed_s", "images_per_s"]


class NonFiniteLoss(VaebenchError):
    pass


def resolve_device(name: str = "auto") -> torch.device:
    """auto (the GPU if there is one), cpu, cuda or cuda:N; checked against this machine."""
    import re

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", str(name)):
        raise VaebenchError(f"device {name!r} is not one of auto, cpu, cuda, cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise VaebenchError(f"device {name!r} was asked for, but this machine has no CUDA GPU "
                            f"visible to torch; use device: auto or cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise VaebenchError(f"device {name!r} was asked for, but this machine has "
                            f"{torch.cuda.device_count()} CUDA GPU(s) (cuda:0 to "
                            f"cuda:{torch.cuda.device_count() - 1}); use device: auto or cuda")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state(data_gen: torch.Generator) -> dict:
    """Every RNG state as tensors and plain lists, so weights_only loading can read it back."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {"torch": torch.get_rng_state(), "data": data_gen.get_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                       "has_gauss": has_gauss, "cached_gaussian": cached},
             "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, data_gen: torch.Generator) -> None:
    n, py = state["numpy"], state["python"]
    np_state = (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                n["cached_gaussian"])
    py_state = (py["version"], tuple(py["internal"]), py["gauss_next"])
    torch.set_rng_state(state["torch"].cpu())
    data_gen.set_state(state["data"].cpu())
    np.random.set_state(np_state)
    random.setstate(py_state)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _match_layouts(opt: torch.optim.Optimizer) -> None:
    """Give each loaded optimizer state tensor its parameter's memory layout. A checkpoint
    written in another layout (channels_last on CPU, NCHW on a GPU or by a pack) loads with its
    own strides, and the fused Adam kernel pairs the elements of a parameter and its moments by
    position in memory, not by index: without this, a resumed run's moments would be scrambled."""
    for p, state in opt.state.items():
        for key, value in state.items():
            if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                state[key] = torch.empty_like(p).copy_(value)


class UnreadableCheckpoint(Exception):
    """A checkpoint file that cannot be loaded safely (weights only) or does not fit the run."""


def read_checkpoint(path: Path, device: torch.device) -> dict:
    """The checkpoint's contents, loaded with weights_only=True (no code in it can run)."""
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).split("\n")
        unsafe = next((line.strip() for line in first if "unsupported global" in line.lower()), None)
        raise UnreadableCheckpoint(
            f"it holds objects other than tensors and plain values ({unsafe}), so loading it "
            f"could run code" if unsafe else f"not a checkpoint (UnpicklingError: {first[0][:200]})"
        ) from None
    except Exception as e:  # truncated zip, empty file, garbage: all mean damaged
        raise UnreadableCheckpoint(f"damaged ({type(e).__name__}: {str(e)[:200]})") from None
    need = {"model", "optimizers", "step", "train_seconds", "sessions", "log_rows", "rng"}
    if not isinstance(ckpt, dict) or not need <= set(ckpt):
        got = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise UnreadableCheckpoint(f"not a vaebench checkpoint (keys {got})")
    return ckpt


_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def reset_peak_memory(device: torch.device) -> None:
    """Start a run's peak-memory count from now: the CUDA allocator's peak, or on Linux the
    process's peak resident set (writing 5 to /proc/self/clear_refs resets VmHWM), so a run
    that follows others in the same process reports its own peak, not theirs."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        pass  # not Linux, or not allowed: peak_memory says which kind it reports


def _vm_hwm_bytes() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_memory(device: torch.device) -> tuple[int, str]:
    """(bytes, kind) since the last `reset_peak_memory`: CUDA peak allocated on a GPU, else the
    process's peak resident set (VmHWM; where /proc is missing, the process-wide ru_maxrss)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "cuda_max_allocated"
    hwm = _vm_hwm_bytes()
    if hwm is not None:
        return hwm, "cpu_peak_rss_of_run"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "cpu_peak_rss_of_process"


@dataclass
class TrainResult:
    steps: int
    train_seconds: float  # all sessions together
    images_per_s: float  # over all sessions
    sessions: int  # 1 + number of resumes
    resumed_from: int  # step the last session started at (0: fresh)
    final_terms: dict[str, float]  # loss terms averaged over the last logging window
    recovery: list[str]  # checkpoints set aside this session, and what the run did instead


class Trainer:
    """Trains one model on one dataset, writing checkpoint.pt and train_log.csv into run_dir."""

    def __init__(self, model, dataset, train_cfg: dict, run_dir: Path, seed: int,
                 device: torch.device, progress: bool = True, desc: str = "train",
                 channels_last: bool | None = None):
        if device.type == "cpu":
            keep_freed_memory()  # see allocator.py: glibc would page-fault activations back in every step
        # None: channels_last on CPU (faster there; untested on GPUs, which keep NCHW)
        self.channels_last = device.type == "cpu" if channels_last is None else channels_last
        model = model.to(device, memory_format=torch.channels_last) if self.channels_last else model.to(device)
        self.model, self.dataset, self.cfg = model, dataset, train_cfg
        self.run_dir, self.seed, self.device = Path(run_dir), seed, device
        self.progress, self.desc = progress, desc
        self.optimizers = model.make_optimizers(train_cfg["lr"], (train_cfg["beta1"], train_cfg["beta2"]))
        self.data_gen = torch.Generator().manual_seed(seed)
        self.step, self.train_seconds, self.sessions = 0, 0.0, 0
        self.log_rows: list[dict] = []
        self.recovery: list[str] = []  # checkpoints set aside on the way in (for the results)
        self._in_step = False

    # --- checkpoints ---------------------------------------------------------------------
    def _load_checkpoint(self) -> bool:
        """Resume from checkpoint.pt, else from checkpoint.prev.pt, else start afresh."""
        for name in (CHECKPOINT, PREV_CHECKPOINT):
            path = self.run_dir / name
            if not path.is_file():
                continue
            try:
                self._restore(read_checkpoint(path, self.device))
                if self.recovery:
                    self._note(f"resumed from {path} at step {self.step}")
                return True
            except UnreadableCheckpoint as e:
                aside = set_aside(path)
                self._note(f"refused {path}: {e}; kept aside as {aside.name}")
        if self.recovery:
            self._note("no readable checkpoint left: the run starts afresh from step 0")
        return False

    def _note(self, message: str) -> None:
        self.recovery.append(message)
        log_event(self.run_dir, message)
        print(f"vaebench: {self.desc}: {message}", file=sys.stderr)

    def _restore(self, ckpt: dict) -> None:
        """All or nothing: a checkpoint that does not fit leaves the fresh model untouched."""
        before = (copy.deepcopy(self.model.state_dict()), [copy.deepcopy(o.state_dict())
                                                            for o in self.optimizers])
        try:
            self.model.load_state_dict(ckpt["model"])
            if len(ckpt["optimizers"]) != len(self.optimizers):
                raise ValueError(f"{len(ckpt['optimizers'])} optimizer states for "
                                 f"{len(self.optimizers)} optimizers")
            for opt, state in zip(self.optimizers, ckpt["optimizers"]):
                opt.load_state_dict(state)
                _match_layouts(opt)
            _set_rng_state(ckpt["rng"], self.data_gen)
            step, seconds = int(ckpt["step"]), float(ckpt["train_seconds"])
            sessions, rows = int(ckpt["sessions"]), list(ckpt["log_rows"])
        except Exception as e:
            self.model.load_state_dict(before[0])
            for opt, state in zip(self.optimizers, before[1]):
                opt.load_state_dict(state)
            raise UnreadableCheckpoint(f"does not fit this run ({type(e).__name__}: "
                                       f"{str(e)[:200]})") from None
        self.step, self.train_seconds, self.sessions, self.log_rows = step, seconds, sessions, rows

    def save_checkpoint(self) -> None:
        """Atomic: a kill during the write leaves the previous checkpoint intact."""
        buf = io.BytesIO()
        torch.save({"model": self.model.state_dict(),
                    "optimizers": [o.state_dict() for o in self.optimizers],
                    "step": self.step, "train_seconds": self.train_seconds,
                    "sessions": self.sessions, "log_rows": self.log_rows,
                    "rng": _rng_state(self.data_gen)}, buf)
        atomic_write_bytes(self.run_dir / CHECKPOINT, buf.getvalue(),
                           keep_previous=self.run_dir / PREV_CHECKPOINT)
        self._write_log()

    def save_if_between_steps(self) -> bool:
        """For a preemption signal: save only if no optimisation step is half-done."""
        if self._in_step:
            return False
        self.save_checkpoint()
        return True

    def _write_log(self) -> None:
        fields = LOG_FIELDS_FIRST + sorted({k for r in self.log_rows for k in r} - set(LOG_FIELDS_FIRST))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.log_rows)
        atomic_write_bytes(self.run_dir / LOG, out.getvalue().encode())

    # --- the loop --------------------------------------------------------------------------
    def run(self) -> TrainResult:
        steps, batch_size = self.cfg["steps"], self.cfg["batch_size"]
        log_every, ckpt_every = self.cfg["log_every"], self.cfg["checkpoint_every"]
        resumed = self._load_checkpoint()
        start_step, session = self.step, self.sessions
        self.sessions += 1
        n_train = self.dataset.num_examples("train")
        window: dict[str, torch.Tensor] = {}
        window_n, window_start = 0, time.perf_counter()
        self.model.train()
        bar = tqdm(total=steps, initial=self.step, desc=self.desc, unit="step", dynamic_ncols=True,
                   disable=not self.progress, leave=False)
        try:
            while self.step < steps:
                t0 = time.perf_counter()
                self._in_step = True
                idx = torch.randint(0, n_train, (batch_size,), generator=self.data_gen)
                x, y = self.dataset.batch("train", idx, self.device, generator=self.data_gen)
                if self.channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                terms = self.model.training_step(x, y, self.step, self.optimizers)
                self.step += 1
                for k, v in terms.items():
                    v = v.detach().float()
                    window[k] = window[k] + v if k in window else v
                window_n += 1
                self.train_seconds += time.perf_counter() - t0
                if self.step % log_every == 0 or self.step == steps:
                    row = self._log(window, window_n, batch_size, window_start, session)
                    bar.set_postfix(loss=f"{row['loss']:.4g}", img_s=f"{row['images_per_s']:.0f}")
                    window, window_n, window_start = {}, 0, time.perf_counter()
                if self.step % ckpt_every == 0 or self.step == steps:
                    if window_n:
                        self._check_finite({k: (v / window_n).item() for k, v in window.items()})
                    self.save_checkpoint()
                self._in_step = False
                bar.update(1)
        finally:
            self._in_step = False
            bar.close()
        last = self.log_rows[-1] if self.log_rows else {}
        final_terms = {k: v for k, v in last.items() if k not in LOG_FIELDS_FIRST}
        return TrainResult(steps=self.step, train_seconds=self.train_seconds,
                           images_per_s=self.step * batch_size / max(self.train_seconds, 1e-9),
                           sessions=self.sessions, resumed_from=start_step if resumed else 0,
                           final_terms=final_terms, recovery=list(self.recovery))

    def _check_finite(self, means: dict[str, float]) -> None:
        """Stop before a NaN reaches a checkpoint; the run is recorded as failed with this reason."""
        bad = {k: v for k, v in means.items() if not np.isfinite(v)}
        if bad:
            raise NonFiniteLoss(
                f"non-finite loss by step {self.step} (terms {bad}); the run is stopped. Try a lower "
                f"train.lr in the suite, or check the model's hyperparameters.")

    def _log(self, window, n, batch_size, window_start, session) -> dict:
        means = {k: (v / n).item() for k, v in window.items()}
        self._check_finite(means)
        elapsed = time.perf_counter() - window_start
        row = {"step": self.step, "session": session, "elapsed_s": round(self.train_seconds, 3),
               "images_per_s": n * batch_size / max(elapsed, 1e-9), **means}
        self.log_rows.append(row)
        return row
