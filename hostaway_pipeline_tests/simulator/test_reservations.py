"""Listings and reservations endpoints: default and explicit orders, filters, counts (afterId: test_after_id)."""

from __future__ import annotations

from typing import Any

import pytest

from hostaway_pipeline_tests.simulator.support import Api


def test_default_order_is_updated_on_desc_then_id_desc(seed_api: Api, seed_truth: dict[str, Any]) -> None:
    rows = seed_api.all_pages("/reservations")
    expected = sorted(seed_truth["reservations"], key=lambda r: (r["updatedOn"], r["id"]), reverse=True)
    assert [r["id"] for r in rows] == [r["id"] for r in expected]


@pytest.mark.parametrize(
    "sort_order, key, descending",
    [
        ("updatedOn", "updatedOn", False),
        ("latestActivity", "latestActivityOn", False),
        ("latestActivityDesc", "latestActivityOn", True),
        ("arrivalDate", "arrivalDate", False),
        ("arrivalDateDesc", "arrivalDate", True),
    ],
)
def test_sort_orders(seed_api: Api, sort_order: str, key: str, descending: bool) -> None:
    values = [row[key] for row in seed_api.all_pages("/reservations", sortOrder=sort_order)]
    assert len(values) == 787
    assert values == sorted(values, reverse=descending)


def test_count_is_all_rows_matching_the_filters(seed_api: Api, seed_truth: dict[str, Any]) -> None:
    listing_id = seed_truth["listings"][0]["id"]
    params = {
        "latestActivityStart": "2026-01-01",
        "latestActivityEnd": "2026-09-30 23:59:59",
        "arrivalStartDate": "2026-01-15",
        "departureEndDate": "2026-10-31",
        "listingId": listing_id,
        "channelId": 2018,
    }
    expected = [
        r
        for r in seed_truth["reservations"]
        if "2026-01-01 00:00:00" <= r["latestActivityOn"] <= "2026-09-30 23:59:59"
        and r["arrivalDate"] >= "2026-01-15"
        and r["departureDate"] <= "2026-10-31"
        and r["listingMapId"] == listing_id
        and r["channelId"] == 2018
    ]
    page = seed_api.json("/reservations", limit=5, **params)
    assert 5 < page["count"] == len(expected)
    assert len(page["result"]) == 5
    assert sorted(r["id"] for r in seed_api.all_pages("/reservations", **params)) == sorted(
        r["id"] for r in expected
    )


def test_date_only_end_bound_covers_its_whole_day(seed_api: Api, seed_truth: dict[str, Any]) -> None:
    day = seed_truth["reservations"][100]["latestActivityOn"][:10]
    rows = seed_api.all_pages("/reservations", latestActivityStart=day, latestActivityEnd=day)
    assert sorted(r["id"] for r in rows) == sorted(
        r["id"] for r in seed_truth["reservations"] if r["latestActivityOn"][:10] == day
    )


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "abc"},
        {"offset": "-1"},
        {"afterId": "x"},
        {"latestActivityStart": "yesterday"},
        {"sortOrder": "random"},
        {"arrivalStartDate": "2026-13-01"},
    ],
)
def test_bad_parameters_are_400_fail(seed_api: Api, params: dict[str, str]) -> None:
    response = seed_api.get("/reservations", **params)
    assert (response.status_code, response.json()["status"]) == (400, "fail")


def test_limit_is_capped_at_100(seed_api: Api) -> None:
    page = seed_api.json("/reservations", limit=500)
    assert (page["limit"], len(page["result"])) == (100, 100)


def test_listings_are_id_ascending_and_filter_on_latest_activity(
    seed_api: Api, seed_truth: dict[str, Any]
) -> None:
    page = seed_api.json("/listings")
    ids = [row["id"] for row in page["result"]]
    assert ids == sorted(ids) and page["count"] == 7
    pivot = sorted(row["latestActivityOn"] for row in seed_truth["listings"])[3]
    recent = seed_api.json("/listings", latestActivityStart=pivot)
    assert recent["count"] == sum(1 for row in seed_truth["listings"] if row["latestActivityOn"] >= pivot)


def test_single_reservation_and_unknown_paths(seed_api: Api, seed_truth: dict[str, Any]) -> None:
    reservation = seed_truth["reservations"][0]
    assert seed_api.json(f"/reservations/{reservation['id']}")["result"] == reservation
    missing = seed_api.get("/nothing/here")
    assert (missing.status_code, missing.json()["status"]) == (404, "fail")
