"""One batch of log events into Elasticsearch, until every event is settled.

The batch goes through the official client's ``bulk`` (one request for the batch, up to
``MAX_REQUEST_BYTES``), its lines as :mod:`jatra.logship.documents` wrote them, and each event's answer is
read from the response's items, in order. Each event ends in one of three ways:

- indexed (201), or a duplicate (409: an event with its ``_id`` is there already, sent before a restart);
- refused for good (any other 4xx, as a mapping conflict's 400): returned for the caller to set aside;
- not now: 429 (the write queue is full) or a 5xx for that event. Those are sent again, alone, after a
  back-off that doubles up to ``MAX_BACKOFF_S``; a 429 for the whole request likewise. Elasticsearch is
  telling us to slow down, and we do: nothing new is read until this batch is settled, so the log files
  are the buffer and the processes never wait for the shipper.

A connection error, a timeout or a 5xx for the whole request (Elasticsearch down or unable to take
writes) is retried with stamina for ``UNREACHABLE_BUDGET_S``; after that the error reaches the worker,
which backs off and starts again from the cursor, so nothing is lost either way.

Every event sent again is counted when it is scheduled again (``on_retry``), not once its batch is
settled: a batch held back for long (a flood stage lasts until someone makes room) shows in the counter
while it waits. A batch whose events are refused (429 or 5xx, item by item or the whole request's 429) is
also a warning (``logship.bulk.held_back``, with Elasticsearch's error type, never its reason, which may
quote a document) at its first refusal at least ``WARN_AFTER_S`` after its first, then every
``WARN_EVERY_S``. A whole request's 5xx or no answer is not: stamina retries it, and past its budget the
worker's ``worker.iteration.failed`` says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import stamina
import structlog
from elasticsearch import ApiError, AsyncElasticsearch, ConnectionTimeout
from elasticsearch import ConnectionError as Unreachable

from jatra.logship.documents import Action

log = structlog.get_logger()

#: how long a request is retried while Elasticsearch cannot be reached before the worker is told
UNREACHABLE_BUDGET_S = 30.0
FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 10.0
#: one bulk request at most (a bigger batch is split into several requests, sent one after another)
MAX_REQUEST_BYTES = 20 * 1024 * 1024
#: a batch held back this long is a warning, and again this often while it lasts
WARN_AFTER_S = 10.0
WARN_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Refused:
    position: int  # in the batch
    status: int
    error: dict[str, Any]


@dataclass(slots=True)
class Settled:
    shipped: int = 0
    duplicate: int = 0
    retried: int = 0  # events sent again (each time one is)
    refused: list[Refused] = field(default_factory=list)


def _error_type(error: object, status: int) -> str:
    """Elasticsearch's error type from a bulk item's ``error`` or a whole answer's body (its ``reason`` is
    left out: it may quote the document)."""
    if isinstance(error, dict):
        inner = error.get("error", error)
        if isinstance(inner, dict) and isinstance(inner.get("type"), str):
            return str(inner["type"])
    return f"status {status}"


def _unreachable(exc: Exception) -> bool:
    """What stamina retries: no answer at all, or a 5xx for the whole request."""
    if isinstance(exc, ApiError):
        return exc.status_code >= 500
    return isinstance(exc, Unreachable | ConnectionTimeout)


def _requests(actions: list[Action]) -> list[list[bytes]]:
    """The NDJSON lines of the batch, split into requests of at most MAX_REQUEST_BYTES."""
    if not actions:
        return []
    requests: list[list[bytes]] = [[]]
    size = 0
    for a in actions:
        header = a.header()
        weight = len(header) + len(a.document) + 2
        if requests[-1] and size + weight > MAX_REQUEST_BYTES:
            requests.append([])
            size = 0
        requests[-1] += (header, a.document)
        size += weight
    return requests


async def _request(
    client: AsyncElasticsearch, actions: list[Action], on_retry: Callable[[int], None]
) -> list[tuple[bool, dict[str, Any]]]:
    """Each action's (ok, answer), in order. The events sent again are told to ``on_retry`` as they go out
    (a request retried until the budget is spent raises, and its retries were counted all the same). The
    lines go out as written (the client joins bytes as they are; its bulk helper would encode each action
    again)."""
    results: list[tuple[bool, dict[str, Any]]] = []
    for lines in _requests(actions):
        async for attempt in stamina.retry_context(
            on=_unreachable, attempts=None, timeout=UNREACHABLE_BUDGET_S, wait_initial=0.2, wait_max=5.0
        ):
            if attempt.num > 1:
                on_retry(len(lines) // 2)
            with attempt:
                # the client's NDJSON serializer sends bytes lines unchanged (typed for mappings only)
                answer = await client.bulk(operations=cast(Any, lines))
        items: list[dict[str, Any]] = answer["items"]
        if len(items) * 2 != len(lines):
            raise ApiError(f"{len(items)} answers to {len(lines) // 2} actions", answer.meta, answer.body)
        results += [(200 <= int(next(iter(item.values())).get("status", 500)) < 300, item) for item in items]
    return results


def _noted(_: int) -> None:
    """``send``'s default ``on_retry``: nothing to tell."""


async def send(
    client: AsyncElasticsearch, actions: list[Action], on_retry: Callable[[int], None] = _noted
) -> Settled:
    """Send ``actions`` until each is indexed, a duplicate or refused for good. ``on_retry(n)``: ``n``
    events are being sent again."""
    settled = Settled()
    pending = list(enumerate(actions))
    backoff = FIRST_BACKOFF_S
    held_since: float | None = None
    warned_at: float | None = None

    def retried(events: int) -> None:  # one count for the batch's answer and the caller's counter
        settled.retried += events
        on_retry(events)

    while pending:
        again: list[tuple[int, Action]] = []
        why = ""
        try:
            answers = await _request(client, [a for _, a in pending], retried)
        except ApiError as exc:
            if exc.status_code != 429:
                raise
            again = pending  # the whole request was turned away: all of it later
            why = _error_type(exc.body, 429)
        else:
            for (position, action), (ok, answer) in zip(pending, answers, strict=True):
                item = next(iter(answer.values()))
                status = int(item.get("status", 500))
                if ok:
                    settled.shipped += 1
                elif status == 409:
                    settled.duplicate += 1
                elif status == 429 or status >= 500:
                    again.append((position, action))
                    why = why or _error_type(item.get("error"), status)
                else:
                    settled.refused.append(Refused(position, status, item.get("error") or {}))
        if again:
            retried(len(again))
            now = time.monotonic()
            if held_since is None:
                held_since = now
            if now - held_since >= WARN_AFTER_S and (warned_at is None or now - warned_at >= WARN_EVERY_S):
                warned_at = now
                log.warning("logship.bulk.held_back", events=len(again), waited_s=round(now - held_since, 1),
                            error_type=why)  # fmt: skip
            log.debug("logship.bulk.backoff", events=len(again), backoff_s=backoff, error_type=why)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        pending = again
    return settled
