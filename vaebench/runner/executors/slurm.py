"""Run a suite's pending runs on a SLURM cluster, as one submitit job array.

Each array task calls the same `run_job` as the local executor. SLURM does the scheduling; this
module only decides what to submit, records which job holds which run, and follows the jobs:

results/<suite>/_slurm/          submitit's folder: job scripts, pickles, <job>_0_log.out/.err
results/<suite>/<run_id>/slurm.json
    job_id, stdout/stderr log paths, preset, submitted_at, the run's config, and the ids of
    earlier jobs for this run (with why they ended)

A run is submitted unless it is done or its recorded job is still queued or running. A job that
ends without the run finishing (cancelled, out of memory, node failure...) becomes a failed run
(failed.json, as run_job writes it) whose reason names the job, its SLURM state and its stderr log.
Job states come from `sacct`, so the cluster must have job accounting (slurmdbd).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import submitit
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from submitit.core.utils import FailedJobError
from tqdm import tqdm

from vaebench.errors import VaebenchError
from vaebench.registry import register_executor
from vaebench.runner.executors.base import Executor, Outcome, RunTarget
from vaebench.runner.store import CONFIG, FAILED, RunStore, read_json, write_json
from vaebench.runner.suite import RunSpec

SLURM_FILE = "slurm.json"
SLURM_SCHEMA_VERSION = 1
REPO_PRESETS = Path(__file__).resolve().parents[3] / "slurm"

# States in which a job may still run the run (sacct / squeue names; "CANCELLED by 0" -> CANCELLED).
ACTIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING",
                 "COMPLETING", "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD"}
# sacct learns of a job asynchronously; give an unseen job this long before calling it lost.
UNSEEN_GRACE_S = 120
# What an ended job's state means for the person reading the failure.
END_MEANINGS = {
    "OUT_OF_MEMORY": "out of memory: the job used more than the preset's mem_gb; raise mem_gb in "
                     "the SLURM preset (or lower train.batch_size)",
    "TIMEOUT": "it hit the preset's time limit more often than max_requeues allows; raise time",
    "NODE_FAIL": "its node failed and the job was not requeued",
    "CANCELLED": "it was cancelled (scancel, or an administrator)",
    "PREEMPTED": "it was preempted and not requeued",
    "BOOT_FAIL": "its node failed to boot",
    "DEADLINE": "it passed its deadline",
}


# --- presets ---------------------------------------------------------------------------------

def _minutes(value: int | str) -> int:
    """SLURM's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S (or an int of minutes)."""
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a SLURM time; use minutes (120) or \"[D-]HH:MM:SS\"")
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is not None:  # D-H[:M[:S]]
        seconds = days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:  # H:M:S
        seconds = a * 3600 + b * 60 + c
    else:  # M[:S]
        seconds = a * 60 + (b or 0)
    return max(1, -(-seconds // 60))


class SlurmPreset(BaseModel):
    """Resources for every job of a suite; slurm/*.yaml. Unset keys are left to the cluster."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: int = Field(60, gt=0, description="minutes per job (YAML may give \"[D-]HH:MM:SS\")")
    cpus_per_task: int = Field(1, gt=0)
    mem_gb: float = Field(4, gt=0)
    gpus_per_node: int = Field(0, ge=0)
    constraint: str | None = None
    array_parallelism: int = Field(16, gt=0, description="most array tasks running at once")
    signal_delay_s: int = Field(120, ge=0, description="SIGUSR2 this long before the time limit")
    max_requeues: int = Field(3, ge=0, description="time-limit requeues before the run fails")
    setup: list[str] = Field(default_factory=list, description="shell lines run before Python")
    sbatch: dict[str, str | int | float | bool] = Field(default_factory=dict,
                                                        description="other sbatch options")
    python: str | None = Field(None, description="interpreter on the nodes (default: this one)")

    @field_validator("time", mode="before")
    @classmethod
    def _parse_time(cls, value):
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            return _minutes(value)
        return value

    def executor_parameters(self, job_name: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "name": job_name, "timeout_min": self.time, "cpus_per_task": self.cpus_per_task,
            "mem_gb": self.mem_gb, "slurm_array_parallelism": self.array_parallelism,
            "slurm_signal_delay_s": self.signal_delay_s}
        if self.gpus_per_node:  # --gpus-per-node=0 is an invalid GRES request on clusters without GPUs
            params["gpus_per_node"] = self.gpus_per_node
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(self, key):
                params[f"slurm_{key}"] = getattr(self, key)
        if self.setup:
            params["slurm_setup"] = list(self.setup)
        if self.sbatch:
            params["slurm_additional_parameters"] = dict(self.sbatch)
        return params

    def summary(self) -> str:
        parts = [f"{k}={getattr(self, k)}" for k in ("partition", "account", "qos", "constraint")
                 if getattr(self, k)]
        parts += [f"time={self.time}min", f"cpus={self.cpus_per_task}", f"mem={self.mem_gb:g}GB"]
        if self.gpus_per_node:
            parts.append(f"gpus={self.gpus_per_node}")
        return " ".join(parts)


def find_preset(name_or_path: str | Path) -> Path:
    """A YAML path, or a preset name looked up as slurm/<name>.yaml (here, then in the repo)."""
    given = Path(name_or_path)
    if given.suffix in (".yaml", ".yml") or given.parent != Path("."):
        if not given.is_file():
            raise VaebenchError(f"--slurm-preset {name_or_path}: no such file")
        return given
    folders = list(dict.fromkeys([Path.cwd() / "slurm", REPO_PRESETS]))
    for folder in folders:
        if (folder / f"{given}.yaml").is_file():
            return folder / f"{given}.yaml"
    known = sorted({p.stem for d in folders if d.is_dir() for p in d.glob("*.yaml")})
    raise VaebenchError(f"--slurm-preset {name_or_path!r}: no preset of that name in "
                        f"{', '.join(map(str, folders))}; known presets: "
                        f"{', '.join(known) or 'none'}. Or give a YAML path "
                        f"(see slurm/example-gpu.yaml)")


def load_preset(name_or_path: str | Path) -> tuple[SlurmPreset, Path]:
    path = find_preset(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise VaebenchError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise VaebenchError(f"{path}: a SLURM preset is a YAML mapping of keys such as partition, "
                            f"time, cpus_per_task, mem_gb; got {type(data).__name__}")
    try:
        return SlurmPreset.model_validate(data), path
    except ValidationError as e:
        lines = [f"{path}: invalid SLURM preset."]
        for err in e.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            given = "" if err["type"] == "missing" else f" (given: {err['input']!r})"
            lines.append(f"  {key}: {err['msg']}{given}")
        lines.append(f"  allowed keys: {', '.join(SlurmPreset.model_fields)}")
        raise VaebenchError("\n".join(lines)) from None


# --- the callable each array task runs --------------------------------------------------------

class SlurmRun(submitit.helpers.Checkpointable):
    """`run_job` for one array task. On preemption or an approaching time limit submitit calls
    `checkpoint`: save the trainer's state, then submitit requeues the job, which calls
    `run_job` again, and that resumes from the run's checkpoint.

    The trainer of the run in progress lives on this callable (`run_job` hands it over), not in
    a module global; it is left out of the pickle the requeue travels in."""

    def __init__(self, results_dir: str, data_root: str, fid_weights: str | None, train: bool = True):
        self.results_dir, self.data_root, self.fid_weights = results_dir, data_root, fid_weights
        self.train = train  # False: an evaluation job (`vaebench evaluate --executor slurm`)
        self.trainer = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "trainer": None}

    def _hold(self, trainer) -> None:
        self.trainer = trainer

    def __call__(self, job_runs: RunSpec | list[RunSpec]) -> dict | list[dict]:
        """One run, or a pack of runs trained together (the suite key `pack`)."""
        import torch  # imported in the job: submitting needs no torch

        from vaebench.runner.run import run_job, run_pack

        runs = job_runs if isinstance(job_runs, list) else [job_runs]
        spec = runs[0]

        env = os.environ
        job = (f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}" if "SLURM_ARRAY_JOB_ID" in env
               else env.get("SLURM_JOB_ID", "?"))
        # Without CPU binding torch starts a thread per core of the node; jobs sharing a node then
        # oversubscribe it and each runs many times slower. Use the CPUs the job was given.
        if env.get("SLURM_CPUS_PER_TASK"):
            torch.set_num_threads(int(env["SLURM_CPUS_PER_TASK"]))
        from vaebench.runner.store import log_event

        start = int(env.get("SLURM_RESTART_COUNT", 0)) + 1
        names = ", ".join(r.run_id for r in runs)
        print(f"vaebench: run{'s' if len(runs) > 1 else ''} {names}, SLURM job {job} (start {start}, "
              f"{torch.get_num_threads()} threads)", flush=True)
        for r in runs:
            log_event(Path(self.results_dir) / r.suite / r.run_id,
                      f"SLURM job {job} start {start} on {env.get('SLURMD_NODENAME', '?')}")
        if len(runs) > 1:
            return run_pack(runs, self.results_dir, self.data_root, progress=False,
                            fid_weights=self.fid_weights, on_trainer=self._hold)
        return run_job(spec, self.results_dir, self.data_root, progress=False,
                       fid_weights=self.fid_weights, train=self.train, on_trainer=self._hold)

    def checkpoint(self, *args, **kwargs):
        trainer = self.trainer
        # Mid-step the weights are half-updated: keep the last periodic checkpoint instead.
        if trainer is not None:
            if trainer.save_if_between_steps():
                print(f"vaebench: saved a checkpoint at step {trainer.step}", flush=True)
            else:
                print("vaebench: signalled mid-step; the requeued job resumes from the last "
                      "periodic checkpoint", flush=True)
        return super().checkpoint(*args, **kwargs)


# --- job states -----------------------------------------------------------------------------

def _slurm_command(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    if shutil.which(args[0]) is None:
        raise VaebenchError(f"`{args[0]}` not found: --executor slurm needs the SLURM client commands "
                            f"of a cluster's submit node. For the single-node test cluster: "
                            f"`sudo bash slurm/cluster.sh start && source /tmp/slurm-single-node/env.sh`")
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise VaebenchError(f"`{' '.join(args[:3])} ...` did not answer in {timeout:.0f} s; is the "
                            f"SLURM controller up (`scontrol ping`)?") from None


def _sacct(args: list[str]) -> str:
    out = _slurm_command(["sacct", *args])
    if out.returncode != 0:
        raise VaebenchError(f"sacct failed: {out.stderr.strip()}. vaebench follows SLURM jobs through "
                            f"job accounting (slurmdbd), which this cluster must have; ask its admins "
                            f"(slurm/cluster.sh shows a single-node setup)")
    return out.stdout


def _parse_sacct(text: str) -> dict[str, str]:
    """`sacct --parsable2 -o JobID,State` -> {job id: state}. Tasks still queued share one line
    ("12_[2-3%1]|PENDING"); a task's own line, when there is one, is newer and wins."""
    ranged, own = {}, {}
    for line in text.splitlines()[1:]:
        jid, _, state = line.partition("|")
        m = re.fullmatch(r"(\d+)_\[([\d,-]+)(?:%\d+)?\]", jid)
        if not m:
            own[jid] = state
            continue
        for part in m.group(2).split(","):
            lo, _, hi = part.partition("-")
            for i in range(int(lo), int(hi or lo) + 1):
                ranged[f"{m.group(1)}_{i}"] = state
    return ranged | own


def job_states(job_ids: list[str]) -> dict[str, str]:
    """SLURM state per job id ("12_3" -> "RUNNING", "CANCELLED by 0"...); unknown ids are absent."""
    job_ids = sorted(set(job_ids))
    if not job_ids:
        return {}
    args = ["-X", "--parsable2", "-o", "JobID,State"]
    for main_id in sorted({j.split("_")[0] for j in job_ids}):
        args += ["-j", main_id]
    known = _parse_sacct(_sacct(args))
    states = {j: known[j] for j in job_ids if j in known}
    # Ask the controller too about jobs the database does not know yet (just submitted) and
    # about jobs it calls ended: after a node failure sacct says NODE_FAIL while SLURM has
    # already requeued the job, which is then still PENDING in the queue.
    ask = [j for j in job_ids if j not in states or not is_active(states[j])]
    if ask:
        out = _slurm_command(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(ask)])
        for line in out.stdout.splitlines():
            jid, _, state = line.partition("|")
            if jid in ask and (jid not in states or is_active(state)):
                states[jid] = state
    return states


def held_jobs(job_ids: list[str]) -> dict[str, str]:
    """Pending jobs SLURM holds (reason JobHeldAdmin, JobHeldUser, "launch failed requeued
    held"...): they never start until released. job id -> SLURM's reason."""
    if not job_ids:
        return {}
    out = _slurm_command(["squeue", "-h", "-r", "-t", "PD", "-o", "%i|%r", "-j",
                          ",".join(sorted(set(job_ids)))])
    held = {}
    for line in out.stdout.splitlines():
        jid, _, reason = line.partition("|")
        if "held" in reason.lower():
            held[jid] = reason
    return held


def job_attempts(job_id: str) -> list[str]:
    """The states of a job's earlier attempts, oldest first (a job requeued after a node failure
    or preemption shows NODE_FAIL / PREEMPTED / REQUEUED here); [] when it never restarted."""
    out = _sacct(["-X", "-D", "--parsable2", "-o", "JobID,State", "-j", job_id.split("_")[0]])
    states = [line.partition("|")[2] for line in out.splitlines()[1:]
              if line.partition("|")[0] == job_id]
    return states[:-1]


def is_active(state: str | None) -> bool:
    return bool(state) and state.split()[0] in ACTIVE_STATES


def has_ended(record: dict, state: str | None) -> bool:
    """True once the job can no longer run the run. A job SLURM does not know (yet) counts as
    ended only after a grace period."""
    if state is None:
        return time.time() - record["submitted_unix"] > UNSEEN_GRACE_S
    return not is_active(state)


# --- slurm.json and failures ------------------------------------------------------------------

def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_record(run_dir: Path) -> dict | None:
    path = Path(run_dir) / SLURM_FILE
    return read_json(path) if path.is_file() else None


def record_job_end(run_dir: Path, record: dict, state: str) -> dict:
    """The job ended without the run finishing: write failed.json (and config.json if the job never
    started, so the leaderboard counts the failure). Returns the failure."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        write_json(run_dir / CONFIG, record["config"])
    meaning = END_MEANINGS.get("OUT_OF_MEMORY" if _killed_for_memory(record) else
                               (state or "").split()[0] if state else "", "")
    reason = (f"SLURM job {record['job_id']} ended as {state or 'UNKNOWN (no record in sacct)'} "
              f"before the run finished{f' ({meaning})' if meaning else ''}; {_log_note(record)}")
    failure = {"status": "failed", "run_id": record["run_id"], "reason": reason,
               "error_type": "SlurmJobEnded", "slurm_job_id": record["job_id"], "slurm_state": state,
               "traceback": record["stderr"], "failed_at": _now()}
    write_json(run_dir / FAILED, failure)
    return failure


# slurmstepd's words in the job's stderr when it kills a job over its memory: with cgroups
# ("oom_kill event"; the job then ends OUT_OF_MEMORY) or with jobacct_gather's OverMemoryKill
# ("Exceeded job memory limit"; the job then ends FAILED).
OOM_MARKERS = ("exceeded job memory limit", "exceeded memory limit", "oom_kill event", "oom-kill event")


def _killed_for_memory(record: dict) -> bool:
    path = Path(record["stderr"])
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 20_000))
        tail = f.read().decode(errors="replace").lower()
    return any(marker in tail for marker in OOM_MARKERS)


def _log_note(record: dict) -> str:
    if Path(record["stderr"]).is_file():
        return f"stderr: {record['stderr']}"
    return "it never started (no log)"


def _settle(store: RunStore, run_id: str, record: dict, state: str | None) -> str:
    """After the job ended: 'done' or 'failed' (recording a failure run_job could not write)."""
    run_state = store.state(run_id)
    if run_state not in ("done", "failed"):
        record_job_end(store.run_dir(run_id), record, state or "")
        run_state = "failed"
    return run_state


def settle_ended_jobs(suite_dir: Path) -> list[str]:
    """Record as failed every run whose SLURM job has ended without finishing it (one sacct call);
    for `vaebench status` and `vaebench leaderboard` before they count runs. Returns those runs."""
    store = RunStore(suite_dir)
    records = {p.parent.name: read_json(p) for p in sorted(Path(suite_dir).glob(f"*/{SLURM_FILE}"))}
    records = {rid: r for rid, r in records.items() if store.state(rid) not in ("done", "failed")}
    states = job_states([r["job_id"] for r in records.values()])
    ended = [rid for rid, r in records.items() if has_ended(r, states.get(r["job_id"]))]
    for rid in ended:
        _settle(store, rid, records[rid], states.get(records[rid]["job_id"]))
    return ended


def describe_job(run_dir: Path) -> str:
    """One line for `vaebench status`: the run's SLURM job, its state, and its stderr log once it
    has ended. A job found ended while the run is unfinished is recorded as a failed run."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    if record is None:
        return ""
    try:
        state = job_states([record["job_id"]]).get(record["job_id"])
    except VaebenchError as e:
        return f"slurm job {record['job_id']} (state unavailable: {e})"
    line = f"slurm job {record['job_id']} {state or 'UNKNOWN'}"
    try:
        earlier = job_attempts(record["job_id"])
    except VaebenchError:
        earlier = []
    if earlier:
        line += f" (restarted {len(earlier)}x; earlier attempts: {', '.join(earlier)})"
    if has_ended(record, state):
        store = RunStore(run_dir.parent)
        if _settle(store, run_dir.name, record, state) == "failed":
            line += f", {_log_note(record)}"
    return line


# --- submit and wait ---------------------------------------------------------------------------

def _executor(folder: Path, preset: SlurmPreset, job_name: str) -> submitit.AutoExecutor:
    kwargs: dict[str, Any] = {"slurm_max_num_timeout": preset.max_requeues}
    if preset.python:
        kwargs["slurm_python"] = preset.python
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm", **kwargs)
    executor.update_parameters(**preset.executor_parameters(job_name))
    return executor


def submit(specs: list[RunSpec], results_dir: Path, data_root: Path, preset: SlurmPreset,
           preset_path: Path, fid_weights: Path | None = None,
           train: bool = True) -> tuple[list[str], list[str]]:
    """Submit every run that is neither done nor held by a live job. Returns (submitted run ids,
    run ids already held by a queued or running job)."""
    from vaebench.runner.pack import plan_packs
    from vaebench.runner.run import pending_stage

    if not specs:
        return [], []
    results_dir = Path(results_dir).resolve()
    suite_dir = results_dir / specs[0].suite
    store = RunStore(suite_dir)
    records = {s.run_id: read_record(store.run_dir(s.run_id)) for s in specs}
    states = job_states([r["job_id"] for r in records.values() if r])
    to_train, to_evaluate, held = [], [], []
    for spec in specs:
        stage = pending_stage(spec, store)
        if stage is None or (stage == "train" and not train):
            continue
        record = records[spec.run_id]
        if record and not has_ended(record, states.get(record["job_id"])):
            held.append(spec.run_id)
        else:
            (to_train if stage == "train" else to_evaluate).append(spec)
    # One array task per pack (the suite key `pack`: runs of one configuration train together).
    packs = plan_packs(to_train) + [[s] for s in to_evaluate]
    todo = [s for p in packs for s in p]
    if not todo:
        return [], held
    _sacct(["-n", "-X", "-S", "now", "-o", "JobID"])  # no accounting: refuse before submitting

    executor = _executor(suite_dir / "_slurm", preset, f"vaebench-{specs[0].suite}")
    fn = SlurmRun(str(results_dir), str(Path(data_root).resolve()),
                  str(Path(fid_weights).resolve()) if fid_weights else None, train)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):  # submitit echoes sbatch's error; we raise it once
            jobs = executor.map_array(fn, [p if len(p) > 1 else p[0] for p in packs])
    except FailedJobError as e:
        message = "\n  ".join((str(e).strip() or stderr.getvalue().strip()).splitlines())
        raise VaebenchError(
            f"sbatch refused the job array ({len(todo)} runs in {len(packs)} tasks, preset {preset_path}: "
            f"{preset.summary()}):\n  {message}\nAsk for what the cluster has (`sinfo -o '%P %c %m %G "
            f"%l'` lists CPUs, memory in MB, GPUs and time limit per partition) in {preset_path}."
        ) from None

    for spec, job, pack in [(s, job, p) for p, job in zip(packs, jobs, strict=True) for s in p]:
        run_dir = store.run_dir(spec.run_id)
        old, history = records[spec.run_id], []
        if old:
            history = old.get("previous", []) + [{"job_id": old["job_id"],
                                                   "state": states.get(old["job_id"])}]
        if (run_dir / FAILED).is_file():
            # This job retries the run: keep why the last attempt failed, and show it as queued.
            if history:
                history[-1]["reason"] = store.failure(spec.run_id)["reason"]
            (run_dir / FAILED).unlink()
        write_json(run_dir / SLURM_FILE, {
            "schema_version": SLURM_SCHEMA_VERSION, "run_id": spec.run_id, "job_id": job.job_id,
            "folder": str(job.paths.folder), "stdout": str(job.paths.stdout),
            "stderr": str(job.paths.stderr), "preset": str(preset_path.resolve()),
            "submitted_at": _now(), "submitted_unix": time.time(), "previous": history,
            "pack": [s.run_id for s in pack], "config": spec.to_json()})
    return [s.run_id for s in todo], held


def wait_for_jobs(suite_dir: Path, run_ids: list[str], progress: bool = True, poll_s: float = 2.0,
                  max_poll_s: float = 30.0) -> dict[str, str]:
    """Block until the jobs holding these runs have ended; returns run_id -> 'done' | 'failed'.
    Polls sacct (one call for all jobs), more slowly the longer it waits."""
    store = RunStore(suite_dir)
    records = {rid: read_record(store.run_dir(rid)) for rid in run_ids}
    remaining, outcome, said_held = set(run_ids), {}, set()
    bar = tqdm(total=len(remaining), desc="slurm jobs", unit="run", disable=not progress,
               dynamic_ncols=True)
    start = time.monotonic()
    try:
        while remaining:
            states = job_states([records[r]["job_id"] for r in remaining])
            for rid in sorted(remaining):
                record, state = records[rid], states.get(records[rid]["job_id"])
                if not has_ended(record, state):
                    continue
                outcome[rid] = _settle(store, rid, record, state)
                remaining.discard(rid)
                line = f"{outcome[rid]:>6}  {rid}  (slurm job {record['job_id']} {state or 'UNKNOWN'})"
                if outcome[rid] == "failed":
                    line += f"\n        reason: {store.failure(rid)['reason']}"
                bar.update(1)
                tqdm.write(line, file=sys.stdout)
            live = {records[r]["job_id"]: states.get(records[r]["job_id"], "PENDING").split()[0]
                    for r in remaining}  # a pack's runs share one job
            pending = [j for j, st in live.items() if st == "PENDING" and j not in said_held]
            for jid, reason in held_jobs(pending).items():
                said_held.add(jid)
                tqdm.write(f"  held  slurm job {jid} ({reason}): SLURM will not start it until it "
                           f"is released: `scontrol release {jid}`", file=sys.stdout)
            running = sum(live[records[r]["job_id"]] == "RUNNING" for r in remaining)
            bar.set_postfix(running=running, queued=len(remaining) - running)
            if remaining:
                time.sleep(min(max_poll_s, poll_s + (time.monotonic() - start) / 20))
    finally:
        bar.close()
    return outcome


@register_executor("slurm", description="a SLURM cluster through submitit: one job array per "
                   "suite, checkpointed and requeued on preemption; --slurm-preset NAME|PATH")
class SlurmExecutor(Executor):
    """Submits the pending runs and returns; `wait` follows the jobs until they have ended."""

    @classmethod
    def add_options(cls, parser) -> None:
        parser.add_argument("--slurm-preset", metavar="NAME|PATH", default="local",
                            help="SLURM resources: a preset name from slurm/ or a YAML path "
                                 "(default: local)")

    def check(self) -> None:
        self.preset, self.preset_path = load_preset(self.options.get("slurm_preset") or "local")

    def submit(self, specs: list[RunSpec], target: RunTarget) -> list[Outcome]:
        if not specs:
            return []
        if not hasattr(self, "preset"):
            self.check()
        suite_dir = target.suite_dir(specs[0].suite)
        submitted, held = submit(specs, target.results_dir, target.data_root, self.preset,
                                 self.preset_path, target.fid_weights, target.train)
        if submitted:
            first = read_record(RunStore(suite_dir).run_dir(submitted[0]))["job_id"].split("_")[0]
            print(f"submitted {len(submitted)} run(s) as SLURM job {first} "
                  f"(preset {self.preset_path}: {self.preset.summary()}); logs in "
                  f"{suite_dir / '_slurm'}/")
        if held:
            print(f"{len(held)} run(s) already queued or running on SLURM; not submitted again")
        waiting = set(submitted) | set(held)
        return [Outcome(s.run_id, s.suite, "queued") if s.run_id in waiting
                else Outcome(s.run_id, s.suite, "done", skipped=True) for s in specs]

    def wait(self, outcomes: list[Outcome], target: RunTarget) -> list[Outcome]:
        queued = [o.run_id for o in outcomes if o.status == "queued"]
        if not queued:
            return outcomes
        suite_dir = target.suite_dir(outcomes[0].suite)
        ended = wait_for_jobs(suite_dir, queued, progress=target.progress)
        return [Outcome(o.run_id, o.suite, ended[o.run_id]) if o.run_id in ended else o
                for o in outcomes]

    @classmethod
    def settle(cls, suite_dir: Path) -> None:
        """Record SLURM jobs that ended without finishing their run as failed runs."""
        if any(Path(suite_dir).glob(f"*/{SLURM_FILE}")):
            try:
                settle_ended_jobs(suite_dir)
            except VaebenchError as e:
                print(f"warning: {e}", file=sys.stderr)

    @classmethod
    def describe(cls, run_dir: Path) -> str:
        return describe_job(run_dir) if (Path(run_dir) / SLURM_FILE).is_file() else ""
