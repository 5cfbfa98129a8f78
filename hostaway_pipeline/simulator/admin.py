"""The ``/__admin`` control API: JSON in and out, no auth, never rate limited or counted.

Each route is a thin shell over the ``SimulatorServer`` method of the same purpose, so tests can drive
the simulator in-process or over HTTP and get the same dicts:

    GET    /__admin/health                      {"status": "ok", "world_now": ...}
    GET    /__admin/stats                       call statistics          POST /__admin/stats/reset
    GET    /__admin/calls                       raw call log
    GET    /__admin/accounts                    account summaries
    POST   /__admin/accounts                    {"account_id": N, "size": "seed" | "empty" | n}
    GET    /__admin/accounts/{id}/truth         ground truth
    POST   /__admin/accounts/{id}/mutate        {"new_reservations": n, ..., "webhook": {...},
                                                 "emit_webhooks_for_registered": bool}
    POST   /__admin/tokens/revoke_all           {"account_id": optional}
    POST   /__admin/tokens/expire_all           {"account_id": optional}
    GET    /__admin/config                      POST /__admin/config {"after_id_reading": "id_order", ...}
    GET    /__admin/faults                      POST /__admin/faults {rule}   DELETE /__admin/faults
    POST   /__admin/webhooks/emit               {"url", "login", "password", "account_id", "events", ...}

Config keys (``POST`` changes only the keys given and answers the whole config; defaults first):

    token_response_shape   "plain" | "wrapped"           shape of the /v1/accessTokens answer
    invalid_token_status   403 | 401                     status of an auth failure
    after_id_reading       "keyset" | "id_order" | "ignored"
                           afterId on /v1/reservations: rows after the cursor row in the request's sort
                           order (documented); id > afterId in id order; or ignored (offset paging)
    after_id_unknown       "empty" | "first_page" | "error"
                           afterId=0 or an id matching no row of the filtered set: empty result with the
                           true count; the first page; or 400
    count_with_cursor      "total" | "remaining"         count with an afterId: all matching rows, or the
                                                         rows from this page on
    latest_activity_reading "every_change" | "not_on_edits"
                           which reservation changes move latestActivityOn: every change, or only
                           bookings and sent messages (an edit, status change or cancellation moves
                           updatedOn alone)
    activity_filter_reading "date_time" | "date_only" | "date_part"
                           latestActivityStart/End on /v1/reservations: a date-time or a date; a date
                           only (a date-time answers 400); or only the date part of a date-time

Fault rules (see ``faults``), e.g. ``{"kind": "page_drift", "endpoint": "conversations",
"action": "delete", "target": "served", "rows": 2, "after": 1, "count": 1}`` or
``{"kind": "empty_page", "endpoint": "reservations"}``. ``GET /__admin/faults`` lists each rule with
``seen``/``fired``/``spent`` and the ``results`` of its firings (ids a page_drift touched); the same
result is on the call's ``fault_result`` in ``GET /__admin/calls``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from hostaway_pipeline.simulator.errors import ApiError
from hostaway_pipeline.simulator.wire import Request, Response, json_response

if TYPE_CHECKING:
    from hostaway_pipeline.simulator.server import SimulatorServer

_ACCOUNT_PATH = re.compile(r"/__admin/accounts/(\d+)/(truth|mutate)")


def _ok(result: Any) -> Response:
    return json_response({"status": "success", "result": result})


def _optional_account(body: dict[str, Any]) -> int | None:
    account_id = body.get("account_id")
    if account_id is not None and (isinstance(account_id, bool) or not isinstance(account_id, int)):
        raise ApiError(400, f"account_id must be an integer, got {account_id!r}")
    return account_id


def _required_account(body: dict[str, Any]) -> int:
    account_id = _optional_account(body)
    if account_id is None:
        raise ApiError(400, "account_id is required")
    return account_id


def handle(sim: SimulatorServer, request: Request) -> Response:
    try:
        return _route(sim, request)
    except KeyError as error:
        raise ApiError(404, str(error.args[0]) if error.args else "not found") from None
    except ValueError as error:
        raise ApiError(400, str(error)) from None


def _route(sim: SimulatorServer, request: Request) -> Response:
    method, path = request.method, request.path.rstrip("/")
    match = _ACCOUNT_PATH.fullmatch(path)
    if match:
        account_id, action = int(match.group(1)), match.group(2)
        if action == "truth" and method == "GET":
            return json_response(sim.truth(account_id))
        if action == "mutate" and method == "POST":
            body = request.json_object()
            webhook = body.pop("webhook", None)
            emit_registered = bool(body.pop("emit_webhooks_for_registered", False))
            if webhook is not None and not isinstance(webhook, dict):
                raise ApiError(400, "'webhook' must be an object with url/login/password/shape/...")
            return json_response(
                sim.mutate(account_id, body, webhook=webhook, emit_webhooks_for_registered=emit_registered)
            )
    key = (method, path)
    if key == ("GET", "/__admin/health"):
        return json_response({"status": "ok", "world_now": sim.world_now()})
    if key == ("GET", "/__admin/stats"):
        return json_response(sim.stats())
    if key == ("POST", "/__admin/stats/reset"):
        sim.reset_stats()
        return _ok(None)
    if key == ("GET", "/__admin/calls"):
        return json_response(sim.calls())
    if key == ("GET", "/__admin/accounts"):
        return json_response(sim.accounts())
    if key == ("POST", "/__admin/accounts"):
        body = request.json_object()
        return json_response(sim.add_account(_required_account(body), body.get("size", "seed")))
    if key == ("POST", "/__admin/tokens/revoke_all"):
        return _ok({"revoked": sim.revoke_all_tokens(_optional_account(request.json_object()))})
    if key == ("POST", "/__admin/tokens/expire_all"):
        return _ok({"expired": sim.expire_all_tokens(_optional_account(request.json_object()))})
    if key == ("GET", "/__admin/config"):
        return json_response(sim.configure())
    if key == ("POST", "/__admin/config"):
        return json_response(sim.configure(**request.json_object()))
    if key == ("GET", "/__admin/faults"):
        return json_response(sim.faults())
    if key == ("POST", "/__admin/faults"):
        return json_response(sim.add_fault(request.json_object()))
    if key == ("DELETE", "/__admin/faults"):
        sim.clear_faults()
        return _ok(None)
    if key == ("POST", "/__admin/webhooks/emit"):
        body = request.json_object()
        events = body.get("events")
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise ApiError(400, '\'events\' must be a list of objects like {"event": "test"}')
        deliveries = sim.emit_webhooks(
            body.get("url", ""),
            events,
            _required_account(body),
            login=body.get("login"),
            password=body.get("password"),
            duplicate=bool(body.get("duplicate")),
            shuffle=bool(body.get("shuffle")),
            shape=body.get("shape", "payload_data"),
        )
        return json_response({"deliveries": deliveries})
    raise ApiError(404, f"Unknown admin route: {method} {request.path}")
