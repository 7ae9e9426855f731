"""Notification channels (SMS, e-mail). The dev channel is an outbox of files (`jatra outbox show`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Protocol

import structlog

from jatra.settings import Settings

log = structlog.get_logger()


class Channel(Protocol):
    name: str

    async def send(self, to: str, subject: str, body: str, kind: str) -> None: ...


class OutboxChannel:
    """Appends each message as a JSON line to STATE_DIR/outbox/<recipient>.jsonl (dev and tests)."""

    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, to: str) -> Path:
        safe = "".join(ch for ch in to if ch.isalnum() or ch in "+@._-")
        return self.directory / f"{safe}.jsonl"

    async def send(self, to: str, subject: str, body: str, kind: str) -> None:
        line = json.dumps(
            {
                "at": dt.datetime.now(dt.UTC).isoformat(),
                "to": to,
                "kind": kind,
                "subject": subject,
                "body": body,
            }
        )
        await asyncio.to_thread(self._append, self.path_for(to), line)
        log.info("notification.sent", channel=self.name, kind=kind)

    def _append(self, path: Path, line: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as out:
            out.write(line + "\n")

    def read(self, to: str) -> list[dict[str, str]]:
        path = self.path_for(to)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def channel_for(settings: Settings) -> Channel:
    if settings.notification_channel == "outbox":
        return OutboxChannel(settings.outbox_dir)
    raise ValueError(f"unknown notification channel {settings.notification_channel!r}")
