"""`jatra serve payment-provider`: a simulated bKash/SSLCommerz-like gateway with fault flags.

It keeps its own ledger (one row per idempotency key, so a retried charge is never taken twice) and
answers as badly as it is told to: extra latency, a share of 500s, a share of answers that never come in
time, a share of declines, a full outage, or a pause after capturing (the response is late although the
money moved: what a worker killed at that moment sees). Flags change at runtime with PUT /faults.

A key can be voided, as a payment intent is cancelled: once the payment side has given up on it (or
refunded it), a charge with that key still on its way takes nothing and is answered VOIDED.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import structlog
from litestar import Litestar, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, JSONBody
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from jatra import __version__
from jatra.db.bookings import ProviderCharge
from jatra.errors import exception_handlers
from jatra.infra.health import health_router
from jatra.infra.resources import Resources, open_resources
from jatra.provider import ledger
from jatra.settings import Settings
from jatra.telemetry.logs import configure_logging
from jatra.telemetry.metrics import BUILD_INFO, MetricsController
from jatra.telemetry.tracing import http_tracing_middleware, name_span_by_route, setup_tracing

log = structlog.get_logger()
rng = random.Random()  # noqa: S311 - fault injection, not security


class Faults(msgspec.Struct, kw_only=True):
    latency_ms: int = 0
    failure_rate: float = 0.0  # share of requests answered 500 before anything is recorded
    timeout_rate: float = 0.0  # share of requests that hang for hang_ms before any work
    decline_rate: float = 0.0  # share of charges declined (recorded: final, a retry gets DECLINED again)
    outage: bool = False  # every request 503
    hang_ms: int = 30_000
    latency_after_capture_ms: int = 0  # the charge is recorded, then the answer waits this long


class ChargeRequest(msgspec.Struct, frozen=True, kw_only=True):
    idempotency_key: str
    amount: int
    method: str


class Charge(msgspec.Struct, frozen=True, kw_only=True):
    idempotency_key: str
    amount: int
    method: str
    status: str  # CAPTURED | DECLINED | REFUNDED | VOIDED


def _out(row: ProviderCharge | ledger.ChargeRow) -> Charge:
    return Charge(
        idempotency_key=row.idempotency_key, amount=row.amount, method=row.method, status=row.status
    )


async def misbehave(faults: Faults) -> None:
    if faults.outage:
        raise HTTPException(status_code=503, detail="provider outage", headers={"Retry-After": "5"})
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if rng.random() < faults.timeout_rate:
        await asyncio.sleep(faults.hang_ms / 1000)
    if rng.random() < faults.failure_rate:
        raise HTTPException(status_code=500, detail="provider internal error")


def _faults(state: State) -> Faults:
    faults: Faults = state.faults
    return faults


def _db(state: State) -> Resources:
    res: Resources = state.resources
    return res


@post("/charges")
async def charge(data: JSONBody[ChargeRequest], state: State) -> Response[Charge]:
    """Charge once per idempotency key; a repeat returns the first outcome with 200."""
    faults = _faults(state)
    await misbehave(faults)
    status = "DECLINED" if rng.random() < faults.decline_rate else "CAPTURED"
    row = await ledger.charge_once(
        _db(state).statements(), data.idempotency_key, data.amount, data.method, status
    )
    log.info("provider.charge", key=data.idempotency_key, status=row.status, replay=not row.created)
    if faults.latency_after_capture_ms:
        await asyncio.sleep(faults.latency_after_capture_ms / 1000)
    return Response(_out(row), status_code=201 if row.created else 200)


@get("/charges/{key:str}")
async def lookup(key: FromPath[str], state: State) -> Charge:
    """What happened to a key (reconciliation asks this)."""
    await misbehave(_faults(state))
    async with _db(state).db()() as session:
        row = await session.get(ProviderCharge, key)
    if row is None:
        raise NotFoundException(f"no charge with key {key}")
    return _out(row)


async def _void_unless_charged(session: AsyncSession, key: str) -> ProviderCharge:
    """The key's row, locked; a key never charged is recorded VOIDED first, so that a charge with it that
    is still on its way is answered VOIDED and takes nothing (a payment intent cancelled)."""
    await session.execute(
        insert(ProviderCharge)
        .values(idempotency_key=key, amount=0, method="none", status="VOIDED")
        .on_conflict_do_nothing()
    )
    stmt = select(ProviderCharge).where(ProviderCharge.idempotency_key == key).with_for_update()
    return (await session.scalars(stmt)).one()


@post("/charges/{key:str}/void", status_code=200)
async def void(key: FromPath[str], state: State) -> Charge:
    """What happened to a key, and from now on nothing more can: a key never charged becomes VOIDED; any
    other is answered as it is (CAPTURED stays captured). Asked before a booking is failed as unpaid."""
    await misbehave(_faults(state))
    async with _db(state).db()() as session:
        row = await _void_unless_charged(session, key)
        await session.commit()
        log.info("provider.void", key=key, status=row.status)
        return _out(row)


@post("/charges/{key:str}/refund", status_code=200)
async def refund(key: FromPath[str], state: State) -> Charge:
    """Give the money back (idempotent). A key never charged is voided: a charge still on its way then
    takes nothing."""
    await misbehave(_faults(state))
    async with _db(state).db()() as session:
        row = await _void_unless_charged(session, key)
        if row.status == "CAPTURED":
            row.status = "REFUNDED"
        await session.commit()
        log.info("provider.refund", key=key, status=row.status)
        return _out(row)


@get("/faults", sync_to_thread=False)
def read_faults(state: State) -> Faults:
    return _faults(state)


@put("/faults", sync_to_thread=False)
def set_faults(data: JSONBody[dict[str, Any]], state: State) -> Faults:
    """Change fault flags while running: only the fields given change."""
    state.faults = msgspec.convert({**msgspec.to_builtins(_faults(state)), **data}, Faults)
    log.warning("provider.faults.changed", faults=msgspec.to_builtins(state.faults))
    return _faults(state)


def create_provider_app(settings: Settings) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_resources(settings, "payment-provider", {"db"}, db_pool=4) as res:
            app.state.resources = res
            app.state.faults = Faults()
            BUILD_INFO.labels(__version__, settings.environment).set(1)
            yield

    configure_logging(settings, "payment-provider")
    provider = setup_tracing(settings, "payment-provider")  # the far end of a booking's trace
    middleware = [http_tracing_middleware(provider)] if provider is not None else []

    async def before_request(request: Request[Any, Any, Any]) -> None:
        if provider is not None:
            name_span_by_route(request.scope)  # "POST /charges", not "POST (unrouted)"

    return Litestar(
        route_handlers=[
            charge,
            lookup,
            void,
            refund,
            read_faults,
            set_faults,
            health_router,
            MetricsController,
        ],
        lifespan=[lifespan],
        middleware=middleware,
        before_request=before_request,
        exception_handlers=exception_handlers(),
        logging_config=None,  # keep the ECS logging configured above
    )
