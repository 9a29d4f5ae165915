"""The results folder: one directory per run, every file written atomically.

results/<suite>/<run_id>/
    config.json       the resolved RunSpec (written when the run starts)
    checkpoint.pt     model + optimizers + step + RNG states (periodic, then final)
    train_log.csv     step, loss terms, images/s, elapsed seconds, session (0, then 1 after a resume...)
    metrics.json      the run's results; its presence means the run is done
    failed.json       why the run failed (reason, when); traceback.txt beside it
    recon.png, samples.png
results/<suite>/_local/<run_id>.log   the run process's output (local executor)
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS_SCHEMA_VERSION = 1

CONFIG, CHECKPOINT, LOG, METRICS, FAILED, TRACEBACK = (
    "config.json", "checkpoint.pt", "train_log.csv", "metrics.json", "failed.json", "traceback.txt")


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
