"""The one run function: train one resolved run, evaluate it, write its results.

Both executors call `run_job` with the same RunSpec; nothing here knows where it runs. A run
that raises (or hits a NaN loss) is recorded as failed with its reason and traceback instead of
propagating, so the suite goes on. A run that is already done is skipped; a started one resumes
from its checkpoint.
"""

from __future__ import annotations

import functools
import io
import json
import os
import time
import traceback
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch
from torchvision.utils import save_image

import vaebench
from vaebench import data as _data  # noqa: F401  (registers datasets)
from vaebench import metrics as _metrics  # noqa: F401  (registers metrics)
from vaebench import models as _models  # noqa: F401  (registers models)
from vaebench.errors import NotApplicable, VaebenchError
from vaebench.metrics.base import EvalContext, MetricResult
from vaebench.registry import DATASETS, METRICS, MODELS
from vaebench.runner.store import (CONFIG, FAILED, METRICS as METRICS_FILE, RESULTS_SCHEMA_VERSION,
                                   TRACEBACK, RunStore, atomic_write_bytes, log_event,
                                   remove_temp_files, set_aside, write_json)
from vaebench.runner.lock import RunLock
from vaebench.runner.suite import RunSpec
from vaebench.runner.train import Trainer, peak_memory, resolve_device, seed_everything


@functools.lru_cache(maxsize=2)
def _load_dataset_cached(name: str, params_json: str, data_root: str):
    return DATASETS.get(name)(Path(data_root), **json.loads(params_json))


def load_dataset(name: str, params: dict, data_root: Path):
    """The registered dataset, loaded once per process for the same (name, params, root)."""
    return _load_dataset_cached(name, json.dumps(params, sort_keys=True), str(data_root))


def build_model(spec: RunSpec, dataset):
    cls = MODELS.get(spec.model)
    return cls(cls.Config(**spec.model_params), dataset.image_shape, dataset.num_classes)


def _png_bytes(images: torch.Tensor, nrow: int) -> bytes:
    buf = io.BytesIO()
    save_image(images.float().cpu(), buf, format="png", nrow=nrow, padding=2, pad_value=0.5)
    return buf.getvalue()


@torch.no_grad()
def save_pictures(model, dataset, run_dir: Path, device, seed: int, n: int = 8) -> None:
    """recon.png: test images (top row) over their reconstructions; samples.png: prior samples."""
    x, y = dataset.batch("test", torch.arange(min(n, dataset.num_examples("test"))), device)
    atomic_write_bytes(run_dir / "recon.png", _png_bytes(torch.cat([x, model.reconstruct(x, y)]), len(x)))
    gen = torch.Generator().manual_seed(seed)
    atomic_write_bytes(run_dir / "samples.png", _png_bytes(model.sample(8 * n, generator=gen), n))


def default_cache_dir() -> Path:
    """Where FID extractors and reference statistics are cached: $VAEBENCH_CACHE, else
    ~/.cache/vaebench."""
    return Path(os.environ.get("VAEBENCH_CACHE") or Path.home() / ".cache" / "vaebench").expanduser()


def evaluate(spec: RunSpec, model, dataset, device, data_root: Path, fid_weights=None,
             cache_dir: Path | None = None) -> dict:
    """Every metric of the run; one metric's failure is recorded and the others still run."""
    ctx = EvalContext(model=model, dataset=dataset, device=device, seed=spec.seed,
                      data_root=Path(data_root), fid_weights=fid_weights,
                      cache_dir=Path(cache_dir) if cache_dir else default_cache_dir())
    results = {}
    for m in spec.metrics:
        t0 = time.perf_counter()
        try:
            seed_everything(spec.seed)
            out: MetricResult = METRICS.get(m["name"])(ctx, **m["params"])
            results[m["name"]] = {"scores": out.scores, "details": out.details}
        except NotApplicable as e:
            results[m["name"]] = {"not_applicable": str(e)}
        except VaebenchError as e:
            results[m["name"]] = {"error": str(e)}
        except Exception as e:  # a bug in one metric must not cost the run's other results
            results[m["name"]] = {"error": f"{type(e).__name__}: {e}",
                                  "traceback": traceback.format_exc()}
        results[m["name"]]["seconds"] = round(time.perf_counter() - t0, 3)
    return results


def run_job(spec: RunSpec | dict, results_dir: str | Path, data_root: str | Path,
            progress: bool = True, fid_weights: str | Path | None = None) -> dict:
    """Train + evaluate one run into results_dir/<suite>/<run_id>/. Returns a small status dict."""
    if isinstance(spec, dict):
        spec = RunSpec(**{**spec, "grid_keys": tuple(spec.get("grid_keys", ()))})
    store = RunStore(Path(results_dir) / spec.suite)
    run_dir = store.run_dir(spec.run_id)
    if store.state(spec.run_id) == "done":
        return _done(store, spec.run_id, skipped=True)
    with RunLock(run_dir) as lock:
        if not lock.held:  # another `vaebench run` (or SLURM job) is training it: leave it be
            return {"run_id": spec.run_id, "status": "busy", "skipped": True, "holder": lock.holder}
        return _run_locked(spec, store, run_dir, data_root, progress, fid_weights)


def _done(store: RunStore, run_id: str, skipped: bool) -> dict:
    return {"run_id": run_id, "status": "done", "skipped": skipped,
            "metric_errors": store.metric_errors(run_id)}


def _set_aside_damage(store: RunStore, run_id: str) -> None:
    """A finished run whose metrics.json or config.json cannot be read: keep the file aside and
    let the run finish again (from its last checkpoint: only the evaluation is repeated)."""
    damage = store.damage(run_id)
    if damage is not None and damage.path.exists():
        aside = set_aside(damage.path)
        log_event(store.run_dir(run_id), f"{damage}; kept aside as {aside.name}, the run is "
                                         f"finished again from its checkpoint")


def _run_locked(spec: RunSpec, store: RunStore, run_dir: Path, data_root, progress, fid_weights):
    state = store.state(spec.run_id)  # again: another process may have finished it meanwhile
    if state == "done":
        return _done(store, spec.run_id, skipped=True)
    if state == "damaged":
        _set_aside_damage(store, spec.run_id)
    (run_dir / FAILED).unlink(missing_ok=True)  # a failed run is retried from its checkpoint
    freed = remove_temp_files(run_dir)  # left by writes that were killed
    if freed:
        log_event(run_dir, f"removed {freed} bytes of temporary files left by killed writes")
    write_json(run_dir / CONFIG, spec.to_json())
    if store.state(spec.run_id) == "done":  # only its config.json was missing
        return _done(store, spec.run_id, skipped=True)
    try:
        device = resolve_device(spec.device)
        dataset = load_dataset(spec.dataset, spec.dataset_params, Path(data_root))
        seed_everything(spec.seed)
        model = build_model(spec, dataset)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        trainer = Trainer(model, dataset, spec.train, run_dir, spec.seed, device,
                          progress=progress, desc=spec.run_id)
        trained = trainer.run()
        model.eval()
        t0 = time.perf_counter()
        after = model.after_training(dataset, device, spec.seed)
        metrics = evaluate(spec, model, dataset, device, Path(data_root),
                           Path(fid_weights) if fid_weights else None)
        save_pictures(model, dataset, run_dir, device, spec.seed)
        eval_seconds = time.perf_counter() - t0
        mem, mem_kind = peak_memory(device)
        scores = {k: v for r in metrics.values() for k, v in r.get("scores", {}).items()}
        if not (run_dir / CONFIG).is_file():  # the folder was removed or emptied while training
            write_json(run_dir / CONFIG, spec.to_json())
            log_event(run_dir, "config.json was gone when the run finished (was the run folder "
                               "removed while it trained?); written again")
        write_json(run_dir / METRICS_FILE, {
            "schema_version": RESULTS_SCHEMA_VERSION, "vaebench_version": vaebench.__version__,
            "status": "done", "run_id": spec.run_id, "suite": spec.suite, "dataset": spec.dataset,
            "model": spec.model, "model_params": spec.model_params, "seed": spec.seed,
            "grid_keys": list(spec.grid_keys), "scores": scores, "metrics": metrics,
            "after_training": after, "final_loss_terms": trained.final_terms,
            "recovery": trained.recovery,
            "cost": {"train_seconds": trained.train_seconds, "images_per_s": trained.images_per_s,
                     "eval_seconds": eval_seconds, "device": str(device),
                     "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                     "peak_memory_bytes": mem, "peak_memory_kind": mem_kind,
                     "steps": trained.steps, "sessions": trained.sessions,
                     "resumed_from_step": trained.resumed_from},
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
        return _done(store, spec.run_id, skipped=False)
    except Exception as e:
        reason = str(e) if isinstance(e, VaebenchError) else f"{type(e).__name__}: {e}"
        atomic_write_bytes(run_dir / TRACEBACK, traceback.format_exc().encode())
        write_json(run_dir / FAILED, {"status": "failed", "run_id": spec.run_id, "reason": reason,
                                      "error_type": type(e).__name__, "traceback": str(run_dir / TRACEBACK),
                                      "failed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        return {"run_id": spec.run_id, "status": "failed", "reason": reason}
