"""The ``/v1`` Hostaway endpoints: routing, bearer-token auth, access tokens, reads and unified webhooks.

Rate limiting, fault injection and call statistics wrap these in ``server.py``; this module only
decides what a request that got through would be answered.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hostaway_pipeline.simulator import queries
from hostaway_pipeline.simulator.drift import apply_page_drift
from hostaway_pipeline.simulator.errors import INVALID_TOKEN_MESSAGE, ApiError
from hostaway_pipeline.simulator.faults import FaultRule
from hostaway_pipeline.simulator.simtime import format_timestamp
from hostaway_pipeline.simulator.store import LATEST_ACTIVITY_READINGS, AccountState, SimulatorStore
from hostaway_pipeline.simulator.tokens import TokenRegistry, TokenState
from hostaway_pipeline.simulator.wire import Request, Response, json_response

TOKEN_RESPONSE_SHAPES = ("plain", "wrapped")


@dataclass
class RuntimeConfig:
    """Behaviour switches an operator can flip while the simulator runs (``POST /__admin/config``).

    ``after_id_reading``, ``after_id_unknown``, ``count_with_cursor``, ``activity_filter_reading`` (see
    ``queries``) and ``latest_activity_reading`` (see ``store``) serve the readings the docs leave open; each default is
    the documented (or most literal) reading.
    """

    token_response_shape: str = "plain"
    invalid_token_status: int = 403
    after_id_reading: str = "keyset"
    after_id_unknown: str = "empty"
    count_with_cursor: str = "total"
    latest_activity_reading: str = "every_change"
    activity_filter_reading: str = "date_time"

    def update(self, changes: Mapping[str, Any]) -> None:
        unknown = set(changes) - set(self.as_dict())
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(self.as_dict())}")
        merged = {**self.as_dict(), **changes}
        if merged["token_response_shape"] not in TOKEN_RESPONSE_SHAPES:
            raise ValueError(
                f"token_response_shape must be one of {TOKEN_RESPONSE_SHAPES}, "
                f"got {merged['token_response_shape']!r}"
            )
        if merged["invalid_token_status"] not in (401, 403):
            raise ValueError(f"invalid_token_status must be 401 or 403, got {merged['invalid_token_status']!r}")
        for name, choices in _CHOICES.items():
            if merged[name] not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {merged[name]!r}")
        for name, value in merged.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return {
            "token_response_shape": self.token_response_shape,
            "invalid_token_status": self.invalid_token_status,
            "after_id_reading": self.after_id_reading,
            "after_id_unknown": self.after_id_unknown,
            "count_with_cursor": self.count_with_cursor,
            "latest_activity_reading": self.latest_activity_reading,
            "activity_filter_reading": self.activity_filter_reading,
        }


_CHOICES = {
    "after_id_reading": queries.AFTER_ID_READINGS,
    "after_id_unknown": queries.AFTER_ID_UNKNOWN,
    "count_with_cursor": queries.COUNT_WITH_CURSOR,
    "latest_activity_reading": LATEST_ACTIVITY_READINGS,
    "activity_filter_reading": queries.ACTIVITY_FILTER_READINGS,
}


@dataclass
class Call:
    """A routed request: the account it acts for (once authenticated) and the numeric path ids.

    ``drift`` is a ``page_drift`` rule firing on this call; ``fault_result`` what it (or another
    fault) did, for the call log.
    """

    request: Request
    path_ids: tuple[int, ...]
    endpoint: str = "other"
    state: AccountState | None = None
    drift: FaultRule | None = None
    fault_result: dict[str, Any] | None = None


Handler = Callable[["V1Api", Call], Response]


@dataclass(frozen=True)
class Route:
    endpoint: str
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    authenticated: bool = True


class V1Api:
    """Answers routed ``/v1`` calls against the store."""

    def __init__(
        self,
        store: SimulatorStore,
        tokens: TokenRegistry,
        config: RuntimeConfig,
        secret_for: Callable[[int], str | None],
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.config = config
        self._secret_for = secret_for

    # ---- routing -----------------------------------------------------------------------------------
    def resolve(self, method: str, path: str) -> tuple[str, Route | None, tuple[int, ...]]:
        """(endpoint name for statistics, the route or None for 404, numeric path ids)."""
        path = path.rstrip("/") or "/"
        endpoint = "other"
        for route in _ROUTES:
            match = route.pattern.fullmatch(path)
            if match:
                endpoint = route.endpoint
                if route.method == method:
                    return endpoint, route, tuple(int(group) for group in match.groups())
        return endpoint, None, ()

    def limiter_account(self, route: Route | None, request: Request) -> int | None:
        """The account a call counts against: the bearer token's owner, or client_id for accessTokens."""
        if route is not None and route.endpoint == "accessTokens":
            if request.method == "POST":
                client_id = request.form().get("client_id", "")
                return int(client_id) if client_id.strip().isdigit() else None
            token = self.tokens.lookup(request.query.get("token", ""))
            return token.account_id if token else None
        token = self.tokens.lookup(self._bearer(request) or "")
        return token.account_id if token else None

    @staticmethod
    def _bearer(request: Request) -> str | None:
        header = request.header("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        return value.strip()

    def authenticate(self, request: Request) -> AccountState:
        """The account of a usable bearer token; otherwise an auth failure (403, or 401 if configured)."""
        value = self._bearer(request)
        token = self.tokens.lookup(value) if value else None
        if self.tokens.state_of(token) is not TokenState.VALID or token is None:
            raise ApiError(self.config.invalid_token_status, INVALID_TOKEN_MESSAGE)
        state = self.store.get(token.account_id)
        if state is None:
            raise ApiError(self.config.invalid_token_status, INVALID_TOKEN_MESSAGE)
        return state

    def answer(self, route: Route, call: Call) -> Response:
        call.endpoint = route.endpoint
        if route.authenticated:
            call.state = self.authenticate(call.request)
        return route.handler(self, call)

    # ---- access tokens -----------------------------------------------------------------------------
    def issue_token(self, call: Call) -> Response:
        form = call.request.form()
        if form.get("grant_type") != "client_credentials":
            raise ApiError(400, "Unsupported grant_type: use client_credentials")
        client_id = form.get("client_id", "").strip()
        account_id = int(client_id) if client_id.isdigit() else None
        expected = self._secret_for(account_id) if account_id is not None else None
        given = form.get("client_secret", "")
        if account_id is None or expected is None or not hmac.compare_digest(expected, given):
            raise ApiError(403, "Invalid client credentials")
        token = self.tokens.issue(account_id)
        body = {"token_type": "Bearer", "expires_in": token.expires_in, "access_token": token.value}
        if self.config.token_response_shape == "wrapped":
            return json_response({"status": "success", "result": body})
        return json_response(body)

    def revoke_token(self, call: Call) -> Response:
        value = call.request.query.get("token", "")
        if not value:
            raise ApiError(400, "Parameter 'token' is required")
        self.tokens.revoke(value)
        return json_response({"status": "success", "result": None})

    # ---- reads ---------------------------------------------------------------------------------------
    def _state(self, call: Call) -> AccountState:
        assert call.state is not None, "authenticated route without account"
        return call.state

    def _list(self, call: Call, serve: Callable[[AccountState], queries.ServedPage]) -> Response:
        """Serve a list page; a ``page_drift`` firing on this call then changes rows upstream."""
        state = self._state(call)
        with self.store.lock:
            served = serve(state)
            drift = call.drift
            if drift is not None:
                call.fault_result = apply_page_drift(
                    state, call.endpoint, served, drift.action or "update", drift.target, drift.rows
                )
        return json_response(served.envelope)

    def listings(self, call: Call) -> Response:
        return self._list(call, lambda state: queries.listings_page(state, call.request.query))

    def listing(self, call: Call) -> Response:
        with self.store.lock:
            return json_response(queries.listing_by_id(self._state(call), call.path_ids[0]))

    def reservations(self, call: Call) -> Response:
        config = self.config
        return self._list(
            call,
            lambda state: queries.reservations_page(
                state,
                call.request.query,
                after_id_reading=config.after_id_reading,
                after_id_unknown=config.after_id_unknown,
                count_with_cursor=config.count_with_cursor,
                activity_filter_reading=config.activity_filter_reading,
            ),
        )

    def reservation(self, call: Call) -> Response:
        with self.store.lock:
            return json_response(queries.reservation_by_id(self._state(call), call.path_ids[0]))

    def conversations(self, call: Call) -> Response:
        return self._list(call, lambda state: queries.conversations_page(state, call.request.query))

    def conversation(self, call: Call) -> Response:
        with self.store.lock:
            return json_response(queries.conversation_by_id(self._state(call), call.path_ids[0]))

    def messages(self, call: Call) -> Response:
        return self._list(
            call, lambda state: queries.messages_page(state, call.path_ids[0], call.request.query)
        )

    def message(self, call: Call) -> Response:
        with self.store.lock:
            return json_response(queries.message_by_id(self._state(call), *call.path_ids[:2]))

    # ---- unified webhooks ------------------------------------------------------------------------------
    def _webhook_or_404(self, state: AccountState, webhook_id: int) -> dict[str, Any]:
        webhook = state.webhooks.get(webhook_id)
        if webhook is None:
            raise ApiError(404, f"Unified webhook {webhook_id} not found")
        return webhook

    @staticmethod
    def _webhook_fields(payload: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
        allowed = ("isEnabled", "url", "login", "password", "alertingEmailAddress")
        fields = {key: payload[key] for key in allowed if key in payload}
        if creating and not isinstance(fields.get("url"), str):
            raise ApiError(400, "Field 'url' is required")
        if "url" in fields and not (isinstance(fields["url"], str) and fields["url"].startswith("http")):
            raise ApiError(400, "Field 'url' must be an http(s) URL")
        if "isEnabled" in fields and fields["isEnabled"] not in (0, 1, True, False):
            raise ApiError(400, "Field 'isEnabled' must be 0 or 1")
        if "isEnabled" in fields:
            fields["isEnabled"] = int(fields["isEnabled"])
        return fields

    def list_webhooks(self, call: Call) -> Response:
        state = self._state(call)
        with self.store.lock:
            rows = [row for _, row in sorted(state.webhooks.items())]
        return json_response({"status": "success", "result": rows})

    def create_webhook(self, call: Call) -> Response:
        state = self._state(call)
        fields = self._webhook_fields(call.request.json_object(), creating=True)
        with self.store.lock:
            stamp = format_timestamp(state.next_stamp())
            webhook_id = state.factory.ids.next("webhook")
            webhook = {
                "id": webhook_id,
                "accountId": state.account_id,
                "isEnabled": 1,
                "url": None,
                "login": None,
                "password": None,
                "alertingEmailAddress": None,
                "insertedOn": stamp,
                "updatedOn": stamp,
            }
            webhook.update(fields)
            state.webhooks[webhook_id] = webhook
        return json_response({"status": "success", "result": webhook})

    def get_webhook(self, call: Call) -> Response:
        with self.store.lock:
            webhook = self._webhook_or_404(self._state(call), call.path_ids[0])
        return json_response({"status": "success", "result": webhook})

    def update_webhook(self, call: Call) -> Response:
        state = self._state(call)
        fields = self._webhook_fields(call.request.json_object(), creating=False)
        with self.store.lock:
            webhook = self._webhook_or_404(state, call.path_ids[0])
            updated = {**webhook, **fields, "updatedOn": format_timestamp(state.next_stamp())}
            state.webhooks[webhook["id"]] = updated
        return json_response({"status": "success", "result": updated})

    def delete_webhook(self, call: Call) -> Response:
        state = self._state(call)
        with self.store.lock:
            webhook = self._webhook_or_404(state, call.path_ids[0])
            del state.webhooks[webhook["id"]]
        return json_response({"status": "success", "result": webhook})


def _route(endpoint: str, method: str, pattern: str, handler: Handler, authenticated: bool = True) -> Route:
    return Route(endpoint, method, re.compile(pattern), handler, authenticated)


_ID = r"(\d+)"
_ROUTES = (
    _route("accessTokens", "POST", r"/v1/accessTokens", V1Api.issue_token, authenticated=False),
    _route("accessTokens", "DELETE", r"/v1/accessTokens", V1Api.revoke_token, authenticated=False),
    _route("listings", "GET", r"/v1/listings", V1Api.listings),
    _route("listing", "GET", rf"/v1/listings/{_ID}", V1Api.listing),
    _route("reservations", "GET", r"/v1/reservations", V1Api.reservations),
    _route("reservation", "GET", rf"/v1/reservations/{_ID}", V1Api.reservation),
    _route("conversations", "GET", r"/v1/conversations", V1Api.conversations),
    _route("conversation", "GET", rf"/v1/conversations/{_ID}", V1Api.conversation),
    _route("messages", "GET", rf"/v1/conversations/{_ID}/messages", V1Api.messages),
    _route("message", "GET", rf"/v1/conversations/{_ID}/messages/{_ID}", V1Api.message),
    _route("webhooks", "GET", r"/v1/webhooks/unifiedWebhooks", V1Api.list_webhooks),
    _route("webhooks", "POST", r"/v1/webhooks/unifiedWebhooks", V1Api.create_webhook),
    _route("webhooks", "GET", rf"/v1/webhooks/unifiedWebhooks/{_ID}", V1Api.get_webhook),
    _route("webhooks", "PUT", rf"/v1/webhooks/unifiedWebhooks/{_ID}", V1Api.update_webhook),
    _route("webhooks", "DELETE", rf"/v1/webhooks/unifiedWebhooks/{_ID}", V1Api.delete_webhook),
)
