"""The (account, resource) sync lock: one writer at a time, whoever starts it, and no lock left behind."""

from __future__ import annotations

import threading
import time

import pytest

from hostaway_pipeline.storage.sync_locks import SyncLockTimeout, sync_lock


def test_a_second_sync_of_the_same_account_and_resource_waits_for_the_first(engine):
    order: list[str] = []
    waiting = threading.Event()
    first_holds = threading.Event()
    release = threading.Event()

    def first() -> None:
        with sync_lock(engine, 7, "reservations"):
            order.append("first in")
            first_holds.set()
            release.wait(30)
            order.append("first out")

    def second() -> None:
        with sync_lock(engine, 7, "reservations", on_wait=lambda message: waiting.set(),
                       sleep=lambda s: time.sleep(0.05)):
            order.append("second in")

    one = threading.Thread(target=first)
    one.start()
    assert first_holds.wait(30)
    two = threading.Thread(target=second)
    two.start()
    assert waiting.wait(30)  # it saw the lock taken and said so
    release.set()
    one.join(30)
    two.join(30)
    assert order == ["first in", "first out", "second in"]


def test_other_accounts_and_resources_do_not_wait(engine):
    with sync_lock(engine, 7, "reservations"), sync_lock(engine, 8, "reservations", wait_seconds=0), \
            sync_lock(engine, 7, "listings", wait_seconds=0):
        pass


def test_a_sync_that_cannot_get_the_lock_in_time_fails_with_a_clear_error(engine):
    with sync_lock(engine, 7, "messages"), pytest.raises(SyncLockTimeout, match="account 7 messages: another sync"), \
            sync_lock(engine, 7, "messages", wait_seconds=0.2, sleep=lambda s: time.sleep(0.05)):
        pass


def test_the_lock_is_released_after_a_failure(engine):
    with pytest.raises(RuntimeError), sync_lock(engine, 9, "listings"):
        raise RuntimeError("the sync failed")
    with sync_lock(engine, 9, "listings", wait_seconds=0):
        pass
