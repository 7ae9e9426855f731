"""JATRA_LOG_FILE: containers write their ECS log to a shared file too, rotated the way the follower reads."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import structlog

from jatra.infra.logfiles import Follower
from jatra.settings import load_settings
from jatra.telemetry.logs import configure_logging


def test_the_log_file_gets_every_ecs_event_and_rotates_by_renaming(tmp_path: Path) -> None:
    path = tmp_path / "payments.log"
    settings = dataclasses.replace(load_settings({}), log_file=str(path), log_file_max_bytes=2000)
    configure_logging(settings, "payments")
    log = structlog.get_logger("test")
    try:
        for n in range(40):
            log.info("payment.attempted", attempt=n)
    finally:
        for handler in logging.getLogger().handlers:
            handler.flush()
        configure_logging(load_settings({}), "test")  # back to stdout only
    assert (tmp_path / "payments.log.1").exists()  # rotated by renaming, as supervisord does
    follower = Follower(tmp_path, tmp_path / "cursor.json")
    attempts: list[int] = []
    while chunks := follower.read():
        attempts += [json.loads(line.raw)["attempt"] for chunk in chunks for line in chunk.lines]
        follower.commit(chunks)
    # the newest events (5 rotated files and the live one), oldest first, none twice
    assert attempts == list(range(40 - len(attempts), 40)) and len(attempts) > 5
