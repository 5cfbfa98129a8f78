"""``afterId`` on reservations under every reading the docs leave open, and the switches around it.

- ``after_id_reading``: ``keyset`` (documented, default), ``id_order``, ``ignored``;
- ``after_id_unknown``: ``empty`` (default), ``first_page``, ``error``;
- ``count_with_cursor``: ``total`` (default), ``remaining``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hostaway_pipeline.simulator.server import SimulatorServer
from hostaway_pipeline_tests.simulator.support import NO_LIMIT, Api

ACCOUNT = 80001


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    """A fresh seed-size account (787 reservations, 7 listings) that tests may reconfigure and change."""
    with SimulatorServer(
        accounts={ACCOUNT: "seed"}, seed=19, time_scale=100.0, ip_limit=NO_LIMIT, account_limit=NO_LIMIT
    ) as server:
        yield server


@pytest.fixture
def api(sim: SimulatorServer) -> Api:
    return Api(sim, ACCOUNT)


def default_order(truth: dict[str, Any]) -> list[int]:
    rows = sorted(truth["reservations"], key=lambda r: (r["updatedOn"], r["id"]), reverse=True)
    return [r["id"] for r in rows]


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [row["id"] for row in rows]


def cursor_walk(api: Api, limit: int, **params: Any) -> list[dict[str, Any]]:
    """First page without afterId, then afterId = the last row's id until an empty page."""
    page = api.json("/reservations", limit=limit, **params)["result"]
    rows = list(page)
    for _ in range(100):
        if not page:
            return rows
        page = api.json("/reservations", limit=limit, afterId=page[-1]["id"], **params)["result"]
        rows += page
    raise AssertionError("the walk never reached an empty page")


# ---- configuration ---------------------------------------------------------------------------------------
def test_defaults_are_the_documented_readings_and_switch_over_admin(sim: SimulatorServer) -> None:
    defaults = requests.get(f"{sim.admin_url}/config", timeout=10).json()
    changed = requests.post(
        f"{sim.admin_url}/config",
        json={"after_id_reading": "id_order", "after_id_unknown": "error", "count_with_cursor": "remaining"},
        timeout=10,
    ).json()
    assert {k: defaults[k] for k in ("after_id_reading", "after_id_unknown", "count_with_cursor")} == {
        "after_id_reading": "keyset",
        "after_id_unknown": "empty",
        "count_with_cursor": "total",
    }
    assert (changed["after_id_reading"], changed["after_id_unknown"], changed["count_with_cursor"]) == (
        "id_order",
        "error",
        "remaining",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"after_id_reading": "id"},
        {"after_id_unknown": "404"},
        {"count_with_cursor": "all"},
        {"ignore_after_id": True},  # the old boolean switch is gone
    ],
)
def test_bad_config_values_are_rejected_and_change_nothing(sim: SimulatorServer, body: dict[str, Any]) -> None:
    response = requests.post(f"{sim.admin_url}/config", json=body, timeout=10)
    assert (response.status_code, response.json()["status"]) == (400, "fail")
    assert sim.configure()["after_id_reading"] == "keyset"


def test_constructor_takes_the_switches() -> None:
    server = SimulatorServer(
        accounts={1: 5}, after_id_reading="ignored", after_id_unknown="first_page", count_with_cursor="remaining"
    )
    config = server.configure()
    assert (config["after_id_reading"], config["after_id_unknown"], config["count_with_cursor"]) == (
        "ignored",
        "first_page",
        "remaining",
    )
    with pytest.raises(ValueError, match="after_id_reading"):
        SimulatorServer(accounts={1: 5}, after_id_reading="sideways")


# ---- keyset (documented) ---------------------------------------------------------------------------------
def test_keyset_walk_serves_every_row_once_in_updated_on_desc_id_desc(
    seed_api: Api, seed_truth: dict[str, Any]
) -> None:
    assert ids(cursor_walk(seed_api, 100)) == default_order(seed_truth)


@pytest.mark.parametrize(
    "sort_order, key, descending",
    [
        ("arrivalDate", "arrivalDate", False),
        ("arrivalDateDesc", "arrivalDate", True),
        ("departureDate", "departureDate", False),
        ("updatedOn", "updatedOn", False),
    ],
)
def test_keyset_walk_follows_the_requested_sort_order_with_id_as_tie_breaker(
    seed_api: Api, seed_truth: dict[str, Any], sort_order: str, key: str, descending: bool
) -> None:
    rows = seed_truth["reservations"]
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r[key], r["id"]), reverse=descending)]
    walked = ids(cursor_walk(seed_api, 37, sortOrder=sort_order))
    if key != "updatedOn":
        assert len({r[key] for r in rows}) < len(rows), "the order needs ties for the tie-breaker to matter"
    assert walked == expected


def test_keyset_page_is_the_rows_after_the_cursor_and_offset_is_ignored(
    seed_api: Api, seed_truth: dict[str, Any]
) -> None:
    order = default_order(seed_truth)
    plain = seed_api.json("/reservations", limit=10, afterId=order[9])
    with_offset = seed_api.json("/reservations", limit=10, afterId=order[9], offset=500)
    assert ids(plain["result"]) == order[10:20]
    assert with_offset["result"] == plain["result"]


def test_cursor_row_updated_mid_walk_restarts_the_walk_from_its_new_place_at_the_head(
    sim: SimulatorServer, api: Api
) -> None:
    order = default_order(sim.truth(ACCOUNT))
    sim.add_fault(kind="page_drift", endpoint="reservations", action="update", target="cursor")
    first = ids(api.json("/reservations", limit=10)["result"])
    second = ids(api.json("/reservations", limit=10, afterId=first[-1])["result"])
    assert first == order[:10]
    assert default_order(sim.truth(ACCOUNT))[0] == first[-1]  # the cursor row jumped to the head
    assert second == first[:-1] + [order[10]]  # so the next page starts over from right behind it


def test_row_updated_behind_the_cursor_is_missed_by_a_keyset_walk(sim: SimulatorServer, api: Api) -> None:
    before = default_order(sim.truth(ACCOUNT))
    sim.add_fault(kind="page_drift", endpoint="reservations", rows=5, count=1)
    walked = ids(cursor_walk(api, 100))
    moved = before[100:105]
    assert sorted(walked) == sorted(set(before) - set(moved))
    assert set(default_order(sim.truth(ACCOUNT))[:5]) == set(moved)


# ---- id_order and ignored ----------------------------------------------------------------------------------
@pytest.mark.parametrize("sort_order", [None, "arrivalDateDesc"])
def test_id_order_reading_serves_ids_above_the_cursor_ascending_whatever_the_sort_order(
    sim: SimulatorServer, api: Api, sort_order: str | None
) -> None:
    sim.configure(after_id_reading="id_order")
    all_ids = sorted(r["id"] for r in sim.truth(ACCOUNT)["reservations"])
    params = {"sortOrder": sort_order} if sort_order else {}
    page = api.json("/reservations", limit=10, afterId=all_ids[20], offset=300, **params)
    assert ids(page["result"]) == all_ids[21:31]
    assert page["count"] == 787


def test_id_order_walk_from_the_smallest_id_is_immune_to_rows_moving(sim: SimulatorServer, api: Api) -> None:
    sim.configure(after_id_reading="id_order")
    all_ids = sorted(r["id"] for r in sim.truth(ACCOUNT)["reservations"])
    sim.add_fault(kind="page_drift", endpoint="reservations", rows=5, count=3)
    walked = [all_ids[0]]
    while page := api.json("/reservations", limit=100, afterId=walked[-1])["result"]:
        walked += ids(page)
    assert walked == all_ids


@pytest.mark.parametrize("sort_order", [None, "arrivalDate"])
def test_ignored_reading_pages_by_offset_in_the_requested_order(
    sim: SimulatorServer, api: Api, sort_order: str | None
) -> None:
    sim.configure(after_id_reading="ignored")
    params = {"sortOrder": sort_order} if sort_order else {}
    first = api.json("/reservations", limit=10, **params)["result"]
    again = api.json("/reservations", limit=10, afterId=first[-1]["id"], **params)["result"]
    second = api.json("/reservations", limit=10, afterId=first[-1]["id"], offset=10, **params)
    expected = api.json("/reservations", limit=20, **params)["result"]
    assert again == first == expected[:10]
    assert second["result"] == expected[10:20] and second["offset"] == 10


# ---- after_id_unknown -------------------------------------------------------------------------------------
def unknown_cursor(kind: str, truth: dict[str, Any], listing_id: int) -> int:
    if kind == "zero":
        return 0
    if kind == "never_existed":
        return max(r["id"] for r in truth["reservations"]) + 1000
    # A real reservation, but of another listing than the listingId filter keeps.
    return next(r["id"] for r in truth["reservations"] if r["listingMapId"] != listing_id)


@pytest.mark.parametrize("reading", ["keyset", "id_order"])
@pytest.mark.parametrize("cursor", ["zero", "never_existed", "filtered_out"])
@pytest.mark.parametrize("answer", ["empty", "first_page", "error"])
def test_unknown_after_id_gets_what_after_id_unknown_says(
    sim: SimulatorServer, api: Api, reading: str, cursor: str, answer: str
) -> None:
    sim.configure(after_id_reading=reading, after_id_unknown=answer, count_with_cursor="remaining")
    truth = sim.truth(ACCOUNT)
    listing_id = truth["listings"][0]["id"]
    filtered = [r for r in truth["reservations"] if r["listingMapId"] == listing_id]
    after_id = unknown_cursor(cursor, truth, listing_id)
    response = api.get("/reservations", limit=10, listingId=listing_id, afterId=after_id)
    if answer == "error":
        assert (response.status_code, response.json()["status"]) == (400, "fail")
        return
    page = response.json()
    assert response.status_code == 200 and page["count"] == len(filtered)  # the true count, even "remaining"
    if answer == "empty":
        assert page["result"] == []
    else:
        assert page["result"] == api.json("/reservations", limit=10, listingId=listing_id)["result"] != []


def test_a_deleted_cursor_row_is_an_unknown_after_id(sim: SimulatorServer, api: Api) -> None:
    sim.add_fault(kind="page_drift", endpoint="reservations", action="delete", target="cursor")
    first = api.json("/reservations", limit=10)["result"]
    after = api.json("/reservations", limit=10, afterId=first[-1]["id"])
    sim.configure(after_id_unknown="first_page")
    restarted = api.json("/reservations", limit=10, afterId=first[-1]["id"])["result"]
    assert (after["result"], after["count"]) == ([], 786)
    assert ids(restarted) == ids(first[:-1]) + [default_order(sim.truth(ACCOUNT))[9]]


# ---- count_with_cursor ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("reading", ["keyset", "id_order"])
@pytest.mark.parametrize("counting", ["total", "remaining"])
def test_count_with_a_cursor_is_the_total_or_the_rows_from_this_page_on(
    sim: SimulatorServer, api: Api, reading: str, counting: str
) -> None:
    sim.configure(after_id_reading=reading, count_with_cursor=counting)
    truth = sim.truth(ACCOUNT)
    listing_id = truth["listings"][0]["id"]
    filtered = [r for r in truth["reservations"] if r["listingMapId"] == listing_id]
    order = default_order({"reservations": filtered})
    if reading == "id_order":
        order = sorted(order)
    page = api.json("/reservations", limit=10, listingId=listing_id, afterId=order[29])
    first = api.json("/reservations", limit=10, listingId=listing_id)
    assert ids(page["result"]) == order[30:40]
    assert page["count"] == (len(filtered) if counting == "total" else len(filtered) - 30)
    assert first["count"] == len(filtered)  # no cursor, no difference
