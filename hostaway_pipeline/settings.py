"""Every environment variable the pipeline reads, parsed and validated in one place.

Nothing else in the package calls ``os.environ`` for configuration: modules take a ``Settings`` (or
its parts) so tests and Dagster resources can pass explicit values.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

HOSTAWAY_API_BASE_URL_DEFAULT = "https://api.hostaway.com/v1"

# The shared rate limiter's protections (see hostaway/rate_limiter.py):
# - the guard is an absolute time added to every bucket's window before it is divided into even slots, so a
#   call that reaches the server up to (margin x window + guard) late never shares a window with the call
#   a full window of slots after it; unlike the margin it does not shrink with the window;
# - the maximum pause caps every pause a 429 sets (Retry-After seconds or HTTP date, and the default of
#   one window), whatever the server sent;
# - the ceiling is the furthest ahead the limiter ever schedules anything: the maximum pause may not exceed
#   it, and a pause or a booking stored further ahead is a leftover of a bug and is ignored.
RATE_LIMIT_GUARD_SECONDS_DEFAULT = 0.1
RATE_LIMIT_GUARD_SECONDS_MAX = 5.0
RATE_LIMIT_MAX_PAUSE_SECONDS_DEFAULT = 120.0
RATE_LIMIT_SCHEDULE_CEILING_SECONDS = 600.0

# Card data is never stored, whatever the configuration says.
ALWAYS_REDACTED_FIELDS: frozenset[str] = frozenset(
    {"ccNumber", "cvc", "ccName", "ccExpirationYear", "ccExpirationMonth"}
)
# Credentials and access links seen in real payloads (field_shapes.json): door and Wi-Fi codes, and the
# guest-portal hash and URLs that open a reservation's portal without any other login. Configurable
# (HOSTAWAY_REDACT_FIELDS replaces this list); names match case-insensitively.
DEFAULT_EXTRA_REDACTED_FIELDS: tuple[str, ...] = (
    "doorCode",
    "doorCodeInstruction",
    "doorSecurityCode",
    "wifiPassword",
    "guestAuthHash",
    "guestPortalUrl",
    "guestPortalRevampUrl",
)


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message names the variable and what to do."""


@dataclass(frozen=True)
class RateLimit:
    """``calls`` requests per ``period_seconds`` (parsed from strings such as ``15/10s``)."""

    calls: int
    period_seconds: float

    @classmethod
    def parse(cls, text: str, variable: str) -> RateLimit:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", text)
        if not match or int(match.group(1)) <= 0 or float(match.group(2)) <= 0:
            raise ConfigurationError(f"{variable}={text!r} is not a rate such as '15/10s' (calls/period)")
        unit = {"ms": 0.001, "s": 1.0, "m": 60.0}[match.group(3) or "s"]
        return cls(calls=int(match.group(1)), period_seconds=float(match.group(2)) * unit)

    def __str__(self) -> str:
        return f"{self.calls}/{self.period_seconds:g}s"


def _env(name: str, environ: dict[str, str]) -> str | None:
    value = environ.get(name)
    return value if value not in (None, "") else None


def _positive_int(environ: dict[str, str], name: str, default: int) -> int:
    text = _env(name, environ)
    if text is None:
        return default
    if not text.strip().isdigit() or int(text) <= 0:
        raise ConfigurationError(f"{name}={text!r} must be a positive integer")
    return int(text)


def _seconds(environ: dict[str, str], name: str, default: float, minimum: float, maximum: float,
             what: str) -> float:
    """A number of seconds in ``[minimum, maximum]``; NaN, infinity and anything unreadable are refused."""
    text = _env(name, environ)
    if text is None:
        return default
    try:
        value = float(text.strip().removesuffix("s"))
    except ValueError:
        value = float("nan")
    if not minimum <= value <= maximum:  # False for NaN too
        raise ConfigurationError(f"{name}={text!r} must be {what}: seconds between {minimum:g} and {maximum:g}")
    return value


@dataclass(frozen=True)
class Settings:
    """The pipeline's configuration, read from the environment by :func:`load_settings`."""

    home: Path
    # URLs may carry a password and the key decrypts every stored secret: kept out of repr (and so out
    # of logs, tracebacks and Dagster's resource displays).
    database_url: str | None = field(repr=False)
    dagster_database_url: str | None = field(repr=False)
    secret_key: str | None = field(repr=False)
    api_base_url: str
    rate_limit_per_ip: RateLimit
    rate_limit_per_account: RateLimit
    rate_limit_margin: float
    rate_limit_guard_seconds: float
    rate_limit_max_pause_seconds: float
    egress_id: str
    extra_redacted_fields: tuple[str, ...]
    reconcile_cron: str
    api_pool_limit: int
    webhook_login: str | None = field(default=None, repr=False)
    webhook_password: str | None = field(default=None, repr=False)

    @property
    def uses_embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def redacted_fields(self) -> frozenset[str]:
        return ALWAYS_REDACTED_FIELDS | frozenset(self.extra_redacted_fields)

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read and validate every ``HOSTAWAY_*`` variable (see the README's table)."""
    env = dict(os.environ if environ is None else environ)
    margin_text = _env("HOSTAWAY_RATE_LIMIT_MARGIN", env) or "0.03"
    try:
        margin = float(margin_text)
    except ValueError:
        margin = -1.0
    if not 0.0 <= margin < 1.0:
        raise ConfigurationError(
            f"HOSTAWAY_RATE_LIMIT_MARGIN={margin_text!r} must be a fraction in [0, 1), e.g. 0.03"
        )
    redact_text = env.get("HOSTAWAY_REDACT_FIELDS")
    extra_redacted = (
        DEFAULT_EXTRA_REDACTED_FIELDS
        if redact_text is None
        else tuple(name.strip() for name in redact_text.split(",") if name.strip())
    )
    return Settings(
        home=Path(_env("HOSTAWAY_PIPELINE_HOME", env) or ".hostaway_pipeline").resolve(),
        database_url=_env("HOSTAWAY_DATABASE_URL", env),
        dagster_database_url=_env("HOSTAWAY_DAGSTER_DATABASE_URL", env),
        secret_key=_env("HOSTAWAY_SECRET_KEY", env),
        api_base_url=(_env("HOSTAWAY_API_BASE_URL", env) or HOSTAWAY_API_BASE_URL_DEFAULT).rstrip("/"),
        rate_limit_per_ip=RateLimit.parse(
            _env("HOSTAWAY_RATE_LIMIT_PER_IP", env) or "15/10s", "HOSTAWAY_RATE_LIMIT_PER_IP"
        ),
        rate_limit_per_account=RateLimit.parse(
            _env("HOSTAWAY_RATE_LIMIT_PER_ACCOUNT", env) or "20/10s", "HOSTAWAY_RATE_LIMIT_PER_ACCOUNT"
        ),
        rate_limit_margin=margin,
        rate_limit_guard_seconds=_seconds(
            env, "HOSTAWAY_RATE_LIMIT_GUARD", RATE_LIMIT_GUARD_SECONDS_DEFAULT, 0.0, RATE_LIMIT_GUARD_SECONDS_MAX,
            "the absolute guard time added to each rate-limit window against network jitter",
        ),
        rate_limit_max_pause_seconds=_seconds(
            env, "HOSTAWAY_RATE_LIMIT_MAX_PAUSE", RATE_LIMIT_MAX_PAUSE_SECONDS_DEFAULT, 1.0,
            RATE_LIMIT_SCHEDULE_CEILING_SECONDS, "the longest pause a 429 may set (Retry-After is capped at it)",
        ),
        egress_id=_env("HOSTAWAY_EGRESS_ID", env) or "default",
        extra_redacted_fields=extra_redacted,
        reconcile_cron=_env("HOSTAWAY_RECONCILE_CRON", env) or "0 2 * * *",
        api_pool_limit=_positive_int(env, "HOSTAWAY_API_POOL_LIMIT", 4),
        webhook_login=_env("HOSTAWAY_WEBHOOK_LOGIN", env),
        webhook_password=_env("HOSTAWAY_WEBHOOK_PASSWORD", env),
    )
