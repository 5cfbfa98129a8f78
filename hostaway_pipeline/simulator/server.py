"""The local Hostaway API stand-in: a real HTTP server speaking ``/v1`` plus an ``/__admin`` control API.

Built on the standard library's ``ThreadingHTTPServer`` rather than a web framework because fault
injection needs socket-level control: resetting a connection (SO_LINGER 0), stalling an answer past a
client timeout, or sending a truncated body. Every ``/v1`` call passes, in order, through the rate
limiter (429 when over the limit), the call log, the fault injector, routing, bearer-token auth and the
endpoint itself. ``/__admin`` calls are never limited or counted.

    with SimulatorServer(accounts={10001: "seed"}, seed=7, time_scale=10.0) as sim:
        secret = sim.client_secret(10001)
        requests.post(f"{sim.base_url}/accessTokens", data={..., "client_secret": secret})
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from hostaway_pipeline.simulator import admin
from hostaway_pipeline.simulator.api_v1 import Call, RuntimeConfig, V1Api
from hostaway_pipeline.simulator.data import AccountSize, normalize_size
from hostaway_pipeline.simulator.errors import RATE_LIMIT_MESSAGE, ApiError, fail_body
from hostaway_pipeline.simulator.faults import FaultInjector, FaultRule
from hostaway_pipeline.simulator.mutations import apply_mutations
from hostaway_pipeline.simulator.rate_limits import CallLog, CallRecord, RateLimitPolicy, SlidingWindowLimiter
from hostaway_pipeline.simulator.simtime import WorldClock, format_timestamp, world_epoch_for_seed
from hostaway_pipeline.simulator.store import AccountState, SimulatorStore
from hostaway_pipeline.simulator.tokens import DEFAULT_EXPIRES_IN_SECONDS, TokenRegistry, derive_client_secret
from hostaway_pipeline.simulator.webhook_emitter import Delivery, deliver
from hostaway_pipeline.simulator.wire import Request, Response, error_response, json_response

_PROXY_ERROR_PAGES = {
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
    504: "504 Gateway Time-out",
}


def parse_accounts_spec(spec: str) -> dict[int, AccountSize]:
    """Parse ``"10001:seed,10002:50,10003:empty"`` into ``{10001: "seed", 10002: 50, 10003: "empty"}``."""
    accounts: dict[int, AccountSize] = {}
    if not spec or not spec.strip():
        raise ValueError("accounts spec is empty; expected ID:SIZE[,ID:SIZE...] such as 10001:seed,10002:50")
    for item in spec.split(","):
        item = item.strip()
        account_text, separator, size_text = item.partition(":")
        if not separator or not account_text.strip() or not size_text.strip():
            raise ValueError(
                f"bad accounts spec item {item!r}: expected ID:SIZE where SIZE is seed, empty or "
                "a number of reservations (e.g. 10001:seed)"
            )
        if not account_text.strip().isdigit() or int(account_text) <= 0:
            raise ValueError(
                f"bad account id {account_text.strip()!r} in {item!r}: must be a positive integer"
            )
        account_id = int(account_text)
        if account_id in accounts:
            raise ValueError(f"account {account_id} appears twice in the accounts spec")
        try:
            accounts[account_id] = normalize_size(size_text)
        except ValueError as error:
            raise ValueError(f"bad size in {item!r}: {error}") from None
    return accounts


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: SimulatorServer) -> None:
        self.simulator = simulator
        self._open_connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._open_connections.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """Drop idle keep-alive connections so handler threads end with the server."""
        with self._connections_lock:
            connections = list(self._open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API behind its load balancer
    server_version = "HostawaySimulator/1.0"
    server: _HTTPServer

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle + delayed ACK add ~40 ms.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        if self.server.simulator.verbose:
            super().log_message(format, *args)

    def _dispatch(self) -> None:
        length_header = self.headers.get("Content-Length") or "0"
        length = int(length_header) if length_header.isdigit() else 0
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={key: value for key, value in self.headers.items()},
            body=body,
            client_ip=self._client_ip(),
        )
        response = self.server.simulator.handle(request)
        if response.reset_connection:
            self._reset_connection()
            return
        self._write(response)

    def _client_ip(self) -> str:
        if self.server.simulator.trust_forwarded_for:
            forwarded = self.headers.get("X-Forwarded-For")
            if forwarded:
                return forwarded.split(",")[0].strip()
        return str(self.client_address[0])

    def _reset_connection(self) -> None:
        """Abort the TCP connection: SO_LINGER 0 makes close() send RST instead of FIN."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()

    def _write(self, response: Response) -> None:
        body = response.body_bytes()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its timeout fired during an injected delay).
            self.close_connection = True


class SimulatorServer:
    """A running (or ready-to-run) simulated Hostaway with its accounts, limits, faults and statistics."""

    def __init__(
        self,
        accounts: Mapping[int, AccountSize] | None = None,
        seed: int = 7,
        time_scale: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        token_response_shape: str = "plain",
        *,
        client_secrets: Mapping[int, str] | None = None,
        ip_limit: int = 15,
        account_limit: int = 20,
        window_seconds: float = 10.0,
        invalid_token_status: int = 403,
        after_id_reading: str = "keyset",
        after_id_unknown: str = "empty",
        count_with_cursor: str = "total",
        token_expires_in_seconds: int = DEFAULT_EXPIRES_IN_SECONDS,
        trust_forwarded_for: bool = False,
        verbose: bool = False,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {time_scale}")
        self.seed = seed
        self.time_scale = time_scale
        self.host = host
        self.requested_port = port
        self.trust_forwarded_for = trust_forwarded_for
        self.verbose = verbose
        self.world_epoch = world_epoch_for_seed(seed)
        self.clock = WorldClock(self.world_epoch, time_scale)
        self.store = SimulatorStore(seed, self.clock, self.world_epoch)
        self.config = RuntimeConfig()
        self.config.update(
            {
                "token_response_shape": token_response_shape,
                "invalid_token_status": invalid_token_status,
                "after_id_reading": after_id_reading,
                "after_id_unknown": after_id_unknown,
                "count_with_cursor": count_with_cursor,
            }
        )
        self.store.set_latest_activity_reading(self.config.latest_activity_reading)
        self.policy = RateLimitPolicy(
            ip_limit=ip_limit, account_limit=account_limit, window_seconds=window_seconds / time_scale
        )
        self.configured_window_seconds = window_seconds
        self._limiter = SlidingWindowLimiter(self.policy)
        self._call_log = CallLog(self.policy)
        self._faults = FaultInjector()
        self.tokens = TokenRegistry(time_scale, expires_in_seconds=token_expires_in_seconds)
        self._secret_overrides = dict(client_secrets or {})
        self._v1 = V1Api(self.store, self.tokens, self.config, self._secret_if_known)
        self._webhook_rng = random.Random(f"hostaway-simulator-webhooks:{seed}")
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        for account_id, size in (accounts or {}).items():
            self.store.add_account(account_id, size)

    # ---- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> SimulatorServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self.requested_port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"hostaway-simulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes requests sleeping in an injected timeout
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.close_open_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the simulator is not started; call start() first")
        return int(self._httpd.server_address[1])

    @property
    def root_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base a Hostaway client is configured with (``.../v1``)."""
        return f"{self.root_url}/v1"

    @property
    def admin_url(self) -> str:
        return f"{self.root_url}/__admin"

    # ---- secrets -------------------------------------------------------------------------------------
    def client_secret(self, account_id: int) -> str:
        """The API key ``/v1/accessTokens`` accepts for the account (deterministic from the seed)."""
        secret = self._secret_if_known(account_id)
        if secret is None:
            raise KeyError(f"unknown account {account_id}")
        return secret

    def _secret_if_known(self, account_id: int) -> str | None:
        if self.store.get(account_id) is None:
            return None
        return self._secret_overrides.get(account_id) or derive_client_secret(self.seed, account_id)

    # ---- request pipeline ----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        try:
            if request.path == "/__admin" or request.path.startswith("/__admin/"):
                return admin.handle(self, request)
            if request.path == "/v1" or request.path.startswith("/v1/"):
                return self._handle_v1(request)
            return json_response(fail_body(f"Not found: {request.path}"), status=404)
        except ApiError as error:
            return error_response(error)

    def _handle_v1(self, request: Request) -> Response:
        endpoint, route, path_ids = self._v1.resolve(request.method, request.path)
        account_id = self._v1.limiter_account(route, request)
        accepted, moment = self._limiter.admit(request.client_ip, account_id)
        record = CallRecord(
            time=moment,
            ip=request.client_ip,
            account_id=account_id,
            endpoint=endpoint,
            method=request.method,
            accepted=accepted,
        )
        self._call_log.record(record)
        if not accepted:
            record.status = 429
            return json_response(fail_body(RATE_LIMIT_MESSAGE), status=429)
        fault = self._faults.pick(endpoint, account_id)
        if fault is not None:
            record.fault, record.fault_id = fault.kind, fault.id
        response = self._answer_v1(request, route, path_ids, fault, record)
        record.connection_reset = response.reset_connection
        record.status = None if response.reset_connection else response.status
        return response

    def _answer_v1(
        self,
        request: Request,
        route: Any,
        path_ids: tuple[int, ...],
        fault: FaultRule | None,
        record: CallRecord,
    ) -> Response:
        call = Call(request=request, path_ids=path_ids)
        if fault is not None:
            if fault.kind == "status":
                return self._status_fault(fault)
            if fault.kind == "locked_403":
                return json_response(fail_body("Resource is locked"), status=403)
            if fault.kind == "reset":
                return Response(status=0, reset_connection=True)
            if fault.kind == "timeout":
                self._stopping.wait(fault.delay_seconds)
            if fault.kind == "page_drift":
                call.drift = fault
        if route is None:
            response = json_response(fail_body(f"Not found: {request.method} {request.path}"), status=404)
        else:
            try:
                response = self._v1.answer(route, call)
            except ApiError as error:
                response = error_response(error)
        if fault is not None and fault.kind == "malformed_json":
            whole = response.body_bytes()
            return Response(status=200, raw_body=whole[: max(1, len(whole) // 2)])
        if fault is not None and fault.kind == "empty_page":
            response = self._empty_page(response, call)
        if fault is not None and call.fault_result is not None:
            record.fault_result = call.fault_result
            self._faults.record_result(fault, call.fault_result)
        return response

    @staticmethod
    def _empty_page(response: Response, call: Call) -> Response:
        """The page as served with its rows dropped: true count (and page/totalPages), no result."""
        payload = response.payload
        if response.status != 200 or not isinstance(payload, dict) or not isinstance(payload.get("result"), list):
            return response
        call.fault_result = {
            "endpoint": call.endpoint,
            "hidden_ids": [row["id"] for row in payload["result"]],
            "count": payload.get("count"),
        }
        return Response(status=200, payload={**payload, "result": []}, headers=response.headers)

    @staticmethod
    def _status_fault(fault: FaultRule) -> Response:
        headers = {}
        if fault.retry_after is not None:
            seconds = fault.retry_after
            headers["Retry-After"] = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
        if fault.body is not None:
            if isinstance(fault.body, str):
                return Response(
                    status=fault.status_code,
                    raw_body=fault.body.encode(),
                    headers=headers,
                    content_type="text/plain; charset=utf-8",
                )
            return Response(status=fault.status_code, payload=fault.body, headers=headers)
        if fault.status_code == 429:
            return Response(status=429, payload=fail_body(RATE_LIMIT_MESSAGE), headers=headers)
        if fault.status_code in _PROXY_ERROR_PAGES:
            title = _PROXY_ERROR_PAGES[fault.status_code]
            page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
            return Response(
                status=fault.status_code, raw_body=page.encode(), headers=headers, content_type="text/html"
            )
        return Response(status=fault.status_code, payload=fail_body("Internal server error"), headers=headers)

    # ---- statistics ------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Call statistics since the last reset; the same dict as ``GET /__admin/stats``."""
        stats = self._call_log.stats()
        stats["configured_window_seconds"] = self.configured_window_seconds
        stats["time_scale"] = self.time_scale
        return _json_roundtrip(stats)

    def reset_stats(self) -> None:
        """Forget the call log (the rate limiter keeps its windows: limits do not reset with statistics)."""
        self._call_log.reset()

    def calls(self) -> list[dict[str, Any]]:
        return _json_roundtrip(self._call_log.calls())

    # ---- accounts, truth and mutations -------------------------------------------------------------------
    def _account(self, account_id: int) -> AccountState:
        state = self.store.get(account_id)
        if state is None:
            raise KeyError(f"unknown account {account_id}")
        return state

    def accounts(self) -> list[dict[str, Any]]:
        with self.store.lock:
            return _json_roundtrip([state.summary() for _, state in sorted(self.store.accounts.items())])

    def add_account(self, account_id: int, size: AccountSize = "seed") -> dict[str, Any]:
        state = self.store.add_account(account_id, size)
        with self.store.lock:
            return _json_roundtrip(state.summary())

    def truth(self, account_id: int) -> dict[str, Any]:
        """Ground truth exactly as the API would serve each object; same dict as the admin endpoint."""
        state = self._account(account_id)
        with self.store.lock:
            truth = state.truth()
        return _json_roundtrip(truth)

    def world_now(self) -> str:
        return format_timestamp(self.clock.now())

    def mutate(
        self,
        account_id: int,
        changes: Mapping[str, Any],
        *,
        webhook: Mapping[str, Any] | None = None,
        emit_webhooks_for_registered: bool = False,
    ) -> dict[str, Any]:
        """Apply changes (see ``mutations.MUTATION_KINDS``); optionally deliver the matching webhooks."""
        state = self._account(account_id)
        with self.store.lock:
            result = apply_mutations(state, changes)
            deliveries = [self._delivery_for(state, event.event, event.object_id) for event in result.events]
            registered = [dict(w) for _, w in sorted(state.webhooks.items()) if w.get("isEnabled")]
        outcome: dict[str, Any] = dict(result.touched)
        outcome["events"] = [{"event": e.event, "object_id": e.object_id} for e in result.events]
        outcome["webhook_deliveries"] = []
        if webhook is not None:
            outcome["webhook_deliveries"] += self._deliver(account_id, deliveries, webhook)
        if emit_webhooks_for_registered:
            for registration in registered:
                outcome["webhook_deliveries"] += self._deliver(
                    account_id,
                    deliveries,
                    {
                        "url": registration["url"],
                        "login": registration["login"],
                        "password": registration["password"],
                    },
                )
        return _json_roundtrip(outcome)

    # ---- tokens, config and faults ---------------------------------------------------------------------
    def revoke_all_tokens(self, account_id: int | None = None) -> int:
        return self.tokens.revoke_all(account_id)

    def expire_all_tokens(self, account_id: int | None = None) -> int:
        return self.tokens.expire_all(account_id)

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Switch behaviours at runtime; returns the whole config. Keys (defaults first):

        - ``token_response_shape``: ``"plain"`` | ``"wrapped"``;
        - ``invalid_token_status``: ``403`` | ``401``;
        - ``after_id_reading``: ``"keyset"`` | ``"id_order"`` | ``"ignored"`` (see ``queries``);
        - ``after_id_unknown``: ``"empty"`` | ``"first_page"`` | ``"error"``: an ``afterId`` of 0 or one
          matching no row of the filtered set;
        - ``count_with_cursor``: ``"total"`` | ``"remaining"``;
        - ``latest_activity_reading``: ``"every_change"`` | ``"not_on_edits"``: which reservation changes
          move ``latestActivityOn`` (see ``store``);
        - ``activity_filter_reading``: ``"date_time"`` | ``"date_only"`` | ``"date_part"``: how a
          reservations ``latestActivityStart``/``End`` is read (see ``queries``).
        """
        self.config.update(changes)
        self.store.set_latest_activity_reading(self.config.latest_activity_reading)
        return self.config.as_dict()

    def add_fault(self, spec: Mapping[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Add a fault rule (see ``faults``); returns it with its id."""
        return self._faults.add({**(spec or {}), **fields}).describe()

    def faults(self) -> list[dict[str, Any]]:
        return self._faults.describe()

    def clear_faults(self) -> None:
        self._faults.clear()

    # ---- webhooks ----------------------------------------------------------------------------------------
    def emit_webhooks(
        self,
        url: str,
        events: Sequence[Mapping[str, Any]],
        account_id: int,
        *,
        login: str | None = None,
        password: str | None = None,
        duplicate: bool = False,
        shuffle: bool = False,
        shape: str = "payload_data",
    ) -> list[dict[str, Any]]:
        """Deliver chosen events (full current objects) to ``url``; one outcome per HTTP attempt."""
        state = self._account(account_id)
        with self.store.lock:
            deliveries = [self._delivery_from_spec(state, spec) for spec in events]
        return self._deliver(
            account_id,
            deliveries,
            {
                "url": url,
                "login": login,
                "password": password,
                "duplicate": duplicate,
                "shuffle": shuffle,
                "shape": shape,
            },
        )

    def _deliver(
        self, account_id: int, deliveries: list[Delivery], target: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        url = target.get("url")
        if not isinstance(url, str) or not url.startswith("http"):
            raise ValueError(f"webhook url must be an http(s) URL, got {url!r}")
        return deliver(
            url,
            deliveries,
            account_id,
            login=target.get("login"),
            password=target.get("password"),
            shape=target.get("shape", "payload_data"),
            duplicate=bool(target.get("duplicate")),
            shuffle=bool(target.get("shuffle")),
            rng=self._webhook_rng,
        )

    @staticmethod
    def _delivery_for(state: AccountState, event: str, object_id: int) -> Delivery:
        if event.startswith("reservation."):
            reservation = state.reservations.get(object_id)
            if reservation is None:
                raise ValueError(f"account {state.account_id} has no reservation {object_id}")
            return Delivery(event, "reservation", reservation, object_id)
        if event.startswith("message."):
            message = state.messages.get(object_id)
            if message is None:
                raise ValueError(f"account {state.account_id} has no message {object_id}")
            return Delivery(event, "conversationMessage", message, object_id)
        raise ValueError(f"no object kind known for event {event!r}")

    def _delivery_from_spec(self, state: AccountState, spec: Mapping[str, Any]) -> Delivery:
        event = spec.get("event")
        if not isinstance(event, str) or not event:
            raise ValueError(f"each webhook event needs an 'event' name, got {dict(spec)!r}")
        if event == "test":
            return Delivery("test", "test", "test")
        if event.startswith("reservation."):
            return self._delivery_for(state, event, _required_int(spec, "reservation_id"))
        if event.startswith("message."):
            return self._delivery_for(state, event, _required_int(spec, "message_id"))
        # Events Hostaway may add later: deliver whatever object and data the caller gives.
        return Delivery(event, str(spec.get("object", "unknown")), spec.get("data"), spec.get("object_id"))


def _required_int(spec: Mapping[str, Any], name: str) -> int:
    value = spec.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"event {spec.get('event')!r} needs an integer {name!r}, got {value!r}")
    return value


def _json_roundtrip(value: Any) -> Any:
    """Exactly what the admin HTTP API would return (string keys, fresh objects callers may mutate)."""
    return json.loads(json.dumps(value))
