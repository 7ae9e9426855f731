"""Read, ship, set aside, commit: the log shipper's loop body, with its metrics.

One pass reads what every process wrote past the cursor (up to ``read_bytes`` per process), ships it in
batches of ``logship_batch`` events, sets aside what Elasticsearch refused, and only then moves the
cursor. A crash anywhere before the commit re-reads the same lines, which come back as duplicates (409),
so an event is never lost and never indexed twice.

The shipper's own log is shipped too, so it logs nothing per batch at info: its counts are metrics
(``jatra_logship_*``) and each bulk request is a span. The Elasticsearch client's transport logs every
request at info, which would make each bulk log a line that the next bulk ships, for ever: it is held to
warnings.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import structlog
from elasticsearch import AsyncElasticsearch
from opentelemetry import trace

from jatra.infra.logfiles import Follower
from jatra.logship.bulk import send
from jatra.logship.documents import action
from jatra.logship.setaside import Refusal, SetAside
from jatra.settings import Settings
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter, gauge, histogram, trace_exemplar

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
logging.getLogger("elastic_transport").setLevel(logging.WARNING)

EVENTS = counter(c.LOGSHIP_EVENTS)
#: counted as each event is sent again, while its batch waits (jatra.logship.bulk.send)
RETRIED = EVENTS.labels("retried")
LAG_SECONDS = gauge(c.LOGSHIP_LAG_SECONDS)
LAG_BYTES = gauge(c.LOGSHIP_LAG_BYTES)
BULK_DURATION = histogram(c.LOGSHIP_BULK_DURATION)

#: bytes read per process and pass for each event of a batch (ECS lines here average 400-600 bytes)
BYTES_PER_EVENT = 512


@dataclass(frozen=True, slots=True)
class Pass:
    events: int  # lines read and settled
    moved: bool  # whether the cursor moved (False: nothing new was written)


class Shipper:
    def __init__(self, settings: Settings) -> None:
        home = settings.state_dir / "logship"
        self.follower = Follower(settings.logs, home / "cursor.json", reader="logship")
        self.aside = SetAside(home / "rejected")
        self.namespace = settings.environment
        self.batch = settings.logship_batch
        self.read_bytes = max(64 * 1024, self.batch * BYTES_PER_EVENT)
        self.log_dir = str(settings.logs)
        # measured when scraped, so the lag grows between passes as it really does
        LAG_BYTES.set_function(self.follower.lag_bytes)
        LAG_SECONDS.set_function(self.lag_seconds)

    async def ship_once(self, client: AsyncElasticsearch) -> Pass:
        chunks = self.follower.read(self.read_bytes)
        if not chunks:
            return Pass(0, moved=False)
        lines = [line for chunk in chunks for line in chunk.lines]
        EVENTS.labels("read").inc(len(lines))
        for start in range(0, len(lines), self.batch):
            batch = lines[start : start + self.batch]
            actions = [action(line, self.namespace, self.log_dir) for line in batch]
            with tracer.start_as_current_span("logship.bulk") as span:
                t0 = time.perf_counter()
                settled = await send(client, actions, RETRIED.inc)
                BULK_DURATION.observe(time.perf_counter() - t0, trace_exemplar())
                span.set_attributes(
                    {
                        "jatra.logship.events": len(actions),
                        "jatra.logship.shipped": settled.shipped,
                        "jatra.logship.duplicate": settled.duplicate,
                        "jatra.logship.retried": settled.retried,
                        "jatra.logship.rejected": len(settled.refused),
                    }
                )
            EVENTS.labels("shipped").inc(settled.shipped)
            EVENTS.labels("duplicate").inc(settled.duplicate)
            if settled.refused:
                refusals = [
                    Refusal(batch[r.position], actions[r.position], r.status, r.error)
                    for r in settled.refused
                ]
                self.aside.put(refusals)
                EVENTS.labels("rejected").inc(len(refusals))
                first = refusals[0]
                log.warning(
                    "logship.rejected",
                    events=len(refusals),
                    status=first.status,
                    error_type=first.error.get("type"),
                    index=first.action.index,
                    set_aside=str(self.aside.directory),
                )
        self.follower.commit(chunks)
        return Pass(len(lines), moved=True)

    async def drain(self, client: AsyncElasticsearch, budget_s: float) -> int:
        """Ship until caught up or ``budget_s`` has passed; returns the events settled."""
        deadline = time.monotonic() + budget_s
        total = 0
        while time.monotonic() < deadline:
            done = await self.ship_once(client)
            total += done.events
            if not done.moved:
                break
        return total

    def lag_seconds(self) -> float:
        """The age of the oldest event not shipped yet (0: caught up)."""
        oldest = self.follower.oldest_unread()
        return max(time.time() - oldest, 0.0) if oldest is not None else 0.0
