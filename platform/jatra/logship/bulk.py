"""One batch of log events into Elasticsearch, until every event is settled.

The batch goes through the official client's bulk helper (``async_streaming_bulk``, one request for the
batch, ``raise_on_error=False`` so each event's answer comes back). Each event ends in one of three ways:

- indexed (201), or a duplicate (409: an event with its ``_id`` is there already, sent before a restart);
- refused for good (any other 4xx, as a mapping conflict's 400): returned for the caller to set aside;
- not now: 429 (the write queue is full) or a 5xx for that event. Those are sent again, alone, after a
  back-off that doubles up to ``MAX_BACKOFF_S``; a 429 for the whole request likewise. Elasticsearch is
  telling us to slow down, and we do: nothing new is read until this batch is settled, so the log files
  are the buffer and the processes never wait for the shipper.

A connection error, a timeout or a 5xx for the whole request (Elasticsearch down or unable to take
writes) is retried with stamina for ``UNREACHABLE_BUDGET_S``; after that the error reaches the worker,
which backs off and starts again from the cursor, so nothing is lost either way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import stamina
import structlog
from elasticsearch import ApiError, AsyncElasticsearch, ConnectionTimeout
from elasticsearch import ConnectionError as Unreachable
from elasticsearch.helpers import async_streaming_bulk

from jatra.logship.documents import Action

log = structlog.get_logger()

#: how long a batch is retried while Elasticsearch cannot be reached before the worker is told
UNREACHABLE_BUDGET_S = 30.0
FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 10.0
#: one bulk request at most (the helper splits a bigger batch into several requests)
MAX_REQUEST_BYTES = 20 * 1024 * 1024


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


def _unreachable(exc: Exception) -> bool:
    """What stamina retries: no answer at all, or a 5xx for the whole request."""
    if isinstance(exc, ApiError):
        return exc.status_code >= 500
    return isinstance(exc, Unreachable | ConnectionTimeout)


async def _request(
    client: AsyncElasticsearch, actions: list[Action]
) -> tuple[list[tuple[bool, dict[str, Any]]], int]:
    """Each action's (ok, answer), in order, and how many times the whole request was sent again."""
    results = []
    resent = 0
    async for attempt in stamina.retry_context(
        on=_unreachable, attempts=None, timeout=UNREACHABLE_BUDGET_S, wait_initial=0.2, wait_max=5.0
    ):
        resent = attempt.num - 1
        with attempt:
            results = [
                result
                async for result in async_streaming_bulk(
                    client, actions, chunk_size=len(actions), max_chunk_bytes=MAX_REQUEST_BYTES,
                    raise_on_error=False, raise_on_exception=True, max_retries=0, yield_ok=True,
                )
            ]  # fmt: skip
    return results, resent


async def send(client: AsyncElasticsearch, actions: list[Action]) -> Settled:
    """Send ``actions`` until each is indexed, a duplicate or refused for good."""
    settled = Settled()
    pending = list(enumerate(actions))
    backoff = FIRST_BACKOFF_S
    while pending:
        again: list[tuple[int, Action]] = []
        try:
            answers, resent = await _request(client, [a for _, a in pending])
            settled.retried += resent * len(pending)
        except ApiError as exc:
            if exc.status_code != 429:
                raise
            again = pending  # the whole request was turned away: all of it later
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
                else:
                    settled.refused.append(Refused(position, status, item.get("error") or {}))
        if again:
            settled.retried += len(again)
            log.debug("logship.bulk.backoff", events=len(again), backoff_s=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        pending = again
    return settled
