"""HTTP routes of the bookings service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, QueryParameter
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from jatra.bookings.errors import InvalidBooking
from jatra.bookings.schemas import BookingAccepted, BookingOut, BookingPage, BookingRequest
from jatra.bookings.service import BookingsService, to_out
from jatra.errors import PROBLEM_JSON
from jatra.infra.auth import Principal, jwt_auth
from jatra.infra.deps import provide_redis, provide_session
from jatra.infra.idempotency import REPLAYED_HEADER
from jatra.infra.secrets import jwt_secret
from jatra.settings import Settings

IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key", required=False, description="Required: a unique key per booking attempt"
    ),
]
PROBLEMS = {
    400: ResponseSpec(None, description="Missing Idempotency-Key or malformed body", media_type=PROBLEM_JSON),
    404: ResponseSpec(None, description="Unknown booking, or not yours", media_type=PROBLEM_JSON),
    409: ResponseSpec(
        None, description="Hold expired or booked, or request in flight", media_type=PROBLEM_JSON
    ),
    422: ResponseSpec(
        None, description="Invalid hold, passengers or payment method", media_type=PROBLEM_JSON
    ),
}


def provide_bookings(
    db_session: NamedDependency[AsyncSession], redis: NamedDependency[Redis]
) -> BookingsService:
    return BookingsService(db_session, redis)


class BookingController(Controller):
    path = "/bookings"
    tags = ["bookings"]  # noqa: RUF012
    security = [{"BearerToken": []}]  # noqa: RUF012

    @post(operation_id="createBooking", responses=PROBLEMS, status_code=202)
    async def create(
        self,
        data: JSONBody[BookingRequest],
        request: Request[Principal, Any, Any],
        bookings_service: NamedDependency[BookingsService],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[BookingAccepted]:
        """Book a hold: 202 PAYMENT_PENDING at once; payment happens behind a queue. Poll the Location."""
        if not idempotency_key or len(idempotency_key) > 200:
            raise InvalidBooking(
                "Idempotency-Key", "header required: 1 to 200 characters, unique per attempt"
            )
        status, body, replayed = await bookings_service.create(request.user, idempotency_key, data)
        headers = {"Location": f"/api/v1/bookings/{body['booking_id']}"}
        if replayed:
            headers[REPLAYED_HEADER] = "true"
        return Response(BookingAccepted(**body), status_code=status, headers=headers)  # type: ignore[arg-type]

    @get("/{booking_id:uuid}", operation_id="getBooking", responses=PROBLEMS)
    async def read(
        self,
        booking_id: uuid.UUID,
        request: Request[Principal, Any, Any],
        bookings_service: NamedDependency[BookingsService],
    ) -> BookingOut:
        """One of your bookings: PAYMENT_PENDING, PAYMENT_PROCESSING, then CONFIRMED or PAYMENT_FAILED."""
        return to_out(await bookings_service.get(request.user, booking_id))

    @get(operation_id="listBookings")
    async def mine(
        self,
        request: Request[Principal, Any, Any],
        bookings_service: NamedDependency[BookingsService],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, QueryParameter()] = None,
    ) -> BookingPage:
        """Your bookings, newest first, a page at a time (pass `next_cursor` back as `cursor`)."""
        return await bookings_service.mine(request.user, limit, cursor)


def create_router(settings: Settings) -> Router:
    auth = jwt_auth(settings, jwt_secret(settings))
    return Router(
        path="/api/v1",
        route_handlers=[BookingController],
        middleware=[auth.middleware],
        dependencies={
            "db_session": Provide(provide_session),
            "redis": Provide(provide_redis, sync_to_thread=False),
            "bookings_service": Provide(provide_bookings, sync_to_thread=False),
        },
        opt={"service": "bookings"},
    )
