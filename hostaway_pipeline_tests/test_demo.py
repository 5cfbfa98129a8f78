"""The demo shares the warehouse with real accounts: it resets only accounts it created, never anyone else's."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from hostaway_pipeline.demo import FIRST_DEMO_ACCOUNT, Claim, claim_demo_account, claim_demo_accounts
from hostaway_pipeline.simulator.tokens import derive_client_secret
from hostaway_pipeline.storage.account_registry import AccountRegistry
from hostaway_pipeline.storage.secret_box import SecretBox
from hostaway_pipeline.storage.tables import listings

REAL_SECRET = "a-real-customer's-client-secret"


def _listing_ids(engine, account_id: int) -> list[int]:
    with engine.connect() as connection:
        return list(connection.execute(
            sa.select(listings.table.c.id).where(listings.table.c.account_id == account_id)
        ).scalars())


def _add_listing(engine, account_id: int, listing_id: int) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(listings.table).values(account_id=account_id, id=listing_id, raw={}))


@pytest.fixture
def registry(engine, secret_key) -> AccountRegistry:
    return AccountRegistry(engine, SecretBox(secret_key))


def test_an_account_on_a_demo_id_that_the_demo_did_not_create_is_never_touched(registry, engine):
    someone_elses, earlier_demos = FIRST_DEMO_ACCOUNT, FIRST_DEMO_ACCOUNT + 1
    registry.add(someone_elses, REAL_SECRET, name="Real Customer")
    _add_listing(engine, someone_elses, 1)
    registry.add(earlier_demos, derive_client_secret(2026, earlier_demos), name="Demo account")
    _add_listing(engine, earlier_demos, 2)

    assert claim_demo_accounts(registry, 2) == [earlier_demos, FIRST_DEMO_ACCOUNT + 2]

    assert registry.client_secret(someone_elses) == REAL_SECRET  # neither overwritten...
    assert registry.get(someone_elses).name == "Real Customer"
    assert _listing_ids(engine, someone_elses) == [1]  # ...nor purged
    assert _listing_ids(engine, earlier_demos) == []  # the demo's own account starts afresh
    for account_id in (earlier_demos, FIRST_DEMO_ACCOUNT + 2):
        assert registry.client_secret(account_id) == derive_client_secret(2026, account_id)


def test_an_account_whose_secret_this_key_cannot_read_is_not_the_demos(registry, engine):
    other_key = AccountRegistry(engine, SecretBox(Fernet.generate_key()))
    other_key.add(FIRST_DEMO_ACCOUNT, derive_client_secret(2026, FIRST_DEMO_ACCOUNT))
    _add_listing(engine, FIRST_DEMO_ACCOUNT, 3)

    assert claim_demo_account(registry, FIRST_DEMO_ACCOUNT) is Claim.FOREIGN
    assert other_key.client_secret(FIRST_DEMO_ACCOUNT) == derive_client_secret(2026, FIRST_DEMO_ACCOUNT)
    assert _listing_ids(engine, FIRST_DEMO_ACCOUNT) == [3]
