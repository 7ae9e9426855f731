"""Wire types of the auth API."""

from __future__ import annotations

from typing import Annotated

import msgspec

from jatra.infra.inputs import plain_text


class OtpRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    phone: Annotated[str, plain_text(32, description="Mobile number, +8801XXXXXXXXX")]


class OtpSent(msgspec.Struct, frozen=True):
    sent: bool
    expires_in: int


class TokenRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    phone: Annotated[str, plain_text(32, description="Mobile number, +8801XXXXXXXXX")]
    otp: Annotated[str, plain_text(16, description="The 6-digit code sent by SMS")]


class RefreshRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    refresh_token: Annotated[str, plain_text(512)]


class TokenPair(msgspec.Struct, frozen=True):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
