"""`jatra worker notifications`: SMS and e-mail on CONFIRMED, PAYMENT_FAILED and CANCELLED.

Each channel call goes through a circuit breaker and retries with backoff. A notification is sent at most
once per event and channel (its message id is remembered in Redis), so a redelivered event does not
text the passenger twice. The e-mail of a confirmed booking carries the e-ticket PDF.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import stamina
import structlog
from aio_pika.abc import AbstractIncomingMessage
from purgatory.domain.model import OpenedState

from jatra.domain.booking_states import BookingStatus
from jatra.infra import topology
from jatra.infra.breaker import breakers
from jatra.infra.channels import Channel, ChannelError, Notice, email_channel, sms_channel
from jatra.infra.consumer import Consumer
from jatra.infra.resources import Resources
from jatra.notifications import compose, repository
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter
from jatra.tickets import cache, signing
from jatra.tickets.catalogue import journey_catalogue
from jatra.tickets.view import compose_view

log = structlog.get_logger()
SENT = counter(c.NOTIFICATIONS_SENT)
EVENTS = ("booking.confirmed", "booking.payment_failed", "booking.cancelled")
SENT_TTL_S = 7 * 86400


class NotificationWorker:
    def __init__(self, res: Resources) -> None:
        self.res = res
        self.settings = res.settings
        self.channels: dict[str, Channel] = {
            "sms": sms_channel(self.settings),
            "email": email_channel(self.settings),
        }
        self.breakers = breakers(self.settings.breaker_threshold, self.settings.breaker_reset_s)
        self.key = signing.signing_key(self.settings)

    async def handle(self, message: AbstractIncomingMessage) -> bool:
        await self._notify(message)
        return False  # acked by the consumer; a failure raises and the message is put back

    async def _notify(self, message: AbstractIncomingMessage) -> None:
        event = message.routing_key or ""
        if event not in EVENTS:
            return
        payload: dict[str, Any] = json.loads(message.body)
        found = await repository.booking_notice(self.res.statements(), uuid.UUID(payload["booking_id"]))
        if found is None:
            return
        booking, phone = found, found.phone
        catalogue = await journey_catalogue(self.res.statements(), booking)
        if catalogue is None:  # a journey is a foreign key of its bookings: a catalogue deleted under us
            log.error("notifications.catalogue_missing", booking_id=str(booking.id), event=event)
            return
        view = compose_view(found, catalogue, self.settings.timezone)
        notices = {"sms": compose.sms(event, view, phone, booking.reason)}
        pdf = None
        if event == "booking.confirmed" and booking.status == BookingStatus.CONFIRMED:
            # rendered now, ready for the e-mail and the passenger's download (not for a booking cancelled
            # since: a late or replayed event renders nothing, and its ticket stays void)

            async def load_view() -> dict[str, Any]:
                return view

            pdf = await cache.get_or_render(
                self.res.cache(), self.key, str(booking.id), str(booking.user_id), load_view, "notifications"
            )
        if booking.contact_email:
            notices["email"] = compose.email(event, view, booking.contact_email, booking.reason, pdf)
        for channel, notice in notices.items():
            await self._send_once(f"{message.message_id}:{channel}", channel, notice)

    async def _send_once(self, dedupe_key: str, channel: str, notice: Notice) -> None:
        redis = self.res.cache()
        if not await redis.set(f"jatra:notifications:sent:{dedupe_key}", 1, nx=True, ex=SENT_TTL_S):
            SENT.labels(channel, "duplicate").inc()
            return
        try:
            async for attempt in stamina.retry_context(
                on=(ChannelError, OSError, OpenedState), attempts=5, wait_initial=0.1, wait_max=2.0
            ):
                with attempt:
                    async with await self.breakers.get_breaker(f"{channel}-{self.channels[channel].name}"):
                        await self.channels[channel].deliver(notice)
        except Exception:
            await redis.delete(
                f"jatra:notifications:sent:{dedupe_key}"
            )  # not sent: a redelivery may try again
            SENT.labels(channel, "failed").inc()
            raise
        SENT.labels(channel, "sent").inc()
        log.info("notification.sent", channel=channel, kind=notice.kind)

    async def run(self) -> int:
        consumer = Consumer(
            topology.NOTIFICATIONS, self.handle, self.settings.notifications_prefetch,
            failed_event="notification.failed", consuming_event="notifications.consuming",
        )  # fmt: skip
        channel, _ = await consumer.open(self.res)
        await consumer.consume(channel)
        return 0


async def consume(res: Resources) -> int:
    return await NotificationWorker(res).run()
