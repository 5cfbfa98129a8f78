"""Dagster resources: the warehouse, the shared rate limiter and the Hostaway API, configured from the environment.

Thin wrappers over plain classes (``storage``, ``hostaway``). Every field left unset falls back to the
``HOSTAWAY_*`` environment variable of the same meaning (see ``settings.py``), so the same Definitions
run on the embedded default and in production; set them in code or the launchpad to override.

Except where data and secrets go: the warehouse's database URL and the API's base URL are resource
dependencies, not config, so they are absent from the launchpad and a run config naming them fails
validation. A run can never send a client secret to another host, nor read or write another database;
only the deployment's environment (or code building the resources) chooses them.

Nor where calls leave from: the process's egress pool (``HOSTAWAY_EGRESS_ID``, default ``default``) and
source address are dependencies too. The API resource calls only for accounts of the process's own pool
(``hostaway.accounts.egress_pool``) and refuses any other with one line, so a run that lands on another
pool's worker (misrouted, or queued before its account moved) never sends from that worker's IP nor books
that IP's budget. ``default`` is a pool like any other: a process without ``HOSTAWAY_EGRESS_ID`` serves the
accounts added without ``--egress``, and only those; a deployment with one IP never names a pool.
"""

# No ``from __future__ import annotations`` here: Dagster must see ``ResourceDependency[...]`` as a type, not a
# string, to accept a plain URL for it (with string annotations pydantic demands a ResourceDependency instance).
from functools import cached_property

import dagster as dg
from sqlalchemy.engine import Engine

from hostaway_pipeline.hostaway.access_tokens import AccessTokenStore
from hostaway_pipeline.hostaway.client import HostawayClient
from hostaway_pipeline.hostaway.rate_limiter import RateLimiter
from hostaway_pipeline.hostaway.retry_policy import RetryPolicy
from hostaway_pipeline.hostaway.transport import HostawayTransport
from hostaway_pipeline.settings import RateLimit, Settings, load_settings
from hostaway_pipeline.storage.account_registry import AccountRegistry
from hostaway_pipeline.storage.engine import get_engine, resolve_database_url
from hostaway_pipeline.storage.entity_writer import EntityWriter
from hostaway_pipeline.storage.redaction import Redactor
from hostaway_pipeline.storage.secret_box import SecretBox, secret_box_from_settings


class EgressPoolMismatch(dg.Failure):
    """An account of one egress pool asked for in a process of another: nothing was sent, nothing booked.

    A ``dg.Failure``, so the step fails with this one line (and no op retry: it would fail the same way); a
    run retry is submitted afresh and carries the account's current pool.
    """

    def __init__(self, account_id: int, account_pool: str, process_pool: str) -> None:
        self.account_id, self.account_pool, self.process_pool = account_id, account_pool, process_pool
        super().__init__(
            f"account {account_id} is in egress pool {account_pool!r} but this process sends as pool "
            f"{process_pool!r} (HOSTAWAY_EGRESS_ID): its runs must execute on a {account_pool!r} worker "
            f"(run tag hostaway/egress={account_pool}); nothing was sent",
            allow_retries=False,
        )


class WarehouseResource(dg.ConfigurableResource):
    """The Postgres warehouse (schema ``hostaway``): engine, bulk writer, account registry."""

    # Default: HOSTAWAY_DATABASE_URL, else the embedded Postgres. Not config (see the module docstring). mypy
    # checks the default against the descriptor's own type; Dagster takes a plain value here.
    database_url: dg.ResourceDependency[str | None] = None  # type: ignore[assignment]

    @cached_property
    def settings(self) -> Settings:
        return load_settings()

    @cached_property
    def engine(self) -> Engine:
        return get_engine(self.database_url or resolve_database_url(self.settings))

    @cached_property
    def secret_box(self) -> SecretBox:
        return secret_box_from_settings(self.settings)

    @cached_property
    def writer(self) -> EntityWriter:
        return EntityWriter(self.engine, Redactor(self.settings.redacted_fields))

    @cached_property
    def accounts(self) -> AccountRegistry:
        return AccountRegistry(self.engine, self.secret_box)


class HostawayRateLimiterResource(dg.ConfigurableResource):
    """The one budget every Hostaway call acquires from, shared through Postgres by all runs and machines."""

    warehouse: WarehouseResource
    per_ip: str | None = None  # default HOSTAWAY_RATE_LIMIT_PER_IP or 15/10s
    per_account: str | None = None  # default HOSTAWAY_RATE_LIMIT_PER_ACCOUNT or 20/10s
    margin: float | None = None  # default HOSTAWAY_RATE_LIMIT_MARGIN or 0.03
    guard_seconds: float | None = None  # default HOSTAWAY_RATE_LIMIT_GUARD or 0.1: absolute jitter guard per window
    max_pause_seconds: float | None = None  # default HOSTAWAY_RATE_LIMIT_MAX_PAUSE or 120: cap of any 429 pause
    # Default HOSTAWAY_EGRESS_ID, else "default": this process's egress pool, whose IP bucket it books. Not
    # config: a run config naming another pool would book that pool's budget while sending from this IP.
    egress_id: dg.ResourceDependency[str | None] = None  # type: ignore[assignment]

    @property
    def egress_pool(self) -> str:
        return self.egress_id or self.warehouse.settings.egress_id

    @cached_property
    def limiter(self) -> RateLimiter:
        settings = self.warehouse.settings
        return RateLimiter(
            self.warehouse.engine,
            RateLimit.parse(self.per_ip, "per_ip") if self.per_ip else settings.rate_limit_per_ip,
            RateLimit.parse(self.per_account, "per_account") if self.per_account else settings.rate_limit_per_account,
            settings.rate_limit_margin if self.margin is None else self.margin,
            self.egress_pool,
            guard_seconds=settings.rate_limit_guard_seconds if self.guard_seconds is None else self.guard_seconds,
            max_pause_seconds=(settings.rate_limit_max_pause_seconds if self.max_pause_seconds is None
                               else self.max_pause_seconds),
        )


class HostawayApiResource(dg.ConfigurableResource):
    """Hostaway API clients, one per account, all paced by the shared limiter."""

    warehouse: WarehouseResource
    rate_limiter: HostawayRateLimiterResource
    # Default HOSTAWAY_API_BASE_URL or https://api.hostaway.com/v1. Not config: client secrets go there.
    base_url: dg.ResourceDependency[str | None] = None  # type: ignore[assignment]
    message_workers: int = 4
    token_activation_delay_seconds: float = 1.0
    request_timeout_seconds: float = 30.0
    max_attempts: int = 6
    max_retry_seconds: float = 300.0
    # Default HOSTAWAY_SOURCE_ADDRESS: the local IP calls leave from (unset: the OS chooses). Not config either.
    source_address: dg.ResourceDependency[str | None] = None  # type: ignore[assignment]

    @cached_property
    def transport(self) -> HostawayTransport:
        return HostawayTransport(
            self.base_url or self.warehouse.settings.api_base_url,
            self.rate_limiter.limiter,
            RetryPolicy(max_attempts=self.max_attempts, max_total_seconds=self.max_retry_seconds),
            timeout_seconds=(min(10.0, self.request_timeout_seconds), self.request_timeout_seconds),
            source_address=self.source_address or self.warehouse.settings.source_address,
        )

    @cached_property
    def token_store(self) -> AccessTokenStore:
        return AccessTokenStore(self.warehouse.engine, self.warehouse.secret_box, self.token_activation_delay_seconds)

    def client_for(self, account_id: int) -> HostawayClient:
        """A fresh client (own call counters) for one account of this process's egress pool; its secret is read
        from the registry on demand. An account of another pool is refused (:class:`EgressPoolMismatch`)."""
        registry = self.warehouse.accounts
        account_pool = registry.get(account_id).egress_pool
        process_pool = self.rate_limiter.egress_pool
        if account_pool != process_pool:
            raise EgressPoolMismatch(account_id, account_pool, process_pool)
        return HostawayClient(account_id, self.transport, self.token_store,
                              lambda: registry.client_secret(account_id), self.message_workers)
