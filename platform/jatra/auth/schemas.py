"""Wire types of the auth API."""

from __future__ import annotations

import msgspec


class OtpRequest(msgspec.Struct, frozen=True):
    phone: str


class OtpSent(msgspec.Struct, frozen=True):
    sent: bool
    expires_in: int


class TokenRequest(msgspec.Struct, frozen=True):
    phone: str
    otp: str


class RefreshRequest(msgspec.Struct, frozen=True):
    refresh_token: str


class TokenPair(msgspec.Struct, frozen=True):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
