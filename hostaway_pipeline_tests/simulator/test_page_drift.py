"""``page_drift`` on every list endpoint (rows updated, created or deleted upstream between page requests)
and ``empty_page`` (a broken upstream answering no rows with the true count)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.simulator.support import NO_LIMIT, Api

ACCOUNT = 70001


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[SimulatorServer]:
    """A fresh account: seed size (7 listings, 787 reservations and conversations, ~5000 messages), or
    200 reservations (2 listings) for a test parametrized on an endpoint other than listings: faster."""
    callspec = getattr(request.node, "callspec", None)
    endpoint = callspec.params.get("endpoint") if callspec else None
    size: int | str = "seed" if endpoint in (None, LISTINGS) else 200
    with SimulatorServer(
        accounts={ACCOUNT: size}, seed=17, time_scale=100.0, ip_limit=NO_LIMIT, account_limit=NO_LIMIT
    ) as server:
        yield server


@pytest.fixture
def api(sim: SimulatorServer) -> Api:
    return Api(sim, ACCOUNT)


@dataclass(frozen=True)
class Endpoint:
    name: str
    limit: int  # page size the tests walk with
    rows: int  # rows a drift changes


LISTINGS = Endpoint("listings", limit=3, rows=2)
RESERVATIONS = Endpoint("reservations", limit=10, rows=3)
CONVERSATIONS = Endpoint("conversations", limit=10, rows=3)
MESSAGES = Endpoint("messages", limit=3, rows=2)
ENDPOINTS = [LISTINGS, RESERVATIONS, CONVERSATIONS, MESSAGES]
ENDPOINT_IDS = [e.name for e in ENDPOINTS]


def busiest_conversation(truth: dict[str, Any]) -> int:
    counts = Counter(m["conversationId"] for m in truth["messages"] if m["status"] == "sent")
    return counts.most_common(1)[0][0]


def path(endpoint: Endpoint, conversation_id: int) -> str:
    if endpoint is MESSAGES:
        return f"/conversations/{conversation_id}/messages"
    return f"/{endpoint.name}"


def truth_order(endpoint: Endpoint, truth: dict[str, Any], conversation_id: int) -> list[int]:
    """The ids in the order the endpoint serves them, computed from ground truth."""
    if endpoint is LISTINGS:
        rows = sorted(truth["listings"], key=lambda r: r["id"])
    elif endpoint is RESERVATIONS:
        rows = sorted(truth["reservations"], key=lambda r: (r["updatedOn"], r["id"]), reverse=True)
    elif endpoint is CONVERSATIONS:
        rows = sorted(truth["conversations"], key=lambda r: (r["messageSentOn"], r["id"]), reverse=True)
    else:
        rows = sorted(
            (m for m in truth["messages"] if m["conversationId"] == conversation_id and m["status"] == "sent"),
            key=lambda m: (m["date"], m["id"]),
            reverse=True,
        )
    return [row["id"] for row in rows]


def by_id(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {row["id"]: row for row in rows}


def truth_rows(endpoint: Endpoint, truth: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return by_id(truth[endpoint.name])


class Walk:
    """One endpoint of the fresh account: serves the first page with a drift rule armed, then looks."""

    def __init__(self, sim: SimulatorServer, api: Api, endpoint: Endpoint) -> None:
        self.sim, self.api, self.endpoint = sim, api, endpoint
        self.before = sim.truth(ACCOUNT)
        self.conversation_id = busiest_conversation(self.before)
        self.order_before = truth_order(endpoint, self.before, self.conversation_id)
        assert len(self.order_before) >= endpoint.limit + endpoint.rows

    @property
    def path(self) -> str:
        return path(self.endpoint, self.conversation_id)

    def first_page_with_drift(self, **fault: Any) -> list[int]:
        """Serve the first page with the fault armed; returns the ids the fault reports it changed."""
        self.sim.add_fault(kind="page_drift", endpoint=self.endpoint.name, rows=self.endpoint.rows, **fault)
        page = self.api.json(self.path, limit=self.endpoint.limit)["result"]
        assert [row["id"] for row in page] == self.order_before[: self.endpoint.limit]
        (rule,) = self.sim.faults()
        (result,) = rule["results"]
        (call,) = [c for c in self.sim.calls() if c["fault"] == "page_drift"]
        assert call["fault_result"] == result and call["fault_id"] == rule["id"]
        assert (result["endpoint"], result["action"]) == (self.endpoint.name, fault.get("action", "update"))
        changed: list[int] = result["ids"]
        self.related: dict[str, list[int]] = result["related"]
        return changed

    def served_ids(self) -> list[int]:
        """Every row the endpoint serves now, in its order."""
        return [row["id"] for row in self.api.all_pages(self.path)]


# ---- which rows ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["update", "delete"])
@pytest.mark.parametrize("target", ["unserved", "served", "cursor"])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_target_picks_rows_relative_to_the_page_just_served(
    sim: SimulatorServer, api: Api, endpoint: Endpoint, action: str, target: str
) -> None:
    walk = Walk(sim, api, endpoint)
    changed = walk.first_page_with_drift(action=action, target=target)
    limit, rows, order = endpoint.limit, endpoint.rows, walk.order_before
    expected = {
        "unserved": order[limit : limit + rows],  # the rows right after the page
        "served": order[:rows],  # the page's own rows, from its first
        "cursor": [order[limit - 1]],  # the page's last row: the next afterId
    }[target]
    assert changed == expected


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_defaults_are_unserved_for_update_and_served_for_delete(
    sim: SimulatorServer, endpoint: Endpoint
) -> None:
    update = sim.add_fault(kind="page_drift", endpoint=endpoint.name)
    delete = sim.add_fault(kind="page_drift", endpoint=endpoint.name, action="delete")
    create = sim.add_fault(kind="page_drift", endpoint=endpoint.name, action="create")
    assert [(r["action"], r["target"]) for r in (update, delete, create)] == [
        ("update", "unserved"),
        ("delete", "served"),
        ("create", None),
    ]


def test_served_target_reaches_back_before_the_page_when_the_page_is_short_of_rows(
    sim: SimulatorServer, api: Api
) -> None:
    order = truth_order(CONVERSATIONS, sim.truth(ACCOUNT), 0)
    sim.add_fault(kind="page_drift", endpoint="conversations", action="delete", target="served", rows=4, after=1)
    api.json("/conversations", limit=3)
    api.json("/conversations", limit=3, offset=3)
    (result,) = sim.faults()[0]["results"]
    assert result["ids"] == [order[3], order[4], order[5], order[2]]


# ---- update ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_update_changes_the_rows_so_they_move_in_the_endpoints_order(
    sim: SimulatorServer, api: Api, endpoint: Endpoint
) -> None:
    walk = Walk(sim, api, endpoint)
    changed = walk.first_page_with_drift(action="update", target="unserved")
    truth = sim.truth(ACCOUNT)
    served = walk.served_ids()
    before, after = truth_rows(endpoint, walk.before), truth_rows(endpoint, truth)
    assert served == truth_order(endpoint, truth, walk.conversation_id)
    assert sorted(served) == sorted(walk.order_before)  # same rows, maybe elsewhere
    if endpoint is RESERVATIONS:
        newest = max(r["updatedOn"] for r in walk.before["reservations"])
        assert all(after[i]["updatedOn"] > newest and after[i]["latestActivityOn"] > newest for i in changed)
        assert served[: len(changed)] == changed[::-1]  # jumped to the head of updatedOn DESC
    elif endpoint is CONVERSATIONS:
        messages = by_id(truth["messages"])
        new_messages = walk.related["messages"]
        assert [messages[m]["conversationId"] for m in new_messages] == changed
        assert all(messages[m]["isIncoming"] == 0 and messages[m]["status"] == "sent" for m in new_messages)
        assert all(after[i]["messageSentOn"] > before[i]["messageSentOn"] for i in changed)
        assert served[: len(changed)] == changed[::-1]  # jumped to the head of messageSentOn DESC
    elif endpoint is LISTINGS:
        assert all(after[i]["latestActivityOn"] > before[i]["latestActivityOn"] for i in changed)
        assert served == walk.order_before  # id order: they stay put
    else:
        assert all(after[i]["updatedOn"] > before[i]["updatedOn"] for i in changed)
        assert all(after[i]["body"] != before[i]["body"] for i in changed)
        assert served == walk.order_before  # date order: an edit does not move a message
    untouched = set(before) - set(changed) - set(walk.related.get(endpoint.name, []))
    assert all(after[i] == before[i] for i in untouched)


# ---- create ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_create_adds_rows_upstream_like_the_mutations_do(
    sim: SimulatorServer, api: Api, endpoint: Endpoint
) -> None:
    walk = Walk(sim, api, endpoint)
    created = walk.first_page_with_drift(action="create")
    truth = sim.truth(ACCOUNT)
    served = walk.served_ids()
    assert len(created) == endpoint.rows and not set(created) & set(walk.order_before)
    assert sorted(served) == sorted(walk.order_before + created)
    assert served == truth_order(endpoint, truth, walk.conversation_id)
    if endpoint is LISTINGS:
        assert served[-len(created) :] == created  # new ids go to the end of id order
        assert all(api.get(f"/listings/{i}").status_code == 200 for i in created)
        return
    assert served[: len(created)] == created[::-1]  # newest first: ahead of the page already served
    conversations, messages = by_id(truth["conversations"]), by_id(truth["messages"])
    if endpoint is RESERVATIONS:
        for reservation_id, conversation_id in zip(created, walk.related["conversations"], strict=True):
            assert conversations[conversation_id]["reservationId"] == reservation_id
            assert api.json("/conversations", reservationId=reservation_id)["count"] == 1
    elif endpoint is CONVERSATIONS:
        for conversation_id, reservation_id in zip(created, walk.related["reservations"], strict=True):
            assert api.json(f"/reservations/{reservation_id}")["result"]["id"] == reservation_id
            assert conversations[conversation_id]["Reservation"]["id"] == reservation_id
            assert any(m["conversationId"] == conversation_id for m in messages.values())
    else:
        assert all(messages[m]["conversationId"] == walk.conversation_id for m in created)
        assert all(messages[m]["isIncoming"] == 1 for m in created)


# ---- delete ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_delete_removes_rows_from_lists_and_gets_by_id(
    sim: SimulatorServer, api: Api, endpoint: Endpoint
) -> None:
    walk = Walk(sim, api, endpoint)
    deleted = walk.first_page_with_drift(action="delete", target="served")
    truth = sim.truth(ACCOUNT)
    served = walk.served_ids()
    assert served == [i for i in walk.order_before if i not in deleted]
    assert not set(deleted) & set(truth_rows(endpoint, truth))
    single = {
        "listings": "/listings/{}",
        "reservations": "/reservations/{}",
        "conversations": "/conversations/{}",
        "messages": f"/conversations/{walk.conversation_id}/messages/{{}}",
    }[endpoint.name]
    assert {api.get(single.format(i)).status_code for i in deleted} == {404}
    remaining_messages = {m["id"] for m in truth["messages"]}
    if endpoint is RESERVATIONS:
        # A deleted reservation takes its conversation and the conversation's messages along.
        assert len(walk.related["conversations"]) == len(deleted)
        assert not set(walk.related["conversations"]) & {c["id"] for c in truth["conversations"]}
        assert walk.related["messages"] and not set(walk.related["messages"]) & remaining_messages
        assert all(api.json("/conversations", reservationId=i)["count"] == 0 for i in deleted)
        assert truth["deleted_reservation_ids"] == sorted(deleted)
    elif endpoint is CONVERSATIONS:
        assert walk.related["messages"] and not set(walk.related["messages"]) & remaining_messages
        assert all(api.get(f"/conversations/{i}/messages").status_code == 404 for i in deleted)
        reservation_ids = [truth_rows(CONVERSATIONS, walk.before)[i]["reservationId"] for i in deleted]
        assert all(api.get(f"/reservations/{i}").status_code == 200 for i in reservation_ids)
        assert truth["deleted_conversation_ids"] == sorted(deleted)
    elif endpoint is LISTINGS:
        assert truth["deleted_listing_ids"] == sorted(deleted)
    else:
        assert truth["deleted_message_ids"] == sorted(deleted)
        (conversation,) = [c for c in truth["conversations"] if c["id"] == walk.conversation_id]
        assert conversation["conversationMessages"][0]["id"] not in deleted


# ---- what drift does to a walk --------------------------------------------------------------------------------
def test_delete_of_a_served_row_makes_the_next_offset_page_skip_a_live_row(
    sim: SimulatorServer, api: Api
) -> None:
    order = truth_order(CONVERSATIONS, sim.truth(ACCOUNT), 0)
    sim.add_fault(kind="page_drift", endpoint="conversations", action="delete", rows=1)
    walked = [row["id"] for row in api.all_pages("/conversations")]
    live = {c["id"] for c in sim.truth(ACCOUNT)["conversations"]}
    assert len(live) == 786 and set(walked) - live == {order[0]}  # read, then deleted upstream
    assert live - set(walked) == {order[100]}  # the first row of page two slid onto page one: never read


def test_create_makes_the_next_offset_page_serve_a_row_twice(sim: SimulatorServer, api: Api) -> None:
    order = truth_order(CONVERSATIONS, sim.truth(ACCOUNT), 0)
    sim.add_fault(kind="page_drift", endpoint="conversations", action="create", rows=1)
    walked = [row["id"] for row in api.all_pages("/conversations")]
    assert [i for i, n in Counter(walked).items() if n > 1] == [order[99]]
    assert len(set(walked)) == 787  # and the new conversation, ahead of the walk, is not seen


def test_update_of_unserved_rows_hides_them_from_an_offset_walk(sim: SimulatorServer, api: Api) -> None:
    order = truth_order(RESERVATIONS, sim.truth(ACCOUNT), 0)
    sim.add_fault(kind="page_drift", endpoint="reservations", rows=5)
    walked = [row["id"] for row in api.all_pages("/reservations")]
    assert len(walked) == 787 and set(order) - set(walked) == set(order[100:105])


def test_drift_fires_after_the_skipped_requests_for_count_requests_and_is_spent(
    sim: SimulatorServer, api: Api
) -> None:
    sim.add_fault(kind="page_drift", endpoint="listings", action="update", rows=1, after=1, count=2)
    for _ in range(4):
        api.json("/listings", limit=2)
    (rule,) = sim.faults()
    assert [c["fault"] for c in sim.calls() if c["endpoint"] == "listings"] == [None, "page_drift", "page_drift", None]
    assert len(rule["results"]) == 2 and rule["spent"]


def test_drift_with_endpoint_star_and_account_applies_to_list_endpoints_of_that_account_only(
    sim: SimulatorServer, api: Api
) -> None:
    sim.add_fault(kind="page_drift", endpoint="*", account_id=99999, count=5)
    sim.add_fault(kind="page_drift", endpoint="*", action="update", target="cursor", account_id=ACCOUNT)
    reservation_id = sim.truth(ACCOUNT)["reservations"][0]["id"]
    api.json(f"/reservations/{reservation_id}")
    page = api.json("/listings", limit=2)["result"]
    other, mine = sim.faults()
    assert other["fired"] == 0 and [r["ids"] for r in mine["results"]] == [[page[-1]["id"]]]


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "page_drift", "endpoint": "listing"},
        {"kind": "page_drift", "endpoint": "reservations", "action": "touch"},
        {"kind": "page_drift", "endpoint": "reservations", "target": "everything"},
        {"kind": "page_drift", "endpoint": "reservations", "action": "create", "target": "served"},
        {"kind": "status", "status_code": 500, "action": "update"},
        {"kind": "empty_page", "endpoint": "accessTokens"},
    ],
)
def test_bad_drift_and_empty_page_rules_are_rejected_with_400(sim: SimulatorServer, rule: dict[str, Any]) -> None:
    response = requests.post(f"{sim.admin_url}/faults", json=rule, timeout=10)
    assert (response.status_code, response.json()["status"]) == (400, "fail")
    assert sim.faults() == []


# ---- empty_page ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_empty_page_answers_no_rows_with_the_true_count_and_paging(
    sim: SimulatorServer, api: Api, endpoint: Endpoint
) -> None:
    conversation_id = busiest_conversation(sim.truth(ACCOUNT))
    where = path(endpoint, conversation_id)
    honest = api.json(where, limit=2, offset=2)
    sim.add_fault(kind="empty_page", endpoint=endpoint.name)
    broken = api.get(where, limit=2, offset=2)
    again = api.json(where, limit=2, offset=2)
    body = broken.json()
    assert broken.status_code == 200 and body["status"] == "success"
    assert body["result"] == [] and honest["result"] != []
    assert body == {**honest, "result": []}  # count, limit, offset (and page/totalPages) are the true ones
    assert ("totalPages" in body) == (endpoint in (CONVERSATIONS, MESSAGES))
    assert again == honest
    (call,) = [c for c in sim.calls() if c["fault"] == "empty_page"]
    assert call["fault_result"]["hidden_ids"] == [row["id"] for row in honest["result"]]


def test_empty_page_on_star_spares_single_object_reads(sim: SimulatorServer, api: Api) -> None:
    sim.add_fault(kind="empty_page", endpoint="*", count=1)
    reservation = sim.truth(ACCOUNT)["reservations"][0]
    single = api.json(f"/reservations/{reservation['id']}")
    page = api.json("/reservations", limit=5)
    assert single["result"] == reservation
    assert (page["result"], page["count"]) == ([], 787)


def test_empty_page_after_an_after_id_keeps_the_true_count(sim: SimulatorServer, api: Api) -> None:
    first = api.json("/reservations", limit=5)["result"]
    sim.add_fault(kind="empty_page", endpoint="reservations")
    page = api.json("/reservations", limit=5, afterId=first[-1]["id"])
    assert (page["result"], page["count"]) == ([], 787)
