from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from prometheus_client.parser import text_string_to_metric_families


def travel_day(days_ahead: int = 1) -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Dhaka")).date() + dt.timedelta(days=days_ahead)


def sample(metrics_text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 if absent)."""
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0
