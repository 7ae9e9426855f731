"""HTTP routes of the bookings service: bookings (logged in) and ticket verification (public)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Controller, Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from jatra.bookings.errors import InvalidBooking
from jatra.bookings.schemas import (
    BookingAccepted,
    BookingOut,
    BookingPage,
    BookingRequest,
    VerifyRequest,
    VerifyResult,
)
from jatra.bookings.service import BookingsService, Reach, to_out
from jatra.infra import topology
from jatra.infra.admission import EXEMPT
from jatra.infra.auth import Principal, jwt_auth
from jatra.infra.deps import resources_of, shared_dependencies
from jatra.infra.idempotency import REPLAYED_HEADER
from jatra.infra.inputs import PLAIN_TEXT
from jatra.infra.openapi import BODY, problems
from jatra.infra.secrets import jwt_secret
from jatra.settings import Settings
from jatra.tickets import signing

IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        pattern=PLAIN_TEXT,
        description="Required: a unique key per booking attempt (1 to 200 characters)",
    ),
]
NOT_YOURS = "Unknown booking, or not yours"
#: the longest a read of a booking waits for its payment to settle (?wait=)
MAX_WAIT_S = 20
WaitParameter = Annotated[
    int,
    QueryParameter(
        ge=0,
        le=MAX_WAIT_S,
        description="Seconds to wait for the payment to settle before answering (a long poll): the answer "
        "comes as soon as the booking leaves PAYMENT_PENDING/PAYMENT_PROCESSING, or after this long with "
        "the state it is in then. 0 (default): answer at once.",
    ),
]


class BookingController(Controller):
    path = "/bookings"
    tags = ["bookings"]  # noqa: RUF012
    security = [{"BearerToken": []}]  # noqa: RUF012

    @post(
        operation_id="createBooking",
        status_code=202,
        responses=problems(
            401,
            *BODY,
            s409="The hold expired or is booked already, or an older version still runs this key's request",
            s422="Invalid hold, passengers, payment method or Idempotency-Key, or the key was used "
            "for another body",
        ),
    )
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

    @get("/{booking_id:uuid}", operation_id="getBooking", opt=EXEMPT, responses=problems(401, s404=NOT_YOURS))
    async def read(
        self,
        booking_id: FromPath[uuid.UUID],
        request: Request[Principal, Any, Any],
        bookings_service: NamedDependency[BookingsService],
        wait: WaitParameter = 0,
    ) -> BookingOut:
        """One of your bookings: PAYMENT_PENDING, PAYMENT_PROCESSING, then CONFIRMED or PAYMENT_FAILED.
        With `wait`, the answer waits for the payment to settle (up to that many seconds): ask once."""
        return await bookings_service.settled(request.user, booking_id, wait)

    @get(
        "/{booking_id:uuid}/ticket.pdf",
        operation_id="getTicketPdf",
        responses=problems(401, s404=NOT_YOURS, s409="The booking is not confirmed"),
        media_type="application/pdf",
    )
    async def ticket(
        self,
        booking_id: FromPath[uuid.UUID],
        request: Request[Principal, Any, Any],
        bookings_service: NamedDependency[BookingsService],
    ) -> Response[bytes]:
        """The e-ticket of a confirmed booking: a PDF with its signed QR code."""
        pdf = await bookings_service.ticket(request.user, booking_id)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="jatra-{booking_id}.pdf"'},
        )

    @post(
        "/{booking_id:uuid}/cancel",
        operation_id="cancelBooking",
        status_code=200,
        responses=problems(401, s404=NOT_YOURS, s409="Not confirmed, or the train has left"),
    )
    async def cancel(
        self,
        booking_id: FromPath[uuid.UUID],
        request: Request[Principal, Any, Any],
        bookings_service: NamedDependency[BookingsService],
    ) -> BookingOut:
        """Cancel a confirmed booking. The refund follows the fare rule: the earlier, the more comes back."""
        return to_out(await bookings_service.cancel(request.user, booking_id))

    @get(operation_id="listBookings", responses=problems(401, s422="Not a cursor this API returned"))
    async def mine(
        self,
        request: Request[Principal, Any, Any],
        bookings_service: NamedDependency[BookingsService],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> BookingPage:
        """Your bookings, newest first, a page at a time (pass `next_cursor` back as `cursor`)."""
        return await bookings_service.mine(request.user, limit, cursor)


class TicketController(Controller):
    """Public: a checker verifies a QR code here, or offline with the public key."""

    path = "/tickets"
    tags = ["tickets"]  # noqa: RUF012

    @post("/verify", operation_id="verifyTicket", status_code=200, responses=problems(*BODY))
    async def verify(
        self, data: JSONBody[VerifyRequest], ticket_key: NamedDependency[Ed25519PrivateKey]
    ) -> VerifyResult:
        """Is this QR a genuine ticket? Forged or altered codes are refused, with the reason."""
        verdict = signing.verify(ticket_key.public_key(), data.qr)
        return VerifyResult(valid=verdict.valid, reason=verdict.reason, ticket=verdict.ticket)

    @get(
        "/public-key",
        operation_id="ticketPublicKey",
        media_type="application/x-pem-file",
        responses=problems(),
    )
    async def public_key(self, ticket_key: NamedDependency[Ed25519PrivateKey]) -> str:
        """The Ed25519 public key that verifies every ticket QR offline."""
        return signing.public_pem(ticket_key)


def create_router(settings: Settings) -> Router:
    auth = jwt_auth(settings, jwt_secret(settings))
    key = signing.signing_key(settings)

    def provide_ticket_key() -> Ed25519PrivateKey:
        return key

    def provide_bookings(state: State) -> BookingsService:
        """Built from the process's resources at once, with the doorbell, the signing key and the timezone
        inside (see jatra.bookings.service.Reach): a handler with two or more dependencies has Litestar
        resolve them per request in an anyio task group (3-5 % of an API replica's busy samples)."""
        res = resources_of(state)
        reach = Reach(res.doorbell(topology.SETTLED_CHANNEL), key, settings.timezone)
        return BookingsService(res.db(), res.cache(), res.statements(), reach)

    protected = Router(path="/", route_handlers=[BookingController], middleware=[auth.middleware])
    return Router(
        path="/api/v1",
        route_handlers=[protected, TicketController],
        dependencies={
            **shared_dependencies(),
            "bookings_service": Provide(provide_bookings, sync_to_thread=False),
            "ticket_key": Provide(provide_ticket_key, sync_to_thread=False),
        },
        opt={"service": "bookings"},
    )
