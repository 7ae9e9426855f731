"""`jatra alerts`: what the local Alertmanager has active, and what reached the pager and ticket queue."""

from __future__ import annotations

import json
import urllib.request

from jatra.settings import Settings
from jatra.stack.alert_receiver import read_notifications


def active(settings: Settings) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{settings.ports.alertmanager}/api/v2/alerts?active=true&silenced=false"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            found: list[dict[str, object]] = json.load(response)
    except OSError:
        return []
    return found


def render_alerts(settings: Settings, last: int) -> str:
    lines = [f"Alertmanager http://127.0.0.1:{settings.ports.alertmanager} (routes and silences in its UI)"]
    now = active(settings)
    lines.append(f"active alerts: {len(now)}")
    for alert in now:
        labels = alert.get("labels", {})
        assert isinstance(labels, dict)
        extra = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in {"alertname", "severity"})
        lines.append(
            f"  [{labels.get('severity', '?'):6}] {labels.get('alertname')}  {extra}  since "
            f"{alert.get('startsAt')}"
        )
    sent = read_notifications(settings)[-last:]
    lines.append(f"last {len(sent)} notifications (page and ticket receivers):")
    for note in sent:
        for alert in note.get("alerts", []):
            name = alert.get("labels", {}).get("alertname")
            lines.append(f"  {note['received_at'][:19]}  {note['receiver']:6} {alert.get('status'):8} {name}")
    return "\n".join(lines)
