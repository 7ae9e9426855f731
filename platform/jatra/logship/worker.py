"""`jatra worker logship`: one iteration ships until caught up (or for ``DRAIN_BUDGET_S``), then the worker
loop waits ``logship_interval_s`` and looks again.

The first iteration installs the Elasticsearch side (:mod:`jatra.logship.setup`) before the first bulk
request, so every data stream is created by its template. It is checked again after a failed iteration
(an Elasticsearch that was unreachable may come back rebuilt) and every ``SETUP_CHECK_S`` (someone may
have changed it). A failed iteration (Elasticsearch unreachable past the bulk module's retries) is logged
by the worker loop, which backs off and tries again; the cursor has not moved, so the next iteration
starts where this one did.
"""

from __future__ import annotations

import time

import structlog

from jatra.infra.elastic import es_client
from jatra.infra.resources import Resources
from jatra.logship.setup import install
from jatra.logship.shipper import Shipper
from jatra.settings import Settings

log = structlog.get_logger()

#: longest one iteration ships before it ends (its span and the worker's last-success time with it)
DRAIN_BUDGET_S = 10.0
#: how often the templates and the policy are checked again (someone may have changed or deleted them)
SETUP_CHECK_S = 300.0


class _Process:
    """What the worker keeps between iterations: the shipper (its cursor) and when setup was checked."""

    shipper: Shipper | None = None
    checked_at: float | None = None


def shipper_for(settings: Settings) -> Shipper:
    if _Process.shipper is None:
        _Process.shipper = Shipper(settings)
    return _Process.shipper


async def ship(res: Resources) -> int:
    """The worker's iteration: events settled (indexed, duplicates, set aside)."""
    shipper = shipper_for(res.settings)
    async with es_client(res.settings) as client:
        try:
            if _Process.checked_at is None or time.monotonic() - _Process.checked_at > SETUP_CHECK_S:
                done = await install(client, res.settings)
                changed = sorted(label for label, fate in done.items() if fate != "unchanged")
                if changed or _Process.checked_at is None:
                    log.info("logship.setup.checked", changed=changed)
                _Process.checked_at = time.monotonic()
            return await shipper.drain(client, DRAIN_BUDGET_S)
        except Exception:
            _Process.checked_at = None  # whatever came back may have lost them: check again first
            raise
