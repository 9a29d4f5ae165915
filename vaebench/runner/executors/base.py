"""What every executor implements: where a suite's runs execute, never what a run does.

An executor is one class registered by name (`@register_executor("pbs", ...)`) that starts
`run_job` (vaebench/runner/run.py) on each pending RunSpec somewhere. The CLI looks it up by
`--executor NAME` and only calls this interface:

    executor = cls(options)           # options: every `vaebench run` option, as a dict
    executor.check()                  # refuse bad options before anything is written
    outcomes = executor.submit(specs, target)
    outcomes = executor.wait(outcomes, target)      # with --wait (no-op where submit blocks)

An executor's own command-line options come from `add_options`; options only a cluster
understands carry its name as prefix (`--slurm-preset`) and every other executor ignores them.
`settle` and `describe` let `vaebench status` / `leaderboard` follow runs an executor still
holds after `vaebench run` returned (SLURM jobs).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from vaebench.runner.suite import RunSpec


@dataclass(frozen=True)
class RunTarget:
    """Where runs read data and write results, the same for every executor."""

    results_dir: Path
    data_root: Path
    fid_weights: Path | None = None
    progress: bool = True
    train: bool = True  # False: `vaebench evaluate`, which never trains
    metrics: tuple[str, ...] | None = None  # evaluate only these of the suite's metrics

    def suite_dir(self, suite: str) -> Path:
        return Path(self.results_dir) / suite


@dataclass(frozen=True)
class Outcome:
    """One run after `submit` / `wait`. queued: held by the executor (a SLURM job), not ended."""

    run_id: str
    suite: str
    # untrained: left for `vaebench run`; busy: another process holds the run's lock
    status: Literal["done", "failed", "queued", "untrained", "busy"]
    reason: str = ""
    skipped: bool = False  # done before this command started


class Executor:
    @classmethod
    def add_options(cls, parser: argparse._ArgumentGroup) -> None:
        """Add this executor's own `vaebench run` options (prefixed if only it understands them)."""

    def __init__(self, options: Mapping[str, Any]):
        self.options = dict(options)

    def check(self) -> None:
        """Raise VaebenchError for bad options before anything is written."""

    def submit(self, specs: list[RunSpec], target: RunTarget) -> list[Outcome]:
        """Start every pending run of `specs`; return one Outcome per spec."""
        raise NotImplementedError

    def wait(self, outcomes: list[Outcome], target: RunTarget) -> list[Outcome]:
        """Block until no outcome is queued; executors whose submit blocks return them as they are."""
        return outcomes

    @classmethod
    def settle(cls, suite_dir: Path) -> None:
        """Record runs this executor held that ended without finishing (before counting runs)."""

    @classmethod
    def describe(cls, run_dir: Path) -> str:
        """One line for `vaebench status` about how this executor holds the run ("" if it never did)."""
        return ""
