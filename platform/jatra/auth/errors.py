"""Errors of the auth service."""

from __future__ import annotations

from jatra.errors import InvalidInput, InvalidParam, JatraError


class InvalidPhone(InvalidInput):
    slug = "invalid-phone"
    title = "Invalid phone number"

    def __init__(self, phone: str) -> None:
        super().__init__(
            InvalidParam("phone", f"{phone!r} is not a Bangladeshi mobile number (+8801XXXXXXXXX)")
        )


class OtpRateLimited(JatraError):
    status = 429
    slug = "otp-rate-limited"
    title = "Too many one-time passwords requested"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many codes for this number; retry in {retry_after_s}s")
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class LoginFailed(JatraError):
    """Wrong, expired or burnt one-time password, or an unusable refresh token: 401."""

    status = 401
    slug = "login-failed"
    title = "Authentication failed"
