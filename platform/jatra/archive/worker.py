"""`jatra worker archive`: one pass of the archiver per iteration, on a thread (its S3 client and file reads
block). Needs no database, Redis or broker: only the log files and the bucket.

As it stops (SIGTERM) it reads to the end of every log and seals what it holds, whatever its size or age
(:func:`archive_last`): in a pod the log directory and the archiver's state go with the pod, so lines left
in an open segment would be lost, and the chain of that pod would end before them without a sign. The
archive runs as a native sidecar, stopped after the process it follows, so that process's last lines are
written by then. A pass cancelled by the stop still runs on its thread: the last pass waits for it."""

from __future__ import annotations

import asyncio
import threading

from jatra.archive.archiver import Archiver
from jatra.infra.resources import Resources
from jatra.settings import Settings

_archivers: dict[Settings, Archiver] = {}
#: one pass at a time over an archiver's state
_passing = threading.Lock()


def _archiver(settings: Settings) -> Archiver:
    archiver = _archivers.get(settings)
    if archiver is None:
        archiver = _archivers[settings] = Archiver.from_settings(settings)
    return archiver


def _pass(settings: Settings) -> int:
    with _passing:
        return _archiver(settings).run_once()


def _last_pass(settings: Settings) -> int:
    with _passing:
        archiver = _archiver(settings)
        return archiver.run_once() + archiver.flush()


async def archive_once(res: Resources) -> int:
    """Read the new log lines, seal the segments that are due; returns the events sealed."""
    return await asyncio.to_thread(_pass, res.settings)


async def archive_last(res: Resources) -> int:
    """The stopping worker's pass: read to the end and seal every open segment; returns the events sealed."""
    return await asyncio.to_thread(_last_pass, res.settings)
