"""The Hostaway client against the local stand-in over real sockets: auth, retries, paging, errors, pacing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hostaway_pipeline.hostaway.errors import (
    HostawayAuthError,
    HostawayClientError,
    HostawayResponseError,
    HostawayUnavailableError,
)
from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.pipeline_harness import TIME_SCALE, build_harness

ACCOUNT = 41001
EMPTY = 41002


@pytest.fixture
def simulator():
    with SimulatorServer(accounts={ACCOUNT: 250, EMPTY: "empty"}, seed=5, time_scale=TIME_SCALE) as sim:
        yield sim


@pytest.fixture
def harness(engine, database_url, simulator, pipeline_settings_env):
    harness = build_harness(database_url, simulator, request_timeout_seconds=0.5, max_attempts=4)
    harness.warehouse.accounts.add(ACCOUNT, simulator.client_secret(ACCOUNT))
    harness.warehouse.accounts.add(EMPTY, simulator.client_secret(EMPTY))
    return harness


def calls_to(simulator: SimulatorServer, endpoint: str) -> list[dict]:
    return [call for call in simulator.calls() if call["endpoint"] == endpoint]


def truth_ids(simulator: SimulatorServer, entity: str, account_id: int = ACCOUNT) -> list[int]:
    return sorted(int(o["id"]) for o in simulator.truth(account_id)[entity])


@pytest.mark.parametrize("shape", ["plain", "wrapped"])
def test_both_token_response_shapes_are_accepted(harness, simulator, shape):
    simulator.configure(token_response_shape=shape)
    client = harness.api.client_for(ACCOUNT)
    assert len(client.listings().objects) == len(simulator.truth(ACCOUNT)["listings"])
    assert client.stats.token_refreshes == 0


def test_a_new_token_is_used_only_after_its_activation_delay(harness, simulator):
    client = harness.api.client_for(ACCOUNT)
    client.listings()
    token_call, listings_call = calls_to(simulator, "accessTokens")[0], calls_to(simulator, "listings")[0]
    assert listings_call["time"] - token_call["time"] >= 1.0 / TIME_SCALE
    assert listings_call["status"] == 200


def test_the_token_is_cached_and_shared_by_clients(harness, simulator):
    harness.api.client_for(ACCOUNT).listings()
    harness.api.client_for(ACCOUNT).listings()
    assert len(calls_to(simulator, "accessTokens")) == 1


def test_a_revoked_token_answering_auth_403_is_refreshed_once(harness, simulator):
    client = harness.api.client_for(ACCOUNT)
    client.listings()
    simulator.revoke_all_tokens()
    assert len(client.listings().objects) > 0
    assert client.stats.token_refreshes == 1
    assert len(calls_to(simulator, "accessTokens")) == 2


def test_a_401_is_refreshed_too(harness, simulator):
    simulator.configure(invalid_token_status=401)
    client = harness.api.client_for(ACCOUNT)
    client.listings()
    simulator.expire_all_tokens()
    client.listings()
    assert client.stats.token_refreshes == 1


def test_a_locked_resource_403_is_not_an_auth_failure_and_is_not_retried(harness, simulator):
    client = harness.api.client_for(ACCOUNT)
    simulator.add_fault(kind="locked_403", endpoint="listings")
    with pytest.raises(HostawayClientError) as raised:
        client.listings()
    assert raised.value.status == 403 and "/v1/listings" in str(raised.value)
    assert client.stats.token_refreshes == 0
    assert len(calls_to(simulator, "listings")) == 1


def test_a_refused_client_secret_is_an_auth_error_without_the_secret(harness, simulator):
    harness.warehouse.accounts.remove(ACCOUNT)
    harness.warehouse.accounts.add(ACCOUNT, "definitely-wrong-secret")
    with pytest.raises(HostawayAuthError) as raised:
        harness.api.client_for(ACCOUNT).listings()
    assert "definitely-wrong-secret" not in str(raised.value)
    assert f"account {ACCOUNT}" in str(raised.value)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried(harness, simulator, status):
    simulator.add_fault(kind="status", endpoint="listings", status_code=status, count=2)
    client = harness.api.client_for(ACCOUNT)
    assert len(client.listings().objects) > 0
    assert client.stats.retries == 2


def test_a_429_is_retried_after_its_retry_after(harness, simulator):
    simulator.add_fault(kind="status", endpoint="listings", status_code=429, retry_after=0.4, count=1)
    client = harness.api.client_for(ACCOUNT)
    client.listings()
    first, second = calls_to(simulator, "listings")[:2]
    assert first["status"] == 429 and second["status"] == 200
    assert second["time"] - first["time"] >= 0.4
    assert client.stats.throttled_429 == 1


def test_timeouts_and_connection_resets_are_retried(harness, simulator):
    simulator.add_fault(kind="timeout", endpoint="listings", delay_seconds=1.5, count=1)
    simulator.add_fault(kind="reset", endpoint="reservations", count=1)
    client = harness.api.client_for(ACCOUNT)
    assert len(client.listings().objects) > 0
    assert len(client.reservations().objects) == len(simulator.truth(ACCOUNT)["reservations"])
    assert client.stats.retries == 2


@pytest.mark.parametrize("status", [400, 404])
def test_other_client_errors_are_not_retried(harness, simulator, status):
    simulator.add_fault(kind="status", endpoint="listings", status_code=status)
    client = harness.api.client_for(ACCOUNT)
    with pytest.raises(HostawayClientError) as raised:
        client.listings()
    assert raised.value.status == status
    assert client.stats.retries == 0 and len(calls_to(simulator, "listings")) == 1


def test_retries_are_bounded_and_the_error_names_endpoint_and_account(harness, simulator):
    simulator.add_fault(kind="status", endpoint="listings", status_code=503, count=100)
    client = harness.api.client_for(ACCOUNT)
    with pytest.raises(HostawayUnavailableError) as raised:
        client.listings()
    assert len(calls_to(simulator, "listings")) == 4
    message = str(raised.value)
    assert "/v1/listings" in message and str(ACCOUNT) in message and "HTTP 503" in message
    assert simulator.client_secret(ACCOUNT) not in message


def test_malformed_json_is_a_clear_error(harness, simulator):
    simulator.add_fault(kind="malformed_json", endpoint="listings")
    with pytest.raises(HostawayResponseError, match="not valid JSON"):
        harness.api.client_for(ACCOUNT).listings()


def test_reservations_come_back_once_each_at_their_newest_version_when_rows_move_between_pages(harness, simulator):
    """Every afterId reading crossed with every kind of change is in sync/test_reads_under_every_reading.py;
    this is the client's own contract: unique ids, newest versions, a complete read."""
    simulator.add_fault(kind="page_drift", endpoint="reservations", action="update", target="unserved", rows=7,
                        count=2)
    result = harness.api.client_for(ACCOUNT).reservations()
    ids = [int(o["id"]) for o in result.objects]
    assert sorted(ids) == truth_ids(simulator, "reservations") and len(ids) == len(set(ids))
    newest = {int(o["id"]): o["updatedOn"] for o in simulator.truth(ACCOUNT)["reservations"]}
    assert {int(o["id"]): o["updatedOn"] for o in result.objects} == newest
    assert result.complete and result.reported_count == len(ids)


def test_an_upstream_answering_empty_pages_is_an_incomplete_read(harness, simulator):
    simulator.add_fault(kind="empty_page", endpoint="reservations", count=100)
    result = harness.api.client_for(ACCOUNT).reservations()
    assert result.objects == [] and result.reported_count == 250 and not result.complete


def test_paging_uses_the_minimum_number_of_calls(harness, simulator):
    client = harness.api.client_for(ACCOUNT)
    reservations = client.reservations()
    conversations = client.conversations()
    assert reservations.reported_count == len(reservations.objects) == 250
    assert conversations.reported_count == len(conversations.objects)
    # Three pages each, plus one catch-up (reservations) or head re-read (conversations) for rows that moved
    # behind the walk; nothing moved, so one each.
    assert len(calls_to(simulator, "reservations")) == 4 and len(calls_to(simulator, "conversations")) == 4


def test_messages_for_many_conversations_come_back_complete(harness, simulator):
    client = harness.api.client_for(ACCOUNT)
    conversation_ids = [int(c["id"]) for c in client.conversations().objects]
    fetched = list(client.messages_for_conversations(conversation_ids))
    assert [cid for cid, _ in fetched] == list(dict.fromkeys(conversation_ids))
    got = sorted(int(m["id"]) for _, result in fetched for m in result.objects)
    assert got == truth_ids(simulator, "messages")


def test_one_conversation_failing_does_not_stop_the_others_and_a_404_is_no_empty_read(harness, simulator):
    client = harness.api.client_for(ACCOUNT)
    conversation_ids = [int(c["id"]) for c in client.conversations().objects][:6]
    simulator.add_fault(kind="status", endpoint="messages", status_code=404, count=1)
    fetched = dict(client.messages_for_conversations(conversation_ids))
    failures = {cid: result for cid, result in fetched.items() if isinstance(result, HostawayClientError)}
    assert len(failures) == 1 and next(iter(failures.values())).status == 404
    assert all(result.complete for cid, result in fetched.items() if cid not in failures)


def test_lookup_by_id_returns_the_object_or_none_when_gone(harness, simulator):
    client = harness.api.client_for(ACCOUNT)
    truth = simulator.truth(ACCOUNT)
    for resource in ("listings", "reservations", "conversations"):
        expected = truth[resource][0]
        assert client.lookup(resource, expected["id"]) == expected
        assert client.lookup(resource, 987_654_321) is None
    message = truth["messages"][0]
    assert client.lookup("messages", message["id"], message["conversationId"]) == message
    assert client.lookup("messages", 987_654_321, message["conversationId"]) is None


def test_an_empty_account_reads_as_empty(harness, simulator):
    client = harness.api.client_for(EMPTY)
    assert client.listings().objects == [] and client.reservations().objects == []
    assert client.conversations().objects == []


def test_the_limiter_never_exceeds_the_limit_in_any_window_across_processes(engine, database_url):
    """Three OS processes pace through one Postgres limiter; the stand-in, not the limiter, counts."""
    time_scale = 10.0  # 1 s windows: 15 calls per second per IP
    window = 10.0 / time_scale
    with SimulatorServer(accounts={1: "empty"}, seed=1, time_scale=time_scale) as simulator:
        workers = [
            subprocess.Popen([sys.executable, "-m", "hostaway_pipeline_tests.hostaway.limiter_worker", database_url,
                              simulator.base_url, f"15/{window:g}s", f"20/{window:g}s", str(account), "15"])
            for account in (1, 2, 3)
        ]
        assert [worker.wait(timeout=120) for worker in workers] == [0, 0, 0]
        stats = simulator.stats()
    assert stats["total_calls"] == 45
    assert stats["served_429"] == 0
    assert stats["max_calls_in_any_window_by_ip"] <= 15


def test_a_single_message_is_fetched_by_conversation_and_id(harness, simulator):
    expected = simulator.truth(ACCOUNT)["messages"][0]
    got = harness.api.client_for(ACCOUNT).message(expected["conversationId"], expected["id"])
    assert got == expected


def test_unified_webhooks_can_be_created_listed_updated_and_deleted(harness):
    client = harness.api.client_for(ACCOUNT)
    created = client.create_unified_webhook({"isEnabled": 1, "url": "https://example.test/hook",
                                             "login": "hook", "password": "pw", "alertingEmailAddress": None})
    assert [w["id"] for w in client.unified_webhooks()] == [created["id"]]
    client.update_unified_webhook(created["id"], {**created, "url": "https://example.test/other"})
    assert client.unified_webhooks()[0]["url"] == "https://example.test/other"
    client.delete_unified_webhook(created["id"])
    assert client.unified_webhooks() == []
