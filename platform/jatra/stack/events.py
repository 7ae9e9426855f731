"""supervisord's event listener for the local stack: counts the restarts of every supervised program.

supervisord writes events to this process's stdin and waits for an answer on its stdout (the eventlistener
protocol), so nothing else may be written to stdout here. A restart is a program going to STARTING from
EXITED (it died, supervisord starts it again) or from BACKOFF (a retry after a failed start). The counts go
to ``jatra_process_restarts_total{process}`` on this listener's own /metrics (Prometheus scrapes it) and to
a JSON file that `jatra status` reads.

Run by supervisord as ``python -m jatra.stack.events --port P --state FILE --programs a,b``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from prometheus_client import start_http_server
from supervisor import childutils

from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

RESTARTS = counter(c.PROCESS_RESTARTS)
RESTART_FROM = frozenset({"EXITED", "BACKOFF"})


def restarted(headers: dict[str, str], payload: str) -> str | None:
    """The program an event says was restarted, or None."""
    if headers.get("eventname") != "PROCESS_STATE_STARTING":
        return None
    fields, _ = childutils.eventdata(payload + "\n")
    return fields.get("processname") if fields.get("from_state") in RESTART_FROM else None


def _save(path: Path, counts: dict[str, int]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(counts, sort_keys=True))
    tmp.replace(path)


def listen(state: Path, programs: Iterable[str], stdin: TextIO, stdout: TextIO) -> None:
    try:
        counts: dict[str, int] = json.loads(state.read_text())
    except (OSError, ValueError):
        counts = {}
    for name in programs:  # every series exists from the start, at 0: an alert on it never sees "no data"
        counts.setdefault(name, 0)
    for name, n in counts.items():
        RESTARTS.labels(name).inc(n)
    _save(state, counts)
    while True:
        headers, payload = childutils.listener.wait(stdin, stdout)
        process = restarted(headers, payload)
        if process is not None:
            counts[process] = counts.get(process, 0) + 1
            RESTARTS.labels(process).inc()
            _save(state, counts)
        childutils.listener.ok(stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--programs", default="")
    args = parser.parse_args()
    start_http_server(args.port, addr=os.environ.get("JATRA_API_HOST", "127.0.0.1"))
    listen(args.state, [p for p in args.programs.split(",") if p], sys.stdin, sys.stdout)


if __name__ == "__main__":
    main()
