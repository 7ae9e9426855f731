"""The RabbitMQ connection of one process (aio-pika, reconnecting)."""

from __future__ import annotations

import asyncio

import aio_pika
import structlog
from aio_pika.abc import AbstractRobustConnection

from jatra.settings import Settings

log = structlog.get_logger()


async def connect_amqp(settings: Settings, name: str) -> AbstractRobustConnection | None:
    """Connect, or return None when the broker is down: the process starts and reports not-ready."""
    try:
        return await asyncio.wait_for(
            aio_pika.connect_robust(settings.amqp, client_properties={"connection_name": f"jatra-{name}"}),
            timeout=max(settings.dependency_timeout_s * 5, 2.0),
        )
    except (OSError, TimeoutError, aio_pika.exceptions.AMQPError) as exc:
        log.warning("amqp.connect.failed", error=str(exc) or type(exc).__name__)
        return None
