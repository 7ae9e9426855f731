"""Answers to OPTIONS requests, with the methods the path really has.

Litestar generates an OPTIONS handler per route, but when it merges the handlers of one path from several
controllers or routers, the generated handler keeps the methods of the first part only (``/bookings``
answered ``Allow: OPTIONS, POST`` without GET). The app's ``before_request`` hook answers OPTIONS here,
from the merged routes.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, Response
from litestar.routes import HTTPRoute
from litestar.status_codes import HTTP_204_NO_CONTENT


def allowed_methods(app: Litestar, path_template: str) -> list[str]:
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path_format == path_template:
            return sorted(route.methods)
    return ["OPTIONS"]


def options_response(request: Request[Any, Any, Any]) -> Response[None]:
    allow = ", ".join(allowed_methods(request.app, request.scope.get("path_template", "")))
    return Response(None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": allow})
