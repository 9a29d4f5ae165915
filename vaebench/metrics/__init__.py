"""Metrics. Each module registers its metrics with `@register_metric`; importing it is enough."""

from vaebench.metrics import elbo  # noqa: F401  (registers metrics)
from vaebench.metrics.base import EvalContext, MetricResult

__all__ = ["EvalContext", "MetricResult"]
