"""HTTP routes of the seats service: seat maps (public) and holds (logged-in passengers only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, cast

from litestar import Controller, Request, Response, Router, delete, get, patch, post
from litestar.datastructures import ResponseHeader, State
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from jatra.infra.admission import CHOOSING
from jatra.infra.auth import Principal, admin_only, jwt_auth
from jatra.infra.deps import resources_of, shared_dependencies
from jatra.infra.inputs import STATION_CODE, JourneyIdPath
from jatra.infra.openapi import BODY, problems
from jatra.infra.resources import Resources
from jatra.infra.secrets import jwt_secret
from jatra.seats.repository import preload_trains
from jatra.seats.schemas import HoldOut, HoldRequest, LiveHold, SeatMap
from jatra.seats.service import SeatsService
from jatra.settings import Settings

From = Annotated[str, QueryParameter(name="from", pattern=STATION_CODE, description="Boarding station")]
To = Annotated[str, QueryParameter(name="to", pattern=STATION_CODE, description="Alighting station")]
NOT_YOURS = "Unknown hold, or not yours"
NO_ROUTE = "No such journey path: the id is not a number"
INVALID = "Invalid journey, segment or seats"


def provide_seats(state: State) -> SeatsService:
    """Built from the process's resources at once: a provider with dependencies of its own made Litestar
    resolve those per request in an anyio task group (3-5 % of an API replica's busy samples)."""
    res = resources_of(state)
    return SeatsService(res.db(), res.cache(), res.settings, res.statements())


async def warm(res: Resources) -> int:
    """Before the first request: every train's layout in this process's cache (jatra.infra.warmup)."""
    async with res.db()() as session:
        return await preload_trains(session)


def as_response(body: bytes) -> Response[SeatMap]:
    """An encoded seat map as the handler's declared response, so the API's schema stays SeatMap's:
    Litestar sends bytes content as it is."""
    return cast("Response[SeatMap]", Response(content=body, media_type=MediaType.JSON))


class SeatMapController(Controller):
    path = "/journeys"
    tags = ["seats"]  # noqa: RUF012

    @get(
        "/{journey_id:int}/seats",
        operation_id="seatMap",
        opt=CHOOSING,
        responses=problems(s404=NO_ROUTE, s422=INVALID),
    )
    async def seat_map(
        self,
        journey_id: JourneyIdPath,
        origin: From,
        destination: To,
        seats_service: NamedDependency[SeatsService],
    ) -> Response[SeatMap]:
        """Every seat of the journey with its fare and status (free, held, sold) for one segment."""
        return as_response(await seats_service.seat_map(journey_id, origin, destination))


class HoldController(Controller):
    path = "/holds"
    tags = ["holds"]  # noqa: RUF012
    security = [{"BearerToken": []}]  # noqa: RUF012

    @post(
        operation_id="createHold",
        opt=CHOOSING,
        status_code=HTTP_201_CREATED,
        responses=problems(
            401,
            *BODY,
            s409="Seats taken or a hold limit reached",
            s422=INVALID,
            s503="A dependency failed, or the train's seat availability is being restored (seats-resyncing)",
        ),
        response_headers=[
            ResponseHeader(name="Location", description="The new hold", documentation_only=True)
        ],
    )
    async def create(
        self,
        data: JSONBody[HoldRequest],
        request: Request[Principal, Any, Any],
        seats_service: NamedDependency[SeatsService],
    ) -> Response[HoldOut]:
        """Hold 1 to 4 seats for a segment, all or none, for a few minutes."""
        hold = await seats_service.hold(request.user, data)
        return Response(
            hold, status_code=HTTP_201_CREATED, headers={"Location": f"/api/v1/holds/{hold.hold_id}"}
        )

    @get("/{hold_id:uuid}", operation_id="getHold", responses=problems(401, s404=NOT_YOURS))
    async def read(
        self,
        hold_id: FromPath[uuid.UUID],
        request: Request[Principal, Any, Any],
        seats_service: NamedDependency[SeatsService],
    ) -> HoldOut:
        """One of your holds."""
        return await seats_service.get(request.user, hold_id)

    @patch(
        "/{hold_id:uuid}",
        operation_id="extendHold",
        responses=problems(401, s404=NOT_YOURS, s409="The hold expired, or cannot be extended further"),
    )
    async def extend(
        self,
        hold_id: FromPath[uuid.UUID],
        request: Request[Principal, Any, Any],
        seats_service: NamedDependency[SeatsService],
    ) -> HoldOut:
        """Extend your hold by one hold period, up to a bounded total."""
        return await seats_service.extend(request.user, hold_id)

    @delete(
        "/{hold_id:uuid}",
        operation_id="releaseHold",
        status_code=HTTP_204_NO_CONTENT,
        responses=problems(401, s404=NOT_YOURS, s409="A booking of the hold is being paid for"),
    )
    async def release(
        self,
        hold_id: FromPath[uuid.UUID],
        request: Request[Principal, Any, Any],
        seats_service: NamedDependency[SeatsService],
    ) -> None:
        """Release your hold now."""
        await seats_service.release(request.user, hold_id)


class AdminHoldController(Controller):
    path = "/admin/journeys"
    tags = ["admin"]  # noqa: RUF012
    security = [{"BearerToken": []}]  # noqa: RUF012
    guards = [admin_only]  # noqa: RUF012

    @get(
        "/{journey_id:int}/holds",
        operation_id="adminLiveHolds",
        responses=problems(401, 403, 422, s404=NO_ROUTE),
    )
    async def live_holds(
        self, journey_id: JourneyIdPath, seats_service: NamedDependency[SeatsService]
    ) -> list[LiveHold]:
        """Live holds on a journey, for on-call staff (admin role)."""
        return await seats_service.live_holds(journey_id)


def create_router(settings: Settings) -> Router:
    auth = jwt_auth(settings, jwt_secret(settings))
    dependencies = {
        **shared_dependencies(),
        "seats_service": Provide(provide_seats, sync_to_thread=False),
    }
    holds = Router(
        path="/", route_handlers=[HoldController, AdminHoldController], middleware=[auth.middleware]
    )
    return Router(
        path="/api/v1",
        route_handlers=[SeatMapController, holds],
        dependencies=dependencies,
        opt={"service": "seats"},
    )
