"""Executors: where a suite's runs execute. One file per backend, registered by name in
`vaebench.registry.EXECUTORS`; the interface is in base.py.

To add one (PBS, Ray...): a new file here with a `@register_executor("name", description=...)`
subclass of `Executor`, imported below.
"""

from vaebench.runner.executors import local, slurm  # noqa: F401  (registers local, slurm)
from vaebench.runner.executors.base import Executor, Outcome, RunTarget

__all__ = ["Executor", "Outcome", "RunTarget"]
