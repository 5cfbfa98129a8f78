"""The webhook receiver: an ASGI app (Starlette) that commits each Hostaway delivery before answering 2xx.

``POST /webhooks/hostaway`` checks HTTP Basic credentials in constant time (401, nothing stored), refuses
bodies over 1 MiB (413), then hands the body to the group committer (``group_commit``), whose one
writer thread parses it and commits it together with the deliveries of concurrent requests (the event
loop never waits on Postgres), and answers 200 once the transaction holding it has committed.
Deliveries it cannot apply (unknown events, unregistered accounts, unreadable bodies) are stored with a
status saying why and still answered 200: any 4xx makes Hostaway drop an event for good. When the
database cannot be reached the answer is 503, which Hostaway retries.
``GET /healthz`` is 200 only while the database answers.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hostaway_pipeline.storage.engine import get_engine
from hostaway_pipeline.storage.redaction import Redactor
from hostaway_pipeline.webhooks.event_store import WebhookEventStore, one_line
from hostaway_pipeline.webhooks.group_commit import GroupCommitter

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/hostaway"
MAX_BODY_BYTES = 1024 * 1024
# A too-large body is still read (and dropped) up to this size, so the sender gets the 413 rather than a
# connection reset; beyond it the connection is closed.
DRAIN_LIMIT_BYTES = 16 * MAX_BODY_BYTES
# Hostaway waits 20 s for an answer: a database that does not answer in time is a 503, not a hang.
DATABASE_CONNECT_TIMEOUT_SECONDS = 5
REALM = 'Basic realm="hostaway-webhooks", charset="UTF-8"'
# Processes accepting deliveries: parsing and answering are Python, one core per process at most.
WORKER_PROCESSES = 2


@dataclass(frozen=True)
class BasicCredentials:
    """The login and password Hostaway sends; compared in constant time, never shown."""

    login: str = field(repr=False)
    password: str = field(repr=False)

    def accept(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries exactly these credentials."""
        scheme, _, encoded = (authorization or "").partition(" ")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        login, _, password = decoded.partition(b":")
        # Both comparisons always run, so the time taken says nothing about which one failed.
        login_ok = hmac.compare_digest(login, self.login.encode("utf-8"))
        password_ok = hmac.compare_digest(password, self.password.encode("utf-8"))
        return scheme.lower() == "basic" and login_ok & password_ok


def receiver_engine_factory(database_url: str) -> Callable[[], Engine]:
    """The warehouse engine, migrated on first successful use; connecting gives up after a few seconds."""
    url = make_url(database_url)
    if "connect_timeout" not in url.query:
        url = url.update_query_dict({"connect_timeout": str(DATABASE_CONNECT_TIMEOUT_SECONDS)})
    rendered = url.render_as_string(hide_password=False)
    return lambda: get_engine(rendered)


def create_app(store: WebhookEventStore, credentials: BasicCredentials, *,
               max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    committer = GroupCommitter(store)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        # Requests in flight were answered before shutdown gets here; stop the writer thread cleanly.
        await run_in_threadpool(committer.close)

    async def receive_webhook(request: Request) -> JSONResponse:
        if not credentials.accept(request.headers.get("authorization")):
            # (uvicorn's access log is off: at a thousand deliveries a second it would be most of the log)
            logger.warning("webhook delivery refused (401): wrong or missing credentials, from %s",
                           request.client.host if request.client else "an unknown address")
            return JSONResponse({"status": "fail", "message": "unauthorized"}, status_code=401,
                                headers={"WWW-Authenticate": REALM})
        body = await _read_body(request, max_body_bytes)
        if body is None:
            return JSONResponse({"status": "fail", "message": f"body larger than {max_body_bytes} bytes"},
                                status_code=413, headers={"Connection": "close"})
        try:
            stored = await committer.commit(body)
        except sa.exc.SQLAlchemyError as error:
            logger.warning("webhook delivery not stored, answered 503 for a retry: %s", one_line(error))
            return JSONResponse({"status": "fail", "message": "the event could not be stored; retry later"},
                                status_code=503, headers={"Retry-After": "60"})
        logger.debug("webhook event %s %s (status %s)", stored.event_id,
                     "already stored" if stored.duplicate else "stored", stored.status)
        return JSONResponse({"status": "success", "eventId": stored.event_id, "eventStatus": stored.status,
                             "duplicate": stored.duplicate})

    async def health(request: Request) -> JSONResponse:
        try:
            await run_in_threadpool(store.check)
        except sa.exc.SQLAlchemyError as error:  # the detail (hosts, ports) is for the log, not for callers
            logger.warning("health check: the database does not answer: %s", one_line(error))
            return JSONResponse({"status": "fail", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[
        Route(WEBHOOK_PATH, receive_webhook, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
    ], lifespan=lifespan)


async def _read_body(request: Request, max_body_bytes: int) -> bytes | None:
    """The body, or None when it is larger than ``max_body_bytes`` (read and dropped up to the drain limit)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DRAIN_LIMIT_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > DRAIN_LIMIT_BYTES:
            return None
        if size <= max_body_bytes:
            chunks.append(chunk)
    return b"".join(chunks) if size <= max_body_bytes else None


def receiver_app(database_url: str, credentials: BasicCredentials, redactor: Redactor) -> Starlette:
    return create_app(WebhookEventStore(receiver_engine_factory(database_url), redactor), credentials)


def serve(app: Starlette, host: str, port: int, *, sock: socket.socket | None = None,
          workers: int = WORKER_PROCESSES) -> None:
    """Serve until interrupted (uvicorn; SIGINT and SIGTERM finish requests in flight, then stop).

    With ``workers`` > 1 (where ``fork`` exists), that many processes accept on one socket (``workers``).
    """
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="info", server_header=False, access_log=False)
    if workers <= 1 or not hasattr(os, "fork"):
        uvicorn.Server(config).run(sockets=[sock] if sock is not None else None)
        return
    from hostaway_pipeline.webhooks.workers import serve_in_workers

    serve_in_workers(lambda listener: uvicorn.Server(config).run(sockets=[listener]),
                     sock if sock is not None else config.bind_socket(), workers)
