"""The one run function: train one resolved run if it is not trained, then evaluate whatever the
suite asks of it that is missing, writing each result through the store.

Two stages, as disentanglement_lib separates train and evaluate:
- training: the trainer (resuming from checkpoint.pt), the model's post-training stage, pictures;
  ends with model.pt and trained.json;
- evaluation: each (metric, params, evaluation seed) that has no record yet, on the trained
  model (loaded from model.pt only if a metric needs it: array metrics are answered from the run's
  kept code table), each record written as it finishes, and metrics.json, the run's summary,
  rewritten after each.

Every executor calls `run_job` with the same RunSpec; nothing here knows where it runs. A run
that raises (or hits a NaN loss) is recorded as failed with its reason and traceback instead of
propagating, so the suite goes on. A metric that fails is recorded in the summary (and retried
next time); the run's other metrics are still evaluated.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torchvision.utils import save_image

import vaebench
from vaebench.errors import NotApplicable, VaebenchError
from vaebench.metrics.base import EvalContext, MetricResult
from vaebench.metrics.disentanglement.context import code_table, preload_code_table
from vaebench.provenance import provenance
from vaebench.registry import DATASETS, METRICS, MODELS, score_direction
from vaebench.runner.lock import RunLock
from vaebench.runner.store import (CONFIG, FAILED, TRACEBACK, RunStore, atomic_write_bytes,
                                   evaluation_key, log_event, remove_temp_files, set_aside,
                                   write_json)
from vaebench.runner.suite import RunSpec, config_hash
from vaebench.runner.train import (Trainer, TrainResult, peak_memory, reset_peak_memory,
                                   resolve_device, seed_everything)


@functools.lru_cache(maxsize=2)
def _load_dataset_cached(name: str, params_json: str, data_root: str):
    return DATASETS.get(name)(Path(data_root), **json.loads(params_json))


def load_dataset(name: str, params: dict, data_root: Path):
    """The registered dataset, loaded once per process for the same (name, params, root)."""
    return _load_dataset_cached(name, json.dumps(params, sort_keys=True), str(data_root))


def build_model(spec: RunSpec, dataset):
    """The run's model, handed the dataset's facts (image shape, classes, train-split size)."""
    cls = MODELS.get(spec.model)
    return cls(cls.Config(**spec.model_params), dataset.image_shape, dataset.num_classes,
               train_size=dataset.num_examples("train"))


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


def missing_evaluations(spec: RunSpec, store: RunStore) -> list[tuple[str, dict, int]]:
    """The suite's evaluations of this run that have no record yet."""
    return [e for e in spec.evaluations() if not store.has_evaluation(spec.run_id, evaluation_key(*e))]


def pending_stage(spec: RunSpec, store: RunStore, metrics=None) -> str | None:
    """"train" (not trained yet), "evaluate" (trained, evaluations missing: of `metrics` only,
    when given) or None (done)."""
    if not store.is_trained(spec.run_id):
        return "train"
    if store.state(spec.run_id) != "done":
        return "evaluate"
    if [e for e in missing_evaluations(spec, store) if metrics is None or e[0] in metrics]:
        return "evaluate"
    return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def train_stage(spec: RunSpec, store: RunStore, dataset, device, progress: bool, on_trainer=None):
    """Train (or resume), then `finish_training`. Returns the trained model (eval mode)."""
    run_dir = store.run_dir(spec.run_id)
    seed_everything(spec.seed)
    model = build_model(spec, dataset)
    reset_peak_memory(device)
    trainer = Trainer(model, dataset, spec.train, run_dir, spec.seed, device,
                      progress=progress, desc=spec.run_id)
    if on_trainer:
        on_trainer(trainer)
    try:
        trained = trainer.run()
    finally:
        if on_trainer:
            on_trainer(None)
    return finish_training(spec, store, dataset, device, model, trained)


def finish_training(spec: RunSpec, store: RunStore, dataset, device, model, trained: TrainResult,
                    pack_size: int = 1):
    """After the trainer (alone or in a pack): the model's post-training stage, the pictures,
    model.pt and trained.json. Returns the model (eval mode)."""
    run_dir = store.run_dir(spec.run_id)
    model.eval()
    t0 = time.perf_counter()
    after = model.after_training(dataset, device, spec.seed)
    post_training_seconds = time.perf_counter() - t0
    save_pictures(model, dataset, run_dir, device, spec.seed)
    mem, mem_kind = peak_memory(device)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    store.write_trained(spec.run_id, {
        "run_id": spec.run_id, "after_training": after, "final_loss_terms": trained.final_terms,
        "recovery": trained.recovery, "provenance": provenance(device), "finished_at": _now(),
        # In a pack of K, train_seconds and the peak memory are the pack's, shared by K runs.
        "cost": {"train_seconds": trained.train_seconds, "images_per_s": trained.images_per_s,
                 "post_training_seconds": post_training_seconds, "device": str(device),
                 "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                 "torch_threads": torch.get_num_threads(), "peak_memory_bytes": mem,
                 "peak_memory_kind": mem_kind if pack_size == 1 else f"{mem_kind}_pack",
                 "steps": trained.steps, "sessions": trained.sessions,
                 "resumed_from_step": trained.resumed_from, "pack_size": pack_size}}, buf.getvalue())
    return model


def load_trained_model(spec: RunSpec, store: RunStore, dataset, device):
    """The model as training left it (model.pt, loaded with weights_only=True), in eval mode."""
    model = build_model(spec, dataset)
    state = torch.load(store.model_path(spec.run_id), map_location=device, weights_only=True)
    model.load_state_dict(state)
    return model.to(device).eval()


def evaluate_metric(ctx: EvalContext, name: str, params: dict) -> dict:
    """One evaluation: {"scores", "details"} or {"not_applicable"} or {"error"}, with seconds.
    Seeded with the context's evaluation seed; one metric's failure is returned, not raised."""
    t0 = time.perf_counter()
    try:
        seed_everything(ctx.seed)
        out: MetricResult = METRICS.get(name)(ctx, **params)
        record = {"scores": out.scores, "details": out.details}
    except NotApplicable as e:
        record = {"not_applicable": str(e)}
    except VaebenchError as e:
        record = {"error": str(e)}
    except Exception as e:  # a bug in one metric must not cost the run's other results
        record = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    record["seconds"] = round(time.perf_counter() - t0, 3)
    return record


def _keep_codes(ctx: EvalContext, store: RunStore, spec: RunSpec, written: int) -> int:
    """Write codes.npz when the run's code table has grown; returns the rows now kept."""
    table = code_table(ctx)
    if table is None:
        return written
    rows, codes = table.known()
    if len(rows) == written:
        return written
    kept = store.codes(spec.run_id)
    test_codes = kept.get("test_codes") if kept else None
    if test_codes is None:
        test = torch.arange(ctx.dataset.num_examples("test"))
        x, y = ctx.dataset.batch("test", test)
        test_codes = ctx.encode(x, y if ctx.conditional else None)
    store.write_codes(spec.run_id, rows, codes, test_codes)
    return len(rows)


def evaluation_stage(spec: RunSpec, store: RunStore, dataset, device, data_root: Path,
                     fid_weights=None, model=None, cache_dir: Path | None = None,
                     metrics: list[str] | None = None) -> dict[str, str]:
    """Evaluate what is missing (only the named `metrics` if given); returns {metric: error}
    for the metrics that failed this time."""
    todo = [e for e in missing_evaluations(spec, store) if metrics is None or e[0] in metrics]
    errors: dict[str, str] = {}
    if todo:
        ctx = EvalContext(model=model, dataset=dataset, device=device, seed=spec.eval_seed,
                          data_root=Path(data_root), fid_weights=fid_weights,
                          cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(),
                          model_loader=lambda: load_trained_model(spec, store, dataset, device),
                          conditional=MODELS.get(spec.model).conditional)
        kept = store.codes(spec.run_id) if dataset.factors is not None else None
        written = 0
        if kept is not None and len(kept["rows"]):
            preload_code_table(ctx, kept["rows"], kept["codes"])
            written = len(kept["rows"])
        for name, params, eval_seed in todo:
            ctx.seed = eval_seed
            record = evaluate_metric(ctx, name, params)
            if "error" in record:
                errors[name] = record["error"]
            else:
                store.write_evaluation(spec.run_id, evaluation_key(name, params, eval_seed),
                                       {"metric": name, "params": params, "eval_seed": eval_seed,
                                        "evaluated_at": _now(), **record})
                if spec.keep_codes:
                    written = _keep_codes(ctx, store, spec, written)
            write_summary(spec, store, errors)
    else:  # nothing to evaluate (a summary set aside as damaged, say): write the summary once
        write_summary(spec, store, errors)
    return errors


def _combine(records: list[dict]) -> dict:
    """One metric's entry in the summary from its R repeats: mean scores, `<score>_eval_std`."""
    first = records[0]
    if "scores" not in first or len(records) == 1:
        return dict(first)
    scores = {}
    for k in first["scores"]:
        vals = [r["scores"].get(k) for r in records]
        finite = [v for v in vals if v is not None and np.isfinite(v)]
        scores[k] = float(np.mean(finite)) if finite else None
        scores[f"{k}_eval_std"] = float(np.std(finite, ddof=1)) if len(finite) > 1 else None
    return {"scores": scores, "details": first["details"], "repeats": len(records),
            "eval_seeds": [r["eval_seed"] for r in records],
            "seconds": round(sum(r["seconds"] for r in records), 3)}


def write_summary(spec: RunSpec, store: RunStore, errors: dict[str, str] | None = None) -> dict:
    """metrics.json: the training record and the suite's evaluations (repeats combined)."""
    trained = store.trained(spec.run_id)
    per_metric: dict[str, list] = {}
    for name, params, eval_seed in spec.evaluations():
        key = evaluation_key(name, params, eval_seed)
        if store.has_evaluation(spec.run_id, key):
            per_metric.setdefault(name, []).append(store.evaluation(spec.run_id, key))
    metrics = {name: _combine(recs) for name, recs in per_metric.items()}
    for name, reason in (errors or {}).items():
        metrics.setdefault(name, {"error": reason})
    scores = {k: v for r in metrics.values() for k, v in r.get("scores", {}).items()}
    directions = {k: score_direction(k, name) for name, r in metrics.items()
                  for k in r.get("scores", {}) if not k.endswith("_eval_std")}
    cost = dict(trained["cost"])
    cost["eval_seconds"] = round(sum(r.get("seconds", 0.0) for r in metrics.values()), 3)
    summary = {"vaebench_version": vaebench.__version__, "status": "done", "run_id": spec.run_id,
               "suite": spec.suite, "dataset": spec.dataset, "model": spec.model,
               "model_params": spec.model_params, "seed": spec.seed, "grid_keys": list(spec.grid_keys),
               "eval_seed": spec.eval_seed, "configuration_id": config_hash(spec.configuration()),
               "scores": scores, "directions": directions, "metrics": metrics,
               "evaluations": {name: [r["key"] for r in recs] for name, recs in per_metric.items()},
               "after_training": trained["after_training"], "final_loss_terms": trained["final_loss_terms"],
               "recovery": trained.get("recovery"),
               "provenance": trained["provenance"], "cost": cost, "finished_at": _now()}
    store.write_summary(spec.run_id, summary)
    return summary


def run_job(spec: RunSpec | dict, results_dir: str | Path, data_root: str | Path,
            progress: bool = True, fid_weights: str | Path | None = None, train: bool = True,
            metrics: list[str] | None = None,
            on_trainer: Callable[[Trainer | None], None] | None = None) -> dict:
    """Train (unless train=False) and evaluate what is missing of one run, into
    results_dir/<suite>/<run_id>/. Returns a small status dict: "status" is done, failed or
    untrained (train=False and no finished training); "trained" says whether it trained now;
    "metric_errors" names the metrics that failed. `on_trainer` is told the trainer while it
    trains, then None (a preemption handler saves it)."""
    if isinstance(spec, dict):
        spec = RunSpec.from_json(spec)
    store = RunStore(Path(results_dir) / spec.suite)
    run_dir = store.run_dir(spec.run_id)
    stage = pending_stage(spec, store, metrics)
    if stage == "train" and not train:
        return {"run_id": spec.run_id, "status": "untrained", "skipped": True}
    if stage is None:
        return _done(store, spec.run_id, skipped=True)
    with RunLock(run_dir) as lock:
        if not lock.held:  # another `vaebench run` (or SLURM job) is on it: leave it be
            return {"run_id": spec.run_id, "status": "busy", "skipped": True, "holder": lock.holder}
        return _run_locked(spec, store, run_dir, data_root, progress, fid_weights, train, metrics,
                           on_trainer)


def _done(store: RunStore, run_id: str, skipped: bool) -> dict:
    return {"run_id": run_id, "status": "done", "skipped": skipped,
            "metric_errors": store.metric_errors(run_id)}


def _set_aside_damage(store: RunStore, run_id: str) -> None:
    """A finished run whose metrics.json or config.json cannot be read: keep the file aside and
    let the run finish again (its training is kept: only the summary is written again)."""
    damage = store.damage(run_id)
    if damage is not None and damage.path.exists():
        aside = set_aside(damage.path)
        log_event(store.run_dir(run_id), f"{damage}; kept aside as {aside.name}, the run is "
                                         f"finished again from its training")


def _prepare(spec: RunSpec, run_dir: Path) -> None:
    """Before a locked run works: a failed run is retried from its checkpoint, temporary files
    of killed writes go, and config.json says what the folder holds."""
    (run_dir / FAILED).unlink(missing_ok=True)
    freed = remove_temp_files(run_dir)
    if freed:
        log_event(run_dir, f"removed {freed} bytes of temporary files left by killed writes")
    write_json(run_dir / CONFIG, spec.to_json())


def _run_locked(spec: RunSpec, store: RunStore, run_dir: Path, data_root, progress, fid_weights,
                train: bool, metrics, on_trainer, packed=None) -> dict:
    """`packed`: (model, TrainResult, pack size) when the run was just trained in a pack."""
    if store.state(spec.run_id) == "damaged":
        _set_aside_damage(store, spec.run_id)
    stage = pending_stage(spec, store, metrics)  # again: another process may have done it meanwhile
    if stage is None:
        return _done(store, spec.run_id, skipped=True)
    if stage == "train" and not train:
        return {"run_id": spec.run_id, "status": "untrained", "skipped": True}
    if packed is None:  # (a pack prepared its runs' folders before it trained)
        _prepare(spec, run_dir)
    try:
        device = resolve_device(spec.device)
        dataset = load_dataset(spec.dataset, spec.dataset_params, Path(data_root))
        if stage != "train":
            model = None
        elif packed is not None:
            model = finish_training(spec, store, dataset, device, packed[0], packed[1], packed[2])
        else:
            model = train_stage(spec, store, dataset, device, progress, on_trainer)
        if not (run_dir / CONFIG).is_file():  # the folder was removed or emptied while training
            write_json(run_dir / CONFIG, spec.to_json())
            log_event(run_dir, "config.json was gone when the run finished training (was the run "
                               "folder removed while it trained?); written again")
        errors = evaluation_stage(spec, store, dataset, device, Path(data_root),
                                  Path(fid_weights) if fid_weights else None, model=model,
                                  metrics=metrics)
        return {"run_id": spec.run_id, "status": "done", "skipped": False,
                "trained": stage == "train", "metric_errors": errors}
    except Exception as e:
        reason = str(e) if isinstance(e, VaebenchError) else f"{type(e).__name__}: {e}"
        atomic_write_bytes(run_dir / TRACEBACK, traceback.format_exc().encode())
        write_json(run_dir / FAILED, {"status": "failed", "run_id": spec.run_id, "reason": reason,
                                      "error_type": type(e).__name__, "traceback": str(run_dir / TRACEBACK),
                                      "failed_at": _now()})
        return {"run_id": spec.run_id, "status": "failed", "reason": reason}


def run_pack(specs: list[RunSpec | dict], results_dir: str | Path, data_root: str | Path,
             progress: bool = True, fid_weights: str | Path | None = None,
             on_trainer: Callable | None = None) -> list[dict]:
    """`run_job` for the runs of one pack (vaebench/runner/pack.py: runs of one configuration
    that differ in seed and the model's loss scalars): the ones still to train train together as one vmapped computation,
    then each is finished and evaluated on its own, into its own folder, as run_job would.
    Runs trained already are evaluated alone, runs another process holds are left to it, and
    when the runs cannot train as a pack (a variant that cannot be packed, checkpoints of
    different steps, a failure such as a NaN loss in one of them) each trains alone, resuming
    from the checkpoint the pack wrote, so one run's failure stays its own. Returns run_job's
    status dicts, in the order of `specs`."""
    specs = [RunSpec.from_json(s) if isinstance(s, dict) else s for s in specs]
    store = RunStore(Path(results_dir) / specs[0].suite)
    out: dict[str, dict] = {}
    with contextlib.ExitStack() as locks:
        held = []
        for spec in specs:
            if pending_stage(spec, store) != "train":
                continue
            lock = locks.enter_context(RunLock(store.run_dir(spec.run_id)))
            if lock.held:
                if pending_stage(spec, store) == "train":  # again, now that it is ours
                    held.append(spec)
            else:
                out[spec.run_id] = {"run_id": spec.run_id, "status": "busy", "skipped": True,
                                    "holder": lock.holder}
        packed = _train_pack(held, store, Path(data_root), progress, on_trainer) if len(held) > 1 else {}
        for spec in held:
            out[spec.run_id] = _run_locked(spec, store, store.run_dir(spec.run_id), data_root, progress,
                                           fid_weights, True, None, on_trainer, packed.get(spec.run_id))
    for spec in specs:
        if spec.run_id not in out:
            out[spec.run_id] = run_job(spec, results_dir, data_root, progress, fid_weights)
    return [out[s.run_id] for s in specs]


def _train_pack(specs: list[RunSpec], store: RunStore, data_root: Path, progress: bool,
                on_trainer) -> dict[str, tuple]:
    """Train the (locked) runs as one pack: {run_id: (model, TrainResult, pack size)}, or {}
    when they must train one by one (the reason goes to each run's events.log)."""
    from vaebench.runner.pack import NotPackable, PackedTrainer, build_member

    first = specs[0]
    for spec in specs:
        _prepare(spec, store.run_dir(spec.run_id))
    try:
        device = resolve_device(first.device)
        dataset = load_dataset(first.dataset, first.dataset_params, data_root)
        # each from its own spec: members may differ in the model's loss scalars (beta)
        members = [build_member(lambda: build_model(s, dataset), s.seed, store.run_dir(s.run_id))
                   for s in specs]
        reset_peak_memory(device)
        pack = PackedTrainer(members, dataset, first.train, device, progress=progress,
                             desc=f"pack of {len(specs)}: {first.model} on {first.dataset}")
        if on_trainer:
            on_trainer(pack)
        try:
            results = pack.run()
        finally:
            if on_trainer:
                on_trainer(None)
    except NotPackable as e:
        why = f"not trained as a pack ({e}); it trains alone"
    except Exception as e:
        why = (f"its pack of {len(specs)} stopped ({e if isinstance(e, VaebenchError) else repr(e)}); "
               f"it trains alone from its last checkpoint")
    else:
        for spec in specs:
            log_event(store.run_dir(spec.run_id), f"trained in a pack of {len(specs)} with "
                      + ", ".join(s.run_id for s in specs if s is not spec))
        return {s.run_id: (m.model, r, len(specs)) for s, m, r in zip(specs, members, results)}
    for spec in specs:
        log_event(store.run_dir(spec.run_id), why)
    return {}
