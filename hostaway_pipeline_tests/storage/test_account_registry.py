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
