"""Registries for models, datasets, metrics and executors: a name -> entry table and a
did-you-mean lookup.

Each registry knows the package whose import registers its entries (timm's `models/__init__.py`
imports every model file); the first lookup imports it, so a lookup works whatever the caller
imported before.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from vaebench.errors import VaebenchError

Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    description: str  # one line, shown by `vaebench list`
    paper: str = ""  # "Authors Year, Title" for models and metrics
    # Metrics only: which way each score column is better, by name or fnmatch pattern
    # ({"elbo": "higher", "elbo_*": "lower"}), and small parameters for smoke suites.
    scores: dict[str, Direction] = field(default_factory=dict)
    quick_params: dict[str, Any] = field(default_factory=dict)


class Registry:
    def __init__(self, kind: str, package: str):
        self.kind, self.package = kind, package
        self._entries: dict[str, Entry] = {}
        self._filled = False

    def _fill(self) -> None:
        if not self._filled:
            self._filled = True  # set first: the package's own lookups during import must not recurse
            importlib.import_module(self.package)

    def register(self, name: str, *, description: str, paper: str = "", **metadata) -> Callable:
        def decorator(obj):
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, obj, description, paper, **metadata)
            return obj

        return decorator

    def entry(self, name: str, where: str = "") -> Entry:
        self._fill()
        if name not in self._entries:
            known = sorted(self._entries)
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            at = f"{where}: " if where else ""
            raise VaebenchError(
                f"{at}unknown {self.kind} {name!r}.{hint} "
                f"Known {self.kind}s: {', '.join(known)} (see `vaebench list {self.kind}s`)."
            )
        return self._entries[name]

    def get(self, name: str, where: str = "") -> Any:
        return self.entry(name, where).obj

    def __contains__(self, name: str) -> bool:
        self._fill()
        return name in self._entries

    def entries(self) -> list[Entry]:
        self._fill()
        return [self._entries[k] for k in sorted(self._entries)]


MODELS = Registry("model", "vaebench.models")
DATASETS = Registry("dataset", "vaebench.data")
METRICS = Registry("metric", "vaebench.metrics")
EXECUTORS = Registry("executor", "vaebench.runner.executors")

register_model = MODELS.register
register_dataset = DATASETS.register
register_executor = EXECUTORS.register


def register_metric(name: str, *, description: str, scores: dict[str, Direction],
                    paper: str = "", quick_params: dict[str, Any] | None = None) -> Callable:
    """`scores`: every score column the metric returns -> "higher" or "lower" (is better); keys
    may be fnmatch patterns for columns named at run time ("fid_*"). `quick_params`: keyword
    parameters small enough for a smoke suite (seconds on a CPU)."""
    bad = {k: v for k, v in scores.items() if v not in ("higher", "lower")}
    if not scores or bad:
        raise ValueError(f"metric {name!r}: scores must map each score column to 'higher' or "
                         f"'lower'; got {scores!r}")

    def decorator(fn):
        allowed = set(list(inspect.signature(fn).parameters)[1:])
        unknown = sorted(set(quick_params or {}) - allowed)
        if unknown:
            raise ValueError(f"metric {name!r}: quick_params {unknown} are not parameters of "
                             f"{fn.__name__} ({', '.join(sorted(allowed))})")
        return METRICS.register(name, description=description, paper=paper, scores=dict(scores),
                                quick_params=dict(quick_params or {}))(fn)

    return decorator


def score_direction(score: str, metric: str | None = None) -> Direction | None:
    """Which way `score` is better, as its metric declared it (only `metric`'s declarations when
    given); an exact name beats a pattern, a longer pattern a shorter one. None: undeclared."""
    entries = [METRICS.entry(metric)] if metric else METRICS.entries()
    found = [(key != score, -len(key), direction) for e in entries for key, direction in e.scores.items()
             if key == score or fnmatch.fnmatchcase(score, key)]
    return min(found)[2] if found else None
