"""Plain request/response values passed between the socket handler and the API layers.

Keeping HTTP parsing and writing in ``server.py`` and the API logic on these values means the
``/v1`` and ``/__admin`` code never touches a socket, while fault injection still can.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from hostaway_pipeline.simulator.errors import ApiError


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    client_ip: str

    def form(self) -> dict[str, str]:
        """The body as ``application/x-www-form-urlencoded`` fields."""
        return dict(parse_qsl(self.body.decode("utf-8", errors="replace"), keep_blank_values=True))

    def json(self) -> Any:
        """The body as JSON (an empty body is ``{}``); 400 when it is not JSON."""
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            raise ApiError(400, "Request body must be JSON") from None

    def json_object(self) -> dict[str, Any]:
        payload = self.json()
        if not isinstance(payload, dict):
            raise ApiError(400, "Request body must be a JSON object")
        return payload

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else str(value)


@dataclass
class Response:
    status: int
    payload: Any = None
    raw_body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    reset_connection: bool = False

    def body_bytes(self) -> bytes:
        if self.raw_body is not None:
            return self.raw_body
        # Compact and ASCII-escaped, like PHP's json_encode on the real API.
        return json.dumps(self.payload, separators=(",", ":")).encode("ascii")


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(status=status, payload=payload)


def error_response(error: ApiError) -> Response:
    return Response(status=error.status_code, payload=error.body())
