"""The local stack's Alertmanager webhook receiver: what would page on-call, written down.

Alertmanager posts every notification (firing and resolved) to ``/page`` or ``/ticket`` by severity; each
lands as one JSON line in ``STATE_DIR/alerts/notifications.jsonl``, which `jatra alerts` and the tests
read. A deployment points the same routes at a real pager and ticket queue instead.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from litestar import Litestar, get, post
from litestar.datastructures import State

from jatra.infra.health import health_router
from jatra.infra.resources import Resources
from jatra.settings import Settings
from jatra.telemetry.metrics import BUILD_INFO, MetricsController


def notifications_file(settings: Settings) -> Path:
    return Path(settings.state_dir) / "alerts" / "notifications.jsonl"


def read_notifications(settings: Settings) -> list[dict[str, Any]]:
    path = notifications_file(settings)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _record(state: State, receiver: str, payload: dict[str, Any]) -> None:
    path: Path = state.notifications
    entry = {"received_at": dt.datetime.now(dt.UTC).isoformat(), "receiver": receiver, **payload}
    with path.open("a") as out:
        out.write(json.dumps(entry, sort_keys=True) + "\n")


@post("/page", status_code=200, sync_to_thread=False)
def page(data: dict[str, Any], state: State) -> None:
    _record(state, "page", data)


@post("/ticket", status_code=200, sync_to_thread=False)
def ticket(data: dict[str, Any], state: State) -> None:
    _record(state, "ticket", data)


def create_receiver_app(settings: Settings) -> Litestar:
    path = notifications_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)

    @get("/notifications", sync_to_thread=False)
    def notifications() -> list[dict[str, Any]]:
        return read_notifications(settings)[-100:]

    def started() -> None:
        from jatra import __version__  # noqa: PLC0415

        BUILD_INFO.labels(__version__, settings.environment).set(1)

    return Litestar(
        on_startup=[started],
        route_handlers=[page, ticket, notifications, health_router, MetricsController],
        state=State(
            {"notifications": path, "resources": Resources(settings=settings, name="alert-receiver")}
        ),
        logging_config=None,
    )
