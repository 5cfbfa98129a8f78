"""Settings and the prepared environment never show secrets when printed or logged; the limiter's settings
have documented defaults and refuse nonsense."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from hostaway_pipeline.environment import PreparedEnvironment
from hostaway_pipeline.settings import (
    RATE_LIMIT_GUARD_SECONDS_DEFAULT,
    RATE_LIMIT_MAX_PAUSE_SECONDS_DEFAULT,
    ConfigurationError,
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
