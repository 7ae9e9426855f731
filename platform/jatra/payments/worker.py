"""`jatra worker payments`: consume payment requests, charge through a circuit breaker with retries.

Retries use exponential backoff with jitter (stamina) and always the same provider idempotency key (the
booking id), so a retried or redelivered charge is never taken twice. Success: CONFIRMED and the seats
sold. A decline, or a provider still failing when the retry budget is spent: PAYMENT_FAILED and the hold
released; before failing a booking as unpaid the worker voids its key, so a charge still on its way (a
redelivered duplicate's) takes nothing. A refund request gives a key's money back. A message that cannot
be a payment request goes to the dead-letter queue with its reason.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import aio_pika
import stamina
import structlog
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage
from opentelemetry import trace
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from jatra.domain.booking_states import BookingStatus
from jatra.infra import topology
from jatra.infra.breaker import breakers
from jatra.infra.consumer import CONSUMED, Consumer
from jatra.infra.resources import Resources
from jatra.inventory.holds import HoldStore
from jatra.payments import settle
from jatra.payments.client import ChargeResult, ProviderClient, ProviderUnavailable
from jatra.telemetry import catalogue as c
from jatra.telemetry.metrics import counter

log = structlog.get_logger()
tracer = trace.get_tracer(__name__)
ATTEMPTS = counter(c.PAYMENT_ATTEMPTS)
REFUNDS = counter(c.REFUNDS)
TARGET = "payment-provider"
REASON_HEADER = "x-jatra-reason"


class PoisonMessage(Exception):
    """The message can never be processed; it goes to the dead-letter queue."""


class PaymentGaveUp(Exception):
    """The retry budget is spent; the booking failed, and the request goes to the dead-letter queue."""


def parse(message: AbstractIncomingMessage) -> uuid.UUID:
    try:
        return uuid.UUID(json.loads(message.body)["booking_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PoisonMessage(f"not a payment request: {exc!r}") from exc


async def charge(
    client: ProviderClient,
    factory: AsyncCircuitBreakerFactory,
    key: str,
    amount: int,
    method: str,
    budget_s: float,
) -> ChargeResult:
    """Charge with retries until the budget is spent; then ProviderUnavailable, ``ambiguous`` if any attempt
    may have been carried out without its answer reaching us."""
    ambiguous = False
    try:
        async for attempt in stamina.retry_context(
            on=(ProviderUnavailable, OpenedState), attempts=None, timeout=budget_s,
            wait_initial=0.1, wait_max=2.0, wait_jitter=0.5,
        ):  # fmt: skip
            with attempt:
                try:
                    async with await factory.get_breaker(TARGET):
                        return await client.charge(key, amount, method)
                except OpenedState:
                    ATTEMPTS.labels("short_circuited").inc()
                    raise
                except ProviderUnavailable as exc:
                    ambiguous = ambiguous or exc.ambiguous
                    raise
    except (ProviderUnavailable, OpenedState) as exc:
        raise ProviderUnavailable(str(exc) or type(exc).__name__, ambiguous=ambiguous) from exc
    raise AssertionError("unreachable: stamina raises when the budget is spent")


class PaymentWorker:
    def __init__(self, res: Resources) -> None:
        self.res = res
        self.settings = res.settings
        self.client = ProviderClient(self.settings.provider, self.settings.provider_timeout_s)
        self.breakers = breakers(self.settings.breaker_threshold, self.settings.breaker_reset_s)
        self.store = HoldStore(res.cache())
        self.dlx: AbstractExchange | None = None

    async def handle(self, message: AbstractIncomingMessage) -> bool:
        """Pay or refund; True when the message was dead-lettered here (so settled already)."""
        try:
            booking_id = parse(message)
            if message.routing_key == "refund.requested":
                await self._refund(booking_id)
            else:
                await self._pay(booking_id, redelivered=bool(message.redelivered))
        except (PoisonMessage, PaymentGaveUp) as exc:
            await self._dead_letter(message, str(exc))
            return True
        return False

    async def _refund(self, booking_id: uuid.UUID) -> None:
        async for attempt in stamina.retry_context(
            on=(ProviderUnavailable, OpenedState),
            attempts=None,
            timeout=self.settings.payment_retry_timeout_s,
            wait_initial=0.1,
            wait_max=2.0,
        ):
            with attempt:
                async with await self.breakers.get_breaker(TARGET):
                    outcome = await self.client.refund(str(booking_id))
        REFUNDS.labels(outcome).inc()
        log.info("payment.refund_made", booking_id=str(booking_id), outcome=outcome)
        if outcome == "refunded":  # a cancelled booking is REFUNDED only once the money went back
            async with self.res.db()() as session:
                await settle.refunded(session, booking_id)

    async def _pay(self, booking_id: uuid.UUID, *, redelivered: bool = False) -> None:
        booking = await settle.start_processing(self.res.statements(), booking_id)
        if booking is None:  # unknown or already final: a redelivery after the work was done, or a copy
            if redelivered:  # whose worker may have charged and died before settling; it ended unpaid
                async with self.res.db()() as session:
                    await settle.refund_if_unpaid(session, booking_id)
            return
        try:
            result = await charge(self.client, self.breakers, str(booking.id), booking.amount,
                                  booking.payment_method, self.settings.payment_retry_timeout_s)  # fmt: skip
        except ProviderUnavailable as exc:
            found = await self._after_giving_up(booking.id, exc)
            if found is None or found.voided:
                reason = f"payment provider unavailable: {exc}"
                # not voided (None: the provider cannot be reached): if another delivery of this request
                # started the charge first (it was processing already), that one may have charged, so the
                # key's refund is requested with the failure; made once the provider answers, it voids
                # the key or returns the money
                other = booking.was == BookingStatus.PAYMENT_PROCESSING
                async with self.res.db()() as session:
                    await settle.fail(self.store, session=session, booking_id=booking.id, reason=reason,
                                      refund=found is None and other)  # fmt: skip
                raise PaymentGaveUp(reason) from exc  # failed for good: to the DLQ, with why
            result = found
        if result.captured:  # False: its refund is requested
            await settle.confirm(self.res.db(), self.res.statements(), self.store, booking.id)
            return
        # declined; or voided by whoever gave up on the key first, which fails it (or has)
        reason = settle.NEVER_CHARGED if result.voided else "payment declined"
        async with self.res.db()() as session:
            await settle.fail(self.store, session=session, booking_id=booking.id, reason=reason)

    async def _after_giving_up(self, booking_id: uuid.UUID, exc: ProviderUnavailable) -> ChargeResult | None:
        """The retry budget is spent: void the key, which says what became of it and stops any charge with
        it still on its way (a redelivered duplicate's). A charge taken while its answers were lost is then
        settled as captured. None: the provider cannot be reached, and none of this worker's attempts did.
        If a charge may exist and the provider cannot say, the booking stays in payment for the reconciler,
        which keeps asking: it is never failed with the money taken. If another delivery has failed it
        already, that charge's refund is requested."""
        key = str(booking_id)
        try:
            return await self.client.void(key)
        except ProviderUnavailable as void_failed:
            if exc.ambiguous:
                log.warning("payment.outcome_unknown", key=key, error=str(exc))
                async with self.res.db()() as session:
                    await settle.refund_if_unpaid(session, booking_id)
                raise PaymentGaveUp(
                    "payment outcome unknown (the provider took a charge request and went silent); "
                    "left for reconciliation"
                ) from void_failed
            return None

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        assert self.dlx is not None
        headers: dict[str, Any] = {**(message.headers or {}), REASON_HEADER: reason}
        await self.dlx.publish(
            aio_pika.Message(body=message.body, headers=headers, message_id=message.message_id,
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=topology.PAYMENT_REQUESTS,
        )  # fmt: skip
        await message.ack()
        CONSUMED.labels(topology.PAYMENT_REQUESTS, "dead_letter").inc()
        log.warning("payment.dead_lettered", reason=reason, message_id=message.message_id)

    async def run(self) -> int:
        consumer = Consumer(
            topology.PAYMENT_REQUESTS, self.handle, self.settings.payments_prefetch,
            failed_event="payment.handle.failed", consuming_event="payments.consuming",
            publisher_confirms=True,  # the dead-letter publish is confirmed before the message is acked
        )  # fmt: skip
        channel, exchanges = await consumer.open(self.res)
        self.dlx = exchanges[topology.DLX]
        try:
            await consumer.consume(channel)
        finally:
            await self.client.close()
        return 0


async def consume(res: Resources) -> int:
    return await PaymentWorker(res).run()
