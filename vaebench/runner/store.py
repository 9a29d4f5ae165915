"""The results folder: one directory per run, every file written atomically.

results/<suite>/<run_id>/
    config.json       the resolved RunSpec (written when the run starts)
    checkpoint.pt     model + optimizers + step + RNG states (periodic, then final)
    train_log.csv     step, loss terms, images/s, elapsed seconds, session (0, then 1 after a resume...)
    model.pt          the trained model's weights after any post-training stage (the evaluations'
                      input; a state dict, loadable with weights_only=True)
    trained.json      training's record (cost, post-training stage, final loss terms, provenance);
                      its presence means the training stage is done
    evals/<metric>-<params hash>-e<eval seed>.json
                      one evaluation: scores, details, seconds; present = that evaluation is done
    codes.npz         the run's code table: posterior means of every factor-grid image it encoded
                      (rows, codes) and of the test split (test_codes), float32
    metrics.json      the run's summary (training record + the suite's evaluations), rewritten
                      after each evaluation; its presence means the run is done
    failed.json       why the run failed (reason, when); traceback.txt beside it
    recon.png, samples.png
results/<suite>/_local/<run_id>.log   the run process's output (local executor)

This module is the only one that knows these names and formats; everything else asks it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

# 2: configuration_id, eval_seed, provenance, post_training_seconds; one elbo of log p(x).
RESULTS_SCHEMA_VERSION = 2

CONFIG, CHECKPOINT, LOG, METRICS, FAILED, TRACEBACK = (
    "config.json", "checkpoint.pt", "train_log.csv", "metrics.json", "failed.json", "traceback.txt")
MODEL, TRAINED, EVALS, CODES = "model.pt", "trained.json", "evals", "codes.npz"


def evaluation_key(metric: str, params: dict, eval_seed: int) -> str:
    """The file stem of one evaluation: metric name, hash of its resolved params, evaluation seed."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
    return f"{metric}-{digest}-e{eval_seed}"


def _json_safe(obj):
    """NaN/inf become null, so every file stays valid JSON for other tools."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _json_safe(obj.item())
    return obj


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(_json_safe(obj), indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


class RunStore:
    """The folder of one suite's results: results/<suite>/."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    def run_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / CONFIG).is_file())

    def state(self, run_id: str) -> str:
        """'done', 'failed', 'started' (begun, not finished: the next run resumes it) or 'pending'."""
        d = self.run_dir(run_id)
        if (d / METRICS).is_file():
            return "done"
        if (d / FAILED).is_file():
            return "failed"
        if (d / CHECKPOINT).is_file() or (d / CONFIG).is_file():
            return "started"
        return "pending"

    def failure(self, run_id: str) -> dict:
        return read_json(self.run_dir(run_id) / FAILED)

    def metrics(self, run_id: str) -> dict:
        return read_json(self.run_dir(run_id) / METRICS)

    def config(self, run_id: str) -> dict:
        return read_json(self.run_dir(run_id) / CONFIG)

    # --- stages ------------------------------------------------------------------------------
    def is_trained(self, run_id: str) -> bool:
        return (self.run_dir(run_id) / TRAINED).is_file() and (self.run_dir(run_id) / MODEL).is_file()

    def trained(self, run_id: str) -> dict:
        return read_json(self.run_dir(run_id) / TRAINED)

    def write_trained(self, run_id: str, record: dict, model_state: bytes) -> None:
        """The model first, then the record that says it is there."""
        atomic_write_bytes(self.run_dir(run_id) / MODEL, model_state)
        write_json(self.run_dir(run_id) / TRAINED, {"schema_version": RESULTS_SCHEMA_VERSION, **record})

    def model_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / MODEL

    def evaluation_path(self, run_id: str, key: str) -> Path:
        return self.run_dir(run_id) / EVALS / f"{key}.json"

    def has_evaluation(self, run_id: str, key: str) -> bool:
        return self.evaluation_path(run_id, key).is_file()

    def evaluation(self, run_id: str, key: str) -> dict:
        return read_json(self.evaluation_path(run_id, key))

    def write_evaluation(self, run_id: str, key: str, record: dict) -> None:
        write_json(self.evaluation_path(run_id, key), {"schema_version": RESULTS_SCHEMA_VERSION,
                                                       "key": key, **record})

    def write_summary(self, run_id: str, summary: dict) -> None:
        write_json(self.run_dir(run_id) / METRICS, {"schema_version": RESULTS_SCHEMA_VERSION, **summary})

    # --- the code table ------------------------------------------------------------------------
    def codes(self, run_id: str) -> dict[str, np.ndarray] | None:
        """{"rows": (M,) int64 grid rows, "codes": (M, D) float32, "test_codes": (N, D) float32}
        or None when the run kept none."""
        path = self.run_dir(run_id) / CODES
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}

    def write_codes(self, run_id: str, rows: np.ndarray, codes: np.ndarray,
                    test_codes: np.ndarray | None) -> None:
        buf = io.BytesIO()
        arrays = {"rows": np.asarray(rows, dtype=np.int64), "codes": np.asarray(codes, dtype=np.float32)}
        if test_codes is not None:
            arrays["test_codes"] = np.asarray(test_codes, dtype=np.float32)
        np.savez(buf, **arrays)
        atomic_write_bytes(self.run_dir(run_id) / CODES, buf.getvalue())
    def record_failure(self, run_id: str, reason: str, error_type: str, config: dict,
                       traceback: str = "", **extra) -> None:
        """failed.json for a run that could not write it itself (its process or job died); also
        config.json if the run never started, so the leaderboard counts the failure."""
        d = self.run_dir(run_id)
        if not (d / CONFIG).is_file():
            write_json(d / CONFIG, config)
        write_json(d / FAILED, {"status": "failed", "run_id": run_id, "reason": reason,
                                "error_type": error_type, "traceback": traceback, **extra,
                                "failed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
