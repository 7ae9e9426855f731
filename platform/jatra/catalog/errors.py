"""Errors of the catalog service."""

from __future__ import annotations

from jatra.errors import InvalidInput, InvalidParam


class InvalidSearch(InvalidInput):
    """A journey search that names an unknown station, a malformed or past date, or the same two stations."""

    slug = "invalid-search"
    title = "Invalid journey search"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(InvalidParam(field, reason))
