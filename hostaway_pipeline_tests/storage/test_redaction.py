"""Redaction defaults and matching: the secrets real Hostaway payloads carry never reach the warehouse."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from hostaway_pipeline.settings import ALWAYS_REDACTED_FIELDS, DEFAULT_EXTRA_REDACTED_FIELDS, load_settings
from hostaway_pipeline.simulator.data import generate_account
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.entity_writer import EntityWriter
from hostaway_pipeline.storage.redaction import Redactor

ACCOUNT = 5151
FIELD_SHAPES = Path(__file__).resolve().parents[1] / "simulator" / "field_shapes.json"

# Credentials and access links named in field_shapes.json (observed in real responses).
REAL_SECRETS = {
    "listing": {"wifiPassword", "doorSecurityCode"},
    "reservation": {"doorCode", "doorCodeInstruction", "guestAuthHash", "guestPortalUrl", "guestPortalRevampUrl"},
}


def _field_names(shape: dict) -> set[str]:
    names = set(shape)
    for spec in shape.values():
        if isinstance(spec, dict) and isinstance(spec.get("fields"), dict):
            names |= _field_names(spec["fields"])
    return names


def test_every_default_redacted_name_is_a_real_field_name():
    shapes = json.loads(FIELD_SHAPES.read_text())
    real = set().union(*(_field_names(shapes[entity]) for entity in
                         ("listing", "reservation", "conversation", "conversation_message")))
    assert set(DEFAULT_EXTRA_REDACTED_FIELDS) <= real, set(DEFAULT_EXTRA_REDACTED_FIELDS) - real
    for entity, secrets in REAL_SECRETS.items():
        assert secrets <= _field_names(shapes[entity]), entity


def test_the_default_settings_redact_the_secrets_seen_in_real_payloads():
    redacted = load_settings({}).redacted_fields
    for secrets in REAL_SECRETS.values():
        assert secrets <= redacted
    assert redacted >= ALWAYS_REDACTED_FIELDS


def test_stand_in_objects_written_with_the_default_settings_keep_no_secret(engine):
    _, generated = generate_account(ACCOUNT, seed=3, size=20, world_now=datetime(2026, 11, 1))
    listing_secrets = {s for listing in generated.listings for s in (listing["wifiPassword"],) if s}
    portal_urls = {r["guestPortalUrl"] for r in generated.reservations if r.get("guestPortalUrl")}
    assert listing_secrets and portal_urls  # the stand-in does fill them, so the check below means something

    writer = EntityWriter(engine, Redactor(load_settings({}).redacted_fields))
    writer.write("listings", ACCOUNT, generated.listings)
    writer.write("reservations", ACCOUNT, generated.reservations)
    writer.write("conversations", ACCOUNT, generated.conversations)  # embeds a Reservation object

    with engine.connect() as connection:
        stored = {
            name: connection.execute(
                sa.select(tables.ENTITY_TABLES[name].table.c.raw)
                .where(tables.ENTITY_TABLES[name].table.c.account_id == ACCOUNT)
            ).scalars().all()
            for name in ("listings", "reservations", "conversations")
        }
    assert len(stored["listings"]) == len(generated.listings)
    every_secret = REAL_SECRETS["listing"] | REAL_SECRETS["reservation"]
    for raw in stored["listings"] + stored["reservations"]:
        assert not set(raw) & every_secret
    for raw in stored["conversations"]:
        assert not set(raw.get("Reservation") or {}) & every_secret
    text = json.dumps(stored)
    for value in listing_secrets | portal_urls:
        assert value not in text


def test_names_match_case_insensitively_in_payloads_and_in_the_configuration():
    redact = Redactor({"doorCode"})
    assert redact({"DoorCode": "1", "doorcode": "2", "DOORCODE": "3", "nested": [{"doorCODE": "4"}], "ok": 5}) == {
        "nested": [{}], "ok": 5,
    }
    configured = load_settings({"HOSTAWAY_REDACT_FIELDS": "WIFIPASSWORD, guestauthhash"}).redacted_fields
    assert Redactor(configured)({"wifiPassword": "x", "guestAuthHash": "y", "ccNumber": "4111", "name": "n"}) == {
        "name": "n",
    }
