"""`jatra worker archive`: one pass of the archiver per iteration, on a thread (its S3 client and file reads
block). Needs no database, Redis or broker: only the log files and the bucket."""

from __future__ import annotations

import asyncio

from jatra.archive.archiver import Archiver
from jatra.infra.resources import Resources
from jatra.settings import Settings

_archivers: dict[Settings, Archiver] = {}


async def archive_once(res: Resources) -> int:
    """Read the new log lines, seal the segments that are due; returns the events sealed."""
    archiver = _archivers.get(res.settings)
    if archiver is None:
        archiver = _archivers[res.settings] = await asyncio.to_thread(Archiver.from_settings, res.settings)
    return await asyncio.to_thread(archiver.run_once)
