"""The simulator's failure answers: an exception carrying HTTP status + Hostaway-style ``fail`` body."""

from __future__ import annotations

from typing import Any

RATE_LIMIT_MESSAGE = "You have exceeded the rate limits for your account. Please try again later."
INVALID_TOKEN_MESSAGE = "Invalid or expired access token"


class ApiError(Exception):
    """Raised anywhere while answering; the server turns it into ``{"status": "fail", "message": ...}``."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message

    def body(self) -> dict[str, Any]:
        return fail_body(self.message)


def fail_body(message: str) -> dict[str, Any]:
    return {"status": "fail", "message": message}
