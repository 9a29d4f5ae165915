"""Run a suite's pending runs on this machine, each in its own process, `--jobs N` at once.

One process per run (`python -m vaebench.runner.executors.local_worker RUN_ID`):
- a run that kills its process (segfault, the kernel's out-of-memory kill) becomes a failed run
  whose reason names the signal and the run's log, and the other runs go on;
- each run's peak memory (the process's ru_maxrss, or CUDA's peak) is its own;
- N runs share the machine without oversubscribing it: this process's torch thread budget
  (`torch.get_num_threads()`: the physical cores, or $OMP_NUM_THREADS) is split evenly, each run
  getting budget // N threads (at least 1), set in the child through torch.set_num_threads and
  OMP/MKL/OpenBLAS/joblib environment variables;
- with several GPUs visible, run slot i sees GPU i mod #GPUs alone (CUDA_VISIBLE_DEVICES).

Default --jobs: one per GPU on a GPU machine; on a CPU machine one per thread of the budget (at
most 8), so each run has one thread. Small models use extra threads poorly and two-thread runs
suffer most when the cores are shared: on 2 idle cores a 4-run suite with --jobs 2 trained 1.25x
the images/s of --jobs 1 (benchmarks/jobs_throughput.py).

With the suite key `pack: K`, runs of one configuration that differ in seed train K at a time
in one process as one batched computation (vaebench/runner/pack.py), with that process's thread
share; each run still has its own folder, checkpoint, log and scores.

results/<suite>/_local/<run_id>.log        the run process's stdout and stderr (last attempt)
results/<suite>/_local/pack-<run_id>.log   the same for a pack, named after its first run
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm import tqdm

import vaebench
from vaebench.errors import VaebenchError
from vaebench.registry import register_executor
from vaebench.runner.executors.base import Executor, Outcome, RunTarget
from vaebench.runner.executors.local_worker import BUSY
from vaebench.runner.store import RunStore
from vaebench.runner.suite import RunSpec

LOG_FOLDER = "_local"
MAX_CPU_JOBS = 8  # each run process holds its own torch (~0.3-0.5 GB resident) and dataset
POLL_S = 0.1
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LOKY_MAX_CPU_COUNT")


def thread_budget() -> int:
    import torch

    return torch.get_num_threads()


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries for the children."""
    import torch

    if not torch.cuda.is_available():
        return []
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [g.strip() for g in given.split(",") if g.strip()] if given else []
    return ids[:torch.cuda.device_count()] or [str(i) for i in range(torch.cuda.device_count())]


def default_jobs(num_gpus: int, budget: int) -> int:
    """One run per GPU; without GPUs, one per thread of the budget, at most MAX_CPU_JOBS."""
    return num_gpus if num_gpus else max(1, min(budget, MAX_CPU_JOBS))


def thread_share(budget: int, jobs: int) -> int:
    """Threads per run so that `jobs` runs together use at most `budget` (but at least one each)."""
    return max(1, budget // max(1, jobs))


@dataclass
class _Running:
    specs: list[RunSpec]  # one run, or the runs of a pack
    proc: subprocess.Popen
    log: IO[bytes]
    log_path: Path
    slot: int
    started: float


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _last_line(path: Path) -> str:
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


@register_executor("local", description="this machine: one process per run, --jobs N at once "
                   "(default: one per GPU, or one per core on a CPU machine)")
class LocalExecutor(Executor):
    """Blocks until every run has ended; `wait` has nothing left to do."""

    @classmethod
    def add_options(cls, parser) -> None:
        parser.add_argument("--jobs", type=int, metavar="N",
                            help="runs at once, each in its own process with budget/N torch "
                                 "threads (default: one per GPU; on CPU, one per core, at most "
                                 f"{MAX_CPU_JOBS})")

    def check(self) -> None:
        jobs = self.options.get("jobs")
        if jobs is not None and jobs < 1:
            raise VaebenchError(f"--jobs {jobs}: give at least 1 (runs at once)")

    def submit(self, specs: list[RunSpec], target: RunTarget) -> list[Outcome]:
        self.check()
        outcomes: dict[str, Outcome] = {}
        todo = deque()
        from vaebench.runner.run import pending_stage

        evaluate_here = []
        for spec in specs:
            stage = pending_stage(spec, RunStore(target.suite_dir(spec.suite)), target.metrics)
            if stage is None:
                outcomes[spec.run_id] = Outcome(spec.run_id, spec.suite, "done", skipped=True)
            elif stage == "train" and not target.train:
                outcomes[spec.run_id] = Outcome(spec.run_id, spec.suite, "untrained", skipped=True)
            elif stage == "evaluate":
                evaluate_here.append(spec)
            else:
                todo.append(spec)
        for o in self._evaluate_here(evaluate_here, target):
            outcomes[o.run_id] = o
        if todo:
            from vaebench.runner.pack import plan_packs

            packs = deque(plan_packs(list(todo)))
            gpus, budget = visible_gpus(), thread_budget()
            asked = self.options.get("jobs") or default_jobs(len(gpus), budget)
            jobs = min(asked, len(packs))
            # The share follows --jobs, not how many runs happen to be left: a run's thread count
            # (and with it the float rounding of its kernels) must not depend on which other
            # runs were already done, or a resumed suite would not reproduce an uninterrupted one.
            threads = thread_share(budget, asked)
            in_packs = f" in {len(packs)} pack(s)" if len(packs) < len(todo) else ""
            print(f"{len(todo)} run(s){in_packs}, {jobs} at once, {threads} thread(s) each"
                  + (f", GPUs {','.join(gpus)}" if len(gpus) > 1 else ""), flush=True)
            for o in self._schedule(packs, target, jobs, threads, gpus):
                outcomes[o.run_id] = o
        return [outcomes[s.run_id] for s in specs]

    def _evaluate_here(self, specs: list[RunSpec], target: RunTarget) -> list[Outcome]:
        """Trained runs that only miss evaluations are evaluated in this process, one after
        another: a process of their own would cost more in start-up (~3-10 s of imports) than
        re-scoring from kept codes takes, and a failing metric is caught and recorded anyway."""
        from vaebench.runner.run import run_job

        out = []
        for spec in tqdm(specs, desc="evaluations", unit="run", disable=not target.progress or not specs,
                         dynamic_ncols=True):
            t0 = time.perf_counter()
            r = run_job(spec, target.results_dir, target.data_root, progress=False,
                        fid_weights=target.fid_weights, train=target.train,
                        metrics=list(target.metrics) if target.metrics else None)
            line = f"{r['status']:>6}  {spec.run_id}  (evaluated, {time.perf_counter() - t0:.1f} s)"
            if r["status"] == "failed":
                line += f"\n        reason: {r['reason']}"
            for name, reason in r.get("metric_errors", {}).items():
                line += f"\n        metric {name} failed: {reason}"
            tqdm.write(line, file=sys.stdout)
            status = r["status"] if r["status"] in ("failed", "busy") else "done"
            out.append(Outcome(spec.run_id, spec.suite, status, r.get("reason", r.get("holder", ""))))
        return out

    # --- the scheduler ---------------------------------------------------------------------
    def _schedule(self, todo: deque, target: RunTarget, jobs: int, threads: int,
                  gpus: list[str]) -> list[Outcome]:
        """`todo`: packs (lists of runs; most of one run), each started in a process of its own."""
        running: list[_Running] = []
        free = list(range(jobs))
        finished: list[Outcome] = []
        bar = tqdm(total=sum(len(p) for p in todo), desc="runs", unit="run",
                   disable=not target.progress, dynamic_ncols=True)
        try:
            while todo or running:
                while todo and free:
                    gpu = gpus[free[0] % len(gpus)] if len(gpus) > 1 else None
                    running.append(self._start(todo.popleft(), target, free.pop(0), threads, gpu))
                    bar.set_postfix_str(f"{len(running)} running")
                time.sleep(POLL_S)
                for r in [r for r in running if r.proc.poll() is not None]:
                    running.remove(r)
                    free.append(r.slot)
                    free.sort()
                    r.log.close()
                    seconds = time.perf_counter() - r.started
                    for spec in r.specs:
                        out = self._outcome(r, spec, target)
                        finished.append(out)
                        packed = f", pack of {len(r.specs)}" if len(r.specs) > 1 else ""
                        line = f"{out.status:>6}  {spec.run_id}  ({seconds:.1f} s{packed})"
                        if out.status in ("failed", "busy"):
                            line += f"\n        reason: {out.reason}"
                        for name, error in RunStore(target.suite_dir(spec.suite)).metric_errors(
                                spec.run_id).items():
                            line += f"\n        metric {name} failed: {error}"
                        bar.update(1)
                        tqdm.write(line, file=sys.stdout)
                    bar.set_postfix_str(f"{len(running)} running", refresh=False)
        finally:
            # Interrupted (Ctrl-C, an error here): stop the runs; they resume from their checkpoints.
            for r in running:
                r.proc.kill()
                r.proc.wait()
                r.log.close()
            bar.close()
        return finished

    def _start(self, specs: list[RunSpec], target: RunTarget, slot: int, threads: int,
               gpu: str | None) -> _Running:
        spec = specs[0]
        name = spec.run_id if len(specs) == 1 else f"pack-{spec.run_id}"
        log_path = target.suite_dir(spec.suite) / LOG_FOLDER / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ) | {name: str(threads) for name in THREAD_ENV}
        # The children import the same vaebench as this process, wherever it was imported from.
        package_root = str(Path(vaebench.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([package_root] + [p for p in
                                            env.get("PYTHONPATH", "").split(os.pathsep) if p])
        if gpu is not None and not spec.device.startswith("cuda:"):
            env["CUDA_VISIBLE_DEVICES"] = gpu
        job = {"specs": [s.to_json() for s in specs], "results_dir": str(target.results_dir),
               "data_root": str(target.data_root), "threads": threads, "parent": os.getpid(),
               "fid_weights": str(target.fid_weights) if target.fid_weights else None,
               "train": target.train, "metrics": list(target.metrics) if target.metrics else None}
        log = open(log_path, "wb")
        proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", "-m", "vaebench.runner.executors.local_worker",
             name], stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env)
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
        return _Running(list(specs), proc, log, log_path, slot, time.perf_counter())

    def _outcome(self, r: _Running, spec: RunSpec, target: RunTarget) -> Outcome:
        """What the run's files say when its process ended normally (run_job recorded the run as
        done or failed); a process that died or crashed before that makes it a failed run here."""
        store = RunStore(target.suite_dir(spec.suite))
        state = store.state(spec.run_id)
        code = r.proc.returncode
        if code == BUSY:
            return Outcome(spec.run_id, spec.suite, "busy", _last_line(r.log_path))
        if code == 0 and state == "done":
            return Outcome(spec.run_id, spec.suite, "done")
        if code == 0 and state == "failed":
            return Outcome(spec.run_id, spec.suite, "failed", store.failure(spec.run_id)["reason"])
        if code == 0 and len(r.specs) > 1:  # a pack leaves a run another process holds untouched
            return Outcome(spec.run_id, spec.suite, "busy", "another process holds the run")
        how = f"was killed by {_signal_name(code)}" if code < 0 else f"exited with code {code}"
        last = _last_line(r.log_path)
        reason = (f"the run's process {how} before the run finished"
                  + (" (SIGKILL: often the out-of-memory killer)" if code == -signal.SIGKILL else "")
                  + f"; log: {r.log_path}" + (f"; last line: {last}" if last else ""))
        store.record_failure(spec.run_id, reason, "ProcessDied", spec.to_json(),
                             traceback=str(r.log_path), returncode=code)
        return Outcome(spec.run_id, spec.suite, "failed", reason)

