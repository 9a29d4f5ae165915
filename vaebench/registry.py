"""Registries for models, datasets and metrics: a name -> entry table and a did-you-mean lookup."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable

from vaebench.errors import VaebenchError


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    description: str  # one line, shown by `vaebench list`
    paper: str = ""  # "Authors Year, Title" for models and metrics


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, *, description: str, paper: str = "") -> Callable:
        def decorator(obj):
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, obj, description, paper)
            return obj

        return decorator

    def entry(self, name: str, where: str = "") -> Entry:
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
        return name in self._entries

    def entries(self) -> list[Entry]:
        return [self._entries[k] for k in sorted(self._entries)]


MODELS = Registry("model")
DATASETS = Registry("dataset")
METRICS = Registry("metric")

register_model = MODELS.register
register_dataset = DATASETS.register
register_metric = METRICS.register
