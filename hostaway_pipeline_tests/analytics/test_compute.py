"""Known answers for the analyst tables, on hand-made frames (no database): the rules of docs/analytics.md."""

from __future__ import annotations

import pandas as pd
import pytest

from hostaway_pipeline.analytics import compute

ACCOUNT = 7
PARIS, KIRITIMATI, PAGO_PAGO = 1, 2, 3  # listing ids; Kiritimati is UTC+14, Pago Pago UTC-11


def _listings(*rows: tuple[int, str | None, str | None]) -> pd.DataFrame:
    return pd.DataFrame([{"account_id": ACCOUNT, "id": listing_id, "time_zone_name": zone, "inserted_on": created}
                         for listing_id, zone, created in rows])


LISTINGS = _listings((PARIS, "Europe/Paris", "2025-06-01 10:00:00"),
                     (KIRITIMATI, "Pacific/Kiritimati", "2025-06-01 10:00:00"),
                     (PAGO_PAGO, "Pacific/Pago_Pago", "2025-06-01 10:00:00"))


def _reservation(reservation_id: int, listing_id: int, status: str, arrival: str, departure: str | None,
                 total_price: float | None, currency: str | None = "EUR", channel: str | None = "airbnbOfficial",
                 nights: int | None = None, cancellation_payout: float | None = None) -> dict:
    return {"account_id": ACCOUNT, "id": reservation_id, "listing_id": listing_id, "channel_id": 2000,
            "channel_name": channel, "status": status, "arrival_date": arrival, "departure_date": departure,
            "nights": nights, "total_price": total_price, "currency": currency,
            "cancellation_payout": cancellation_payout}


def _nights_of(frame: pd.DataFrame, reservation_id: int) -> list[tuple[str, float]]:
    rows = frame[frame["reservation_id"] == reservation_id]
    return [(d.strftime("%Y-%m-%d"), r) for d, r in zip(rows["night_date"], rows["revenue"], strict=True)]


def test_a_stay_across_a_month_boundary_has_one_row_per_night_and_its_price_split_to_the_cent():
    reservations = pd.DataFrame([_reservation(10, PARIS, "new", "2026-01-30", "2026-02-02", 100.00)])
    nights = compute.reservation_nights(reservations, LISTINGS)
    assert _nights_of(nights, 10) == [("2026-01-30", 33.34), ("2026-01-31", 33.33), ("2026-02-01", 33.33)]
    assert [m.strftime("%Y-%m") for m in nights["month"]] == ["2026-01", "2026-01", "2026-02"]
    assert set(nights["stay_type"]) == {"guest"}


def test_only_confirmed_stays_and_owner_stays_have_nights():
    statuses = ["new", "modified", "ownerStay", "cancelled", "declined", "expired", "inquiry", "inquiryPreapproved",
                "pending", "awaitingPayment", "unknown"]
    reservations = pd.DataFrame([_reservation(i, PARIS, status, "2026-03-01", "2026-03-03", 200.0)
                                 for i, status in enumerate(statuses)])
    nights = compute.reservation_nights(reservations, LISTINGS)
    assert nights.groupby("status").size().to_dict() == {"new": 2, "modified": 2, "ownerStay": 2}
    assert compute.excluded_reservations(reservations) == {
        "awaitingPayment": 1, "cancelled": 1, "declined": 1, "expired": 1, "inquiry": 1, "inquiryPreapproved": 1,
        "pending": 1, "unknown": 1}


def test_owner_stays_block_nights_but_earn_nothing():
    reservations = pd.DataFrame([_reservation(20, PARIS, "ownerStay", "2026-02-10", "2026-02-15", 500.0)])
    nights = compute.reservation_nights(reservations, LISTINGS)
    assert len(nights) == 5
    assert set(nights["stay_type"]) == {"owner"}
    assert nights["revenue"].sum() == 0


def test_a_missing_departure_date_falls_back_to_the_stated_nights_and_unusable_dates_give_no_night():
    reservations = pd.DataFrame([
        _reservation(30, PARIS, "new", "2026-04-29", None, 90.0, nights=3),
        _reservation(31, PARIS, "new", "2026-04-29", "2026-04-29", 90.0),
        _reservation(32, PARIS, "new", None, "2026-04-29", 90.0),
    ])
    nights = compute.reservation_nights(reservations, LISTINGS)
    assert _nights_of(nights, 30) == [("2026-04-29", 30.0), ("2026-04-30", 30.0), ("2026-05-01", 30.0)]
    assert set(nights["reservation_id"]) == {30}
    assert compute.excluded_reservations(reservations) == {"(no usable dates)": 2}


def test_nights_are_the_listings_local_dates_even_far_from_utc():
    # arrivalDate is the property's calendar date: a UTC+14 listing's 31 January night stays in January.
    reservations = pd.DataFrame([_reservation(40, KIRITIMATI, "new", "2026-01-31", "2026-02-01", 80.0)])
    nights = compute.reservation_nights(reservations, LISTINGS)
    assert _nights_of(nights, 40) == [("2026-01-31", 80.0)]
    assert nights["month"].iloc[0] == pd.Timestamp("2026-01-01")
    assert nights["time_zone_name"].iloc[0] == "Pacific/Kiritimati"


def test_occupancy_counts_sold_nights_against_nights_not_blocked_by_the_owner_across_months():
    reservations = pd.DataFrame([
        _reservation(50, PARIS, "new", "2026-01-30", "2026-02-02", 100.0),   # Jan 30, 31 | Feb 1
        _reservation(51, PARIS, "ownerStay", "2026-02-10", "2026-02-15", 0.0),  # Feb 10..14
        _reservation(52, PARIS, "cancelled", "2026-02-20", "2026-02-25", 300.0),  # nothing
        _reservation(53, PARIS, "modified", "2026-02-27", "2026-03-02", 90.0),  # Feb 27, 28 | Mar 1
    ])
    nights = compute.reservation_nights(reservations, LISTINGS)
    occupancy = compute.listing_occupancy_monthly(nights, LISTINGS)
    paris = occupancy[occupancy["listing_id"] == PARIS]
    paris = paris.set_index(paris["month"].dt.strftime("%Y-%m"))
    assert paris.loc["2026-01", ["days_in_month", "guest_nights", "owner_nights", "available_nights"]].tolist() == [
        31, 2, 0, 31]
    assert paris.loc["2026-02", ["days_in_month", "guest_nights", "owner_nights", "available_nights"]].tolist() == [
        28, 3, 5, 23]
    assert paris.loc["2026-02", "occupancy_rate"] == pytest.approx(round(3 / 23, 4))
    assert paris.loc["2026-02", "blocked_rate"] == pytest.approx(round(8 / 28, 4))
    assert paris.loc["2026-03", ["guest_nights", "owner_nights"]].tolist() == [1, 0]
    # Every listing gets every month of the account's range, booked or not.
    idle = occupancy[occupancy["listing_id"] == KIRITIMATI]
    assert idle["month"].dt.strftime("%Y-%m").tolist() == ["2026-01", "2026-02", "2026-03"]
    assert idle["guest_nights"].sum() == 0 and (idle["occupancy_rate"] == 0).all()


def test_a_night_booked_twice_counts_once_and_an_owner_night_that_is_also_sold_counts_as_sold():
    reservations = pd.DataFrame([
        _reservation(60, PARIS, "new", "2026-05-01", "2026-05-03", 100.0),
        _reservation(61, PARIS, "new", "2026-05-02", "2026-05-04", 100.0),
        _reservation(62, PARIS, "ownerStay", "2026-05-03", "2026-05-05", 0.0),
    ])
    occupancy = compute.listing_occupancy_monthly(compute.reservation_nights(reservations, LISTINGS), LISTINGS)
    may = occupancy[occupancy["listing_id"] == PARIS].iloc[0]
    assert (may["guest_nights"], may["owner_nights"], may["available_nights"]) == (3, 1, 30)


def test_occupancy_starts_at_the_listings_creation_in_its_local_month():
    # Created 2026-01-31 20:00 UTC = 1 February 10:00 in Kiritimati: its first month is February.
    listings = _listings((PARIS, "Europe/Paris", "2025-01-01 00:00:00"),
                         (KIRITIMATI, "Pacific/Kiritimati", "2026-01-31 20:00:00"))
    reservations = pd.DataFrame([_reservation(70, PARIS, "new", "2026-01-05", "2026-01-06", 10.0),
                                 _reservation(71, PARIS, "new", "2026-03-05", "2026-03-06", 10.0)])
    occupancy = compute.listing_occupancy_monthly(compute.reservation_nights(reservations, LISTINGS), listings)
    months = occupancy.groupby("listing_id")["month"].apply(lambda m: m.dt.strftime("%Y-%m").tolist()).to_dict()
    assert months == {PARIS: ["2026-01", "2026-02", "2026-03"], KIRITIMATI: ["2026-02", "2026-03"]}


def test_revenue_is_split_by_night_month_channel_and_currency_and_never_adds_currencies():
    reservations = pd.DataFrame([
        _reservation(80, PARIS, "new", "2026-01-30", "2026-02-02", 100.00),  # 66.67 Jan, 33.33 Feb
        _reservation(81, PARIS, "modified", "2026-01-10", "2026-01-12", 250.00, currency="USD"),
        _reservation(82, PARIS, "new", "2026-01-15", "2026-01-16", 40.00, channel="bookingcom"),
        _reservation(83, PARIS, "ownerStay", "2026-01-20", "2026-01-25", 999.00),
    ])
    nights = compute.reservation_nights(reservations, LISTINGS)
    revenue = compute.revenue_monthly(nights, reservations)
    by_key = {(r.channel_name, r.month.strftime("%Y-%m"), r.currency): (r.nights_sold, r.reservations, r.revenue,
                                                                         r.adr)
              for r in revenue.itertuples()}
    assert by_key == {
        ("airbnbOfficial", "2026-01", "EUR"): (2, 1, 66.67, 33.34),
        ("airbnbOfficial", "2026-02", "EUR"): (1, 1, 33.33, 33.33),
        ("airbnbOfficial", "2026-01", "USD"): (2, 1, 250.00, 125.00),
        ("bookingcom", "2026-01", "EUR"): (1, 1, 40.00, 40.00),
    }


def test_a_cancellation_earns_its_payout_in_its_arrival_month_with_no_night():
    reservations = pd.DataFrame([
        _reservation(90, PARIS, "cancelled", "2026-01-31", "2026-02-03", 300.00, cancellation_payout=120.50),
        _reservation(91, PARIS, "cancelled", "2026-02-05", "2026-02-06", 80.00, channel="bookingcom"),
        _reservation(92, PARIS, "declined", "2026-02-05", "2026-02-06", 80.00, cancellation_payout=50.0),
        _reservation(93, PARIS, "new", "2026-01-02", "2026-01-03", 70.00),
    ])
    nights = compute.reservation_nights(reservations, LISTINGS)
    revenue = compute.revenue_monthly(nights, reservations)
    rows = {(r.channel_name, r.month.strftime("%Y-%m")): (r.nights_sold, r.revenue, r.cancelled_reservations,
                                                          r.cancellation_revenue)
            for r in revenue.itertuples()}
    assert rows == {
        ("airbnbOfficial", "2026-01"): (1, 70.00, 1, 120.50),
        ("bookingcom", "2026-02"): (0, 0.0, 1, 0.0),
    }
    jan = revenue[revenue["month"] == pd.Timestamp("2026-01-01")].iloc[0]
    assert jan["adr"] == 70.00  # the payout is not room revenue


def test_guest_nights_without_a_price_or_currency_are_left_out_of_revenue_not_counted_as_zero():
    reservations = pd.DataFrame([_reservation(95, PARIS, "new", "2026-06-01", "2026-06-03", None),
                                 _reservation(96, PARIS, "new", "2026-06-01", "2026-06-03", 50.0, currency=None)])
    nights = compute.reservation_nights(reservations, LISTINGS)
    assert nights["revenue"].isna().all() and len(nights) == 4
    assert compute.revenue_monthly(nights, reservations).empty


def _message(message_id: int, conversation_id: int, listing_id: int, incoming: bool, sent_at: str,
             status: str = "sent") -> dict:
    return {"account_id": ACCOUNT, "id": message_id, "conversation_id": conversation_id, "reservation_id": 500,
            "listing_id": listing_id, "is_incoming": incoming, "status": status, "sent_at": sent_at}


def test_each_guest_message_gets_the_first_sent_host_reply_after_it_in_its_conversation():
    messages = pd.DataFrame([
        _message(1, 100, PARIS, False, "2026-03-01 08:00:00"),  # host, before any guest message: not a reply
        _message(2, 100, PARIS, True, "2026-03-01 09:00:00"),
        _message(3, 100, PARIS, True, "2026-03-01 09:10:00"),
        _message(4, 100, PARIS, False, "2026-03-01 09:20:00", status="awaiting"),  # scheduled: not a reply
        _message(5, 200, PARIS, False, "2026-03-01 09:30:00"),  # another conversation: not a reply
        _message(6, 100, PARIS, False, "2026-03-01 10:00:00"),
        _message(7, 100, PARIS, True, "2026-03-01 23:00:00"),  # unanswered
    ])
    times = compute.guest_response_times(messages, LISTINGS).set_index("guest_message_id")
    assert times.loc[2, "reply_message_id"] == 6 and times.loc[2, "response_seconds"] == 3600
    assert times.loc[3, "reply_message_id"] == 6 and times.loc[3, "response_seconds"] == 3000
    assert pd.isna(times.loc[7, "reply_message_id"]) and pd.isna(times.loc[7, "response_seconds"])
    assert pd.isna(times.loc[7, "reply_at"])
    assert sorted(times.index) == [2, 3, 7]


def test_response_time_is_elapsed_time_across_a_night_and_a_month_boundary():
    messages = pd.DataFrame([_message(1, 100, PARIS, True, "2026-01-31 21:30:00"),
                             _message(2, 100, PARIS, False, "2026-02-01 07:15:00")])
    row = compute.guest_response_times(messages, LISTINGS).iloc[0]
    assert row["response_seconds"] == 9 * 3600 + 45 * 60
    # 21:30 UTC is 22:30 in Paris on 31 January: the guest message belongs to January.
    assert row["guest_message_local_time"] == pd.Timestamp("2026-01-31 22:30:00")
    assert row["month"] == pd.Timestamp("2026-01-01")


def test_local_time_and_month_follow_the_listings_zone_far_from_utc():
    messages = pd.DataFrame([
        _message(1, 100, KIRITIMATI, True, "2026-01-31 11:00:00"),  # 1 Feb 01:00 local (UTC+14)
        _message(2, 100, KIRITIMATI, False, "2026-01-31 12:30:00"),
        _message(3, 300, PAGO_PAGO, True, "2026-02-01 05:00:00"),  # 31 Jan 18:00 local (UTC-11)
        _message(4, 300, PAGO_PAGO, False, "2026-02-01 05:01:00"),
    ])
    times = compute.guest_response_times(messages, LISTINGS).set_index("guest_message_id")
    assert times.loc[1, "guest_message_local_time"] == pd.Timestamp("2026-02-01 01:00:00")
    assert times.loc[1, "month"] == pd.Timestamp("2026-02-01")
    assert times.loc[1, "response_seconds"] == 5400
    assert times.loc[3, "guest_message_local_time"] == pd.Timestamp("2026-01-31 18:00:00")
    assert times.loc[3, "month"] == pd.Timestamp("2026-01-01")
    assert times.loc[3, "time_zone_name"] == "Pacific/Pago_Pago"
    assert times.loc[1, "guest_message_at"] == pd.Timestamp("2026-01-31 11:00:00", tz="UTC")


def test_a_listing_without_a_known_zone_uses_utc_and_says_so():
    listings = _listings((PARIS, "Mars/Olympus_Mons", None))
    messages = pd.DataFrame([_message(1, 100, PARIS, True, "2026-01-31 23:30:00")])
    row = compute.guest_response_times(messages, listings).iloc[0]
    assert pd.isna(row["time_zone_name"])
    assert row["guest_message_local_time"] == pd.Timestamp("2026-01-31 23:30:00")
    assert row["month"] == pd.Timestamp("2026-01-01")
