"""The account registry against real Postgres: a key that cannot read what is stored adds nothing."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from hostaway_pipeline.storage.account_registry import AccountRegistry
from hostaway_pipeline.storage.secret_box import SecretBox, WrongKeyError


def test_adding_an_account_with_a_key_that_cannot_read_the_stored_secrets_is_refused(engine):
    old, other = Fernet.generate_key(), Fernet.generate_key()
    AccountRegistry(engine, SecretBox(old)).add(101, "first")

    with pytest.raises(WrongKeyError, match="cannot decrypt the client secrets already stored for accounts 101"):
        AccountRegistry(engine, SecretBox(other)).add(102, "second")
    assert [account.account_id for account in AccountRegistry(engine, SecretBox(old)).all()] == [101]

    AccountRegistry(engine, SecretBox([other, old])).add(102, "second")  # a key list that reads them is fine
    assert AccountRegistry(engine, SecretBox(other)).client_secret(102) == "second"


def test_a_purge_also_removes_the_sync_state_and_the_analytics_built_from_the_account(engine):
    import datetime as dt

    import sqlalchemy as sa

    from hostaway_pipeline.analytics.tables import reservation_nights
    from hostaway_pipeline.storage import tables
    from hostaway_pipeline.sync import sync_state

    registry = AccountRegistry(engine, SecretBox(Fernet.generate_key()))
    purged_id, kept_id = 730001, 730002
    for account_id in (purged_id, kept_id):
        registry.add(account_id, "secret")
        with engine.begin() as connection:
            sync_state.record_read(connection, account_id, "reservations", kind="full",
                                   read_began=dt.datetime.now(dt.UTC), objects_read=1, api_count=1, watermark=None)
            connection.execute(sa.delete(reservation_nights).where(reservation_nights.c.account_id == account_id))
            connection.execute(sa.insert(reservation_nights).values(
                account_id=account_id, reservation_id=1, night_date=dt.date(2026, 5, 1), month=dt.date(2026, 5, 1),
                stay_type="guest", status="new", channel_name="direct"))

    purged = registry.remove(purged_id, purge=True)

    assert purged["reservation_nights"] == 1
    with engine.begin() as connection:
        for table in (tables.sync_state, reservation_nights):
            left = connection.execute(sa.select(table.c.account_id).distinct()
                                      .where(table.c.account_id.in_([purged_id, kept_id]))).scalars().all()
            assert left == [kept_id], table.name
        connection.execute(sa.delete(reservation_nights).where(reservation_nights.c.account_id == kept_id))
