"""Settings and the prepared environment never show secrets when printed or logged."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet

from hostaway_pipeline.environment import PreparedEnvironment
from hostaway_pipeline.settings import load_settings

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
