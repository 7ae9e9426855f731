"""PromQL built from the metric catalogue, so that no metric name is typed twice.

Selectors take a :class:`~jatra.telemetry.catalogue.MetricSpec` (Jatra's own metrics) or an
:class:`External` (a metric of a named exporter: RabbitMQ, postgres, pgbouncer, redis, node,
kube-state-metrics). The test of the generated files checks every name they use against both lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jatra.telemetry.catalogue import MetricSpec

#: Grafana's rate window: at least four scrapes, whatever the zoom
RATE = "$__rate_interval"
#: every Jatra series on a dashboard is filtered by the environment variable
ENV = 'environment=~"$environment"'


@dataclass(frozen=True, slots=True)
class External:
    """A metric some exporter serves (not Jatra's catalogue)."""

    name: str
    exporter: str
    kind: str = "gauge"


Metric = MetricSpec | External


def series(metric: Metric, suffix: str = "") -> str:
    """The stored series name: counters as exported (``_total``), histograms with a suffix."""
    return metric.name + suffix


def sel(metric: Metric, *matchers: str, suffix: str = "") -> str:
    """``name{m1,m2}``: matchers are written in PromQL (``'outcome="acquired"'``)."""
    inner = ",".join(m for m in matchers if m)
    return f"{series(metric, suffix)}{{{inner}}}" if inner else series(metric, suffix)


def rate(metric: Metric, *matchers: str, window: str = RATE, suffix: str = "") -> str:
    return f"rate({sel(metric, *matchers, suffix=suffix)}[{window}])"


def rose(selector: str, window: str, *labels: str) -> str:
    """A counter went up in ``window``, summed by ``labels``: its increase, or, for a series younger than
    the window whose first sample is already above 0 (its increments came before Prometheus first saw it),
    its value. ``increase`` alone sees no rise in a series that starts at 1 and stays there."""
    grown = f"{sum_by(f'increase({selector}[{window}])', *labels)} > 0"
    young = sum_by(f"{selector} > 0 unless {selector} offset {window}", *labels)
    return f"({grown} or {young})"


def sum_by(expr: str, *labels: str) -> str:
    return f"sum by ({', '.join(labels)}) ({expr})" if labels else f"sum({expr})"


def max_by(expr: str, *labels: str) -> str:
    """For a gauge every process reads from the same place (the outbox backlog in Postgres, a dead-letter
    queue's depth in RabbitMQ): each replica reports the same value, and a sum would count it per replica."""
    return f"max by ({', '.join(labels)}) ({expr})" if labels else f"max({expr})"


def quantile(
    q: float, metric: MetricSpec, *matchers: str, by: tuple[str, ...] = (), window: str = RATE
) -> str:
    """The q-quantile of a histogram, per ``by`` labels."""
    buckets = sum_by(rate(metric, *matchers, window=window, suffix="_bucket"), "le", *by)
    return f"histogram_quantile({q}, {buckets})"


def ratio(numerator: str, denominator: str) -> str:
    """numerator / denominator, 0 rather than NaN when nothing happened."""
    return f"({numerator}) / clamp_min({denominator}, 1e-9)"


#: PromQL words that look like metric names but are not
KEYWORDS = {
    "sum", "by", "rate", "max", "min", "count", "and", "or", "unless", "on", "group_left", "group_right",
    "histogram_quantile", "clamp_min", "vector", "scalar", "increase", "deriv", "label_replace", "le",
    "bool", "without", "ignoring", "group", "time", "offset",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, label names."""
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values and strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\boffset\s+\w+", " ", expr)  # offset 1h
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)  # label lists
    names = set(re.findall(r"\b[a-zA-Z_:][\w:]*\b(?!\s*\()", expr))
    return names - KEYWORDS
