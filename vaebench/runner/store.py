"""The results folder: one directory per run, every file written atomically.

results/<suite>/<run_id>/
    config.json       the resolved RunSpec (written when the run starts)
    checkpoint.pt     model + optimizers + step + RNG states (periodic, then final); tensors and
                      plain values only, loaded with torch.load(weights_only=True)
    checkpoint.prev.pt the checkpoint before it, kept so a damaged checkpoint.pt costs one interval
    *.damaged-<UTC>   a file that could not be read, set aside (never deleted)
    events.log        one line per recovery (checkpoint set aside, resumed from, started afresh)
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
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from vaebench.errors import VaebenchError
from vaebench.files import atomic_write_bytes, read_json, write_json  # noqa: F401  (its callers import them here)

# 2: configuration_id, eval_seed, provenance, post_training_seconds; one elbo of log p(x).
RESULTS_SCHEMA_VERSION = 2

CONFIG, CHECKPOINT, LOG, METRICS, FAILED, TRACEBACK = (
    "config.json", "checkpoint.pt", "train_log.csv", "metrics.json", "failed.json", "traceback.txt")
PREV_CHECKPOINT, EVENTS, SUITE = "checkpoint.prev.pt", "events.log", "suite.json"
MODEL, TRAINED, EVALS, CODES = "model.pt", "trained.json", "evals", "codes.npz"


def evaluation_key(metric: str, params: dict, eval_seed: int) -> str:
    """The file stem of one evaluation: metric name, hash of its resolved params, evaluation seed."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
    return f"{metric}-{digest}-e{eval_seed}"








def check_writable(folder: Path, reserve: int = 1 << 20) -> None:
    """Refuse a folder we cannot write `reserve` bytes into, leaving nothing behind.

    Folders it had to create are removed again on failure, so a refused start writes nothing.
    """
    from vaebench.errors import VaebenchError

    folder = Path(folder)
    created = []
    probe = None
    try:
        for parent in reversed([folder, *folder.parents]):
            if not parent.exists():
                parent.mkdir()
                created.append(parent)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * reserve)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        if probe:
            Path(probe).unlink(missing_ok=True)
        for d in reversed(created):
            try:
                d.rmdir()
            except OSError:
                pass
        raise VaebenchError(f"cannot write into {folder}: {e.strerror}. Free space, fix the "
                            f"folder's permissions or give another folder.") from None
    Path(probe).unlink(missing_ok=True)


def remove_temp_files(folder: Path) -> int:
    """Delete the temporary files of writes that were killed (`.<name>.*.tmp`); returns bytes freed.

    Only call this while holding the run's lock: another writer's temporary file is live.
    """
    freed = 0
    for tmp in Path(folder).glob(".*.tmp"):
        try:
            size = tmp.stat().st_size
            tmp.unlink()
            freed += size
        except FileNotFoundError:
            pass
    return freed


def log_event(run_dir: Path, message: str) -> None:
    """One timestamped line in the run's events.log (recoveries, lock waits): appended, not atomic."""
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(run_dir) / EVENTS, "a") as f:
        f.write(f"{stamp} {message}\n")


def set_aside(path: Path) -> Path:
    """Rename a file that cannot be read to `<name>.damaged-<UTC time>` beside it; never delete it."""
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    aside = Path(path).with_name(f"{Path(path).name}.damaged-{stamp}")
    os.replace(path, aside)
    return aside






class DamagedFile(VaebenchError):
    """A results file that exists but cannot be used: truncated, empty, not JSON, wrong shape."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = Path(path), problem

    def __reduce__(self):  # copyable and picklable (pandas deep-copies a table's attrs)
        return (DamagedFile, (self.path, self.problem))


class _Cost(BaseModel):
    device: str
    train_seconds: float
    images_per_s: float
    eval_seconds: float
    peak_memory_bytes: float


class _MetricsFile(BaseModel):
    """What readers of metrics.json rely on (more keys are allowed)."""
    dataset: str
    model: str
    model_params: dict
    seed: int
    scores: dict[str, float | None]
    cost: _Cost


class _ConfigFile(BaseModel):
    dataset: str
    model: str
    model_params: dict
    seed: int


class _FailedFile(BaseModel):
    reason: str


class _SuiteFile(BaseModel):
    run_ids: list[str]


_SHAPES = {METRICS: _MetricsFile, CONFIG: _ConfigFile, FAILED: _FailedFile, SUITE: _SuiteFile}


def read_checked(path: Path) -> dict:
    """A results JSON file, checked against the shape its readers rely on; DamagedFile if not."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DamagedFile(path, f"cannot be read ({e.strerror})") from None
    if not raw.strip():
        raise DamagedFile(path, "empty")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise DamagedFile(path, "not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise DamagedFile(path, f"not valid JSON, truncated? ({e.msg} at line {e.lineno} "
                                f"column {e.colno})") from None
    if not isinstance(obj, dict):
        raise DamagedFile(path, f"a JSON {type(obj).__name__}, not an object")
    shape = _SHAPES.get(path.name)
    if shape is not None:
        try:
            shape.model_validate(obj)
        except ValidationError as e:
            wrong = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()[:4])
            raise DamagedFile(path, f"not a vaebench {path.name} ({wrong})") from None
    return obj


class RunStore:
    """The folder of one suite's results: results/<suite>/."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    def run_ids(self) -> list[str]:
        """Run folders: any with config.json, metrics.json or failed.json (a done run that lost
        its config.json is listed, and reported as damaged)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if any((p / name).is_file() for name in (CONFIG, METRICS, FAILED)))

    def state(self, run_id: str) -> str:
        """'done', 'damaged' (metrics.json or config.json unreadable or missing: see `damage`),
        'failed', 'started' (begun, not finished: the next run resumes it) or 'pending'."""
        d = self.run_dir(run_id)
        if (d / METRICS).is_file():
            return "damaged" if self.damage(run_id) else "done"
        if (d / FAILED).is_file():
            return "failed"
        if (d / CHECKPOINT).is_file() or (d / CONFIG).is_file():
            return "started"
        return "pending"

    def damage(self, run_id: str) -> DamagedFile | None:
        """Why a finished run cannot be used, or None: both its metrics.json and config.json
        must read back."""
        d = self.run_dir(run_id)
        for name in (METRICS, CONFIG):
            if not (d / name).is_file():
                return DamagedFile(d / name, "missing (the run folder was removed or emptied "
                                             "while the run trained?)")
            try:
                read_checked(d / name)
            except DamagedFile as e:
                return e
        return None

    def failure(self, run_id: str) -> dict:
        """failed.json; a damaged one still gives a reason that says so."""
        try:
            return read_checked(self.run_dir(run_id) / FAILED)
        except DamagedFile as e:
            return {"reason": f"(the failure record is damaged: {e})"}

    def metrics(self, run_id: str) -> dict:
        return read_checked(self.run_dir(run_id) / METRICS)

    def config(self, run_id: str) -> dict:
        return read_checked(self.run_dir(run_id) / CONFIG)

    def planned_run_ids(self) -> list[str]:
        """suite.json's run ids (written by `run`); [] if absent. DamagedFile if unreadable."""
        path = self.root / SUITE
        return read_checked(path)["run_ids"] if path.is_file() else []

    def metric_errors(self, run_id: str) -> dict[str, str]:
        """{metric: error} for the metrics of a done run that failed at run time."""
        try:
            m = self.metrics(run_id)
        except DamagedFile:
            return {}
        return {name: r["error"] for name, r in (m.get("metrics") or {}).items()
                if isinstance(r, dict) and "error" in r}


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
