"""The analyst tables as pure pandas: DataFrames of live ``hostaway`` rows in, one table's DataFrame out.

No database and no Dagster here (``analytics/refresh.py`` reads and writes, ``defs/analytics_assets.py``
orchestrates), so each rule in ``docs/analytics.md`` is tested on hand-made frames. Inputs need only the
columns named in each function's docstring, with plain Python or pandas values (dates as ``date`` or
``YYYY-MM-DD``, instants as zone-aware timestamps or UTC strings). Money is handled in integer cents,
so a reservation's nights add up to its price exactly; amounts leave as floats rounded to the cent.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

# A sold night: Hostaway's confirmed statuses (``modified`` is a confirmed booking changed after booking).
GUEST_STAY_STATUSES = frozenset({"new", "modified"})
# Blocks the calendar, earns nothing.
OWNER_STAY_STATUSES = frozenset({"ownerStay"})
CANCELLED_STATUSES = frozenset({"cancelled"})
UNKNOWN_CHANNEL = "unknown"

RESERVATION_NIGHTS_COLUMNS = ["account_id", "reservation_id", "night_date", "listing_id", "month", "stay_type",
                              "status", "channel_id", "channel_name", "revenue", "currency", "time_zone_name"]
OCCUPANCY_COLUMNS = ["account_id", "listing_id", "month", "days_in_month", "guest_nights", "owner_nights",
                     "available_nights", "occupancy_rate", "blocked_rate", "time_zone_name"]
REVENUE_COLUMNS = ["account_id", "listing_id", "channel_name", "month", "currency", "channel_id", "nights_sold",
                   "reservations", "revenue", "adr", "cancelled_reservations", "cancellation_revenue"]
RESPONSE_TIME_COLUMNS = ["account_id", "guest_message_id", "conversation_id", "reservation_id", "listing_id",
                         "guest_message_at", "guest_message_local_time", "month", "reply_message_id", "reply_at",
                         "response_seconds", "time_zone_name"]


def _dates(values: pd.Series) -> pd.Series:
    """Calendar dates as naive midnight timestamps (NaT when missing or unreadable)."""
    return pd.to_datetime(values, errors="coerce").dt.tz_localize(None).dt.normalize()


def _instants(values: pd.Series) -> pd.Series:
    """Instants as UTC timestamps; naive values are UTC (Hostaway's convention)."""
    return pd.to_datetime(values, errors="coerce", utc=True)


def _cents(values: pd.Series) -> pd.Series:
    return (pd.to_numeric(values, errors="coerce") * 100).round().astype("Int64")


def _from_cents(cents: pd.Series) -> pd.Series:
    return cents.astype("Float64") / 100


def _month_start(dates: pd.Series) -> pd.Series:
    return dates.dt.to_period("M").dt.to_timestamp()


def usable_zone(name: object) -> str | None:
    """The IANA zone name when Python knows it, else None (the caller falls back to UTC and says so)."""
    if not isinstance(name, str) or not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def _listing_zones(listings: pd.DataFrame) -> pd.Series:
    """listing id -> usable IANA zone name (None when missing or unknown)."""
    if listings.empty:
        return pd.Series(dtype="object")
    zones = listings.set_index(pd.to_numeric(listings["id"]).astype("int64"))["time_zone_name"]
    return zones.map(usable_zone).astype("object")


def _stay_type(status: pd.Series) -> pd.Series:
    stay = pd.Series(pd.NA, index=status.index, dtype="string")
    stay[status.isin(GUEST_STAY_STATUSES)] = "guest"
    stay[status.isin(OWNER_STAY_STATUSES)] = "owner"
    return stay


def reservation_nights(reservations: pd.DataFrame, listings: pd.DataFrame) -> pd.DataFrame:
    """One row per night of each confirmed guest stay and owner stay.

    reservations: account_id, id, listing_id, channel_id, channel_name, status, arrival_date, departure_date,
    nights, total_price, currency. listings: id, time_zone_name.

    Hostaway's arrival and departure dates are already the listing's local calendar dates: the nights are
    arrival .. departure - 1 with no zone conversion (departure missing: arrival + ``nights``). A guest
    stay's price is split evenly over its nights in cents, the leftover cents going to the first nights;
    owner stays earn 0; a guest night whose price or currency is unknown has revenue NULL.
    """
    if reservations.empty:
        return pd.DataFrame(columns=RESERVATION_NIGHTS_COLUMNS)
    frame = reservations.copy()
    frame["stay_type"] = _stay_type(frame["status"].astype("string"))
    frame = frame[frame["stay_type"].notna()].copy()
    arrival = _dates(frame["arrival_date"])
    departure = _dates(frame["departure_date"])
    stated_nights = pd.to_numeric(frame["nights"], errors="coerce")
    departure = departure.fillna(arrival + pd.to_timedelta(stated_nights, unit="D"))
    frame["arrival"] = arrival
    frame["night_count"] = (departure - arrival).dt.days
    frame = frame[frame["night_count"].notna() & (frame["night_count"] > 0)].copy()
    if frame.empty:
        return pd.DataFrame(columns=RESERVATION_NIGHTS_COLUMNS)
    frame["night_count"] = frame["night_count"].astype("int64")

    nights = frame.loc[frame.index.repeat(frame["night_count"])].copy()
    offset = nights.groupby(level=0).cumcount()
    nights["night_date"] = nights["arrival"] + pd.to_timedelta(offset.to_numpy(), unit="D")

    cents = _cents(nights["total_price"])
    base = cents // nights["night_count"]
    leftover = cents - base * nights["night_count"]
    night_cents = base + (pd.Series(offset.to_numpy(), index=nights.index) < leftover).astype("Int64")
    night_cents = night_cents.where(nights["currency"].notna(), pd.NA)
    night_cents = night_cents.where(nights["stay_type"] == "guest", 0)
    nights["revenue"] = _from_cents(night_cents)

    zones = _listing_zones(listings)
    listing_ids = pd.to_numeric(nights["listing_id"], errors="coerce").astype("Int64")
    result = pd.DataFrame({
        "account_id": nights["account_id"].astype("int64"),
        "reservation_id": nights["id"].astype("int64"),
        "night_date": nights["night_date"],
        "listing_id": listing_ids,
        "month": _month_start(nights["night_date"]),
        "stay_type": nights["stay_type"].astype("string"),
        "status": nights["status"].astype("string"),
        "channel_id": pd.to_numeric(nights["channel_id"], errors="coerce").astype("Int64"),
        "channel_name": nights["channel_name"].astype("string").fillna(UNKNOWN_CHANNEL),
        "revenue": nights["revenue"],
        "currency": nights["currency"].astype("string"),
        "time_zone_name": listing_ids.map(zones).astype("string"),
    })
    return result.sort_values(["reservation_id", "night_date"]).reset_index(drop=True)


def excluded_reservations(reservations: pd.DataFrame) -> dict[str, int]:
    """How many reservations have no nights, by reason: their status, or unusable dates."""
    if reservations.empty:
        return {}
    status = reservations["status"].astype("string").fillna("(none)")
    stay = _stay_type(status)
    counts = status[stay.isna()].value_counts().to_dict()
    kept = reservations[stay.notna()]
    arrival = _dates(kept["arrival_date"])
    departure = _dates(kept["departure_date"]).fillna(
        arrival + pd.to_timedelta(pd.to_numeric(kept["nights"], errors="coerce"), unit="D"))
    night_count = (departure - arrival).dt.days
    unusable = int((night_count.isna() | (night_count <= 0)).sum())
    if unusable:
        counts["(no usable dates)"] = unusable
    return {str(key): int(value) for key, value in sorted(counts.items())}


def listing_occupancy_monthly(nights: pd.DataFrame, listings: pd.DataFrame) -> pd.DataFrame:
    """Occupancy per listing and local month, from :func:`reservation_nights` rows.

    listings: account_id, id, time_zone_name, inserted_on. Months run from the account's first booked night
    (or the listing's creation in its local time, when later, unless it has earlier nights) to the last.
    A night booked twice counts once; an owner night that is also sold counts as sold.
    """
    if nights.empty:
        return pd.DataFrame(columns=OCCUPANCY_COLUMNS)
    nights = nights[nights["listing_id"].notna()].copy()
    nights["night_date"] = _dates(nights["night_date"])
    account_id = int(nights["account_id"].iloc[0])
    first_month = _month_start(nights["night_date"]).min()
    last_month = _month_start(nights["night_date"]).max()

    zones = _listing_zones(listings)
    listing_ids = set(pd.to_numeric(listings["id"]).astype("int64")) | set(nights["listing_id"].astype("int64"))
    created_month: dict[int, pd.Timestamp] = {}
    if not listings.empty and "inserted_on" in listings:
        inserted = _instants(listings["inserted_on"])
        for listing_id, instant in zip(pd.to_numeric(listings["id"]).astype("int64"), inserted, strict=True):
            if pd.notna(instant):
                local = instant.tz_convert(zones.get(listing_id) or "UTC").tz_localize(None)
                created_month[listing_id] = local.to_period("M").to_timestamp()

    guest_days = nights[nights["stay_type"] == "guest"].groupby("listing_id")["night_date"].agg(set)
    owner_days = nights[nights["stay_type"] == "owner"].groupby("listing_id")["night_date"].agg(set)
    rows = []
    for listing_id in sorted(listing_ids):
        sold: set = guest_days.get(listing_id, set())
        owned: set = owner_days.get(listing_id, set()) - sold
        start = max(first_month, created_month.get(listing_id, first_month))
        booked = sold | owned
        if booked:
            start = min(start, min(booked).to_period("M").to_timestamp())
        for month in pd.date_range(start, last_month, freq="MS"):
            days = month.days_in_month
            month_end = month + pd.offsets.MonthBegin(1)
            guest = sum(1 for day in sold if month <= day < month_end)
            owner = sum(1 for day in owned if month <= day < month_end)
            available = days - owner
            rows.append({
                "account_id": account_id, "listing_id": listing_id, "month": month, "days_in_month": days,
                "guest_nights": guest, "owner_nights": owner, "available_nights": available,
                "occupancy_rate": round(guest / available, 4) if available else None,
                "blocked_rate": round((guest + owner) / days, 4),
                "time_zone_name": zones.get(listing_id),
            })
    result = pd.DataFrame(rows, columns=OCCUPANCY_COLUMNS)
    result["occupancy_rate"] = result["occupancy_rate"].astype("Float64")
    result["time_zone_name"] = result["time_zone_name"].astype("string")
    return result


def revenue_monthly(nights: pd.DataFrame, reservations: pd.DataFrame) -> pd.DataFrame:
    """Revenue per listing, channel, local month and currency.

    nights: :func:`reservation_nights` rows (guest nights with a price and currency count). reservations:
    account_id, id, listing_id, channel_id, channel_name, status, arrival_date, currency, cancellation_payout
    (the host's payout of a cancelled stay, e.g. Airbnb ``airbnbListingCancellationPayout``; NULL = 0).
    Amounts of different currencies are never added: currency is part of the row's key.
    """
    keys = ["account_id", "listing_id", "channel_name", "month", "currency"]
    sold = nights[(nights["stay_type"] == "guest") & nights["revenue"].notna() & nights["currency"].notna()
                  & nights["listing_id"].notna()].copy() if not nights.empty else nights
    if sold.empty:
        sold_groups = pd.DataFrame(columns=[*keys, "channel_id", "nights_sold", "reservations", "revenue_cents"])
    else:
        sold["month"] = _dates(sold["month"])
        sold["cents"] = _cents(sold["revenue"])
        sold_groups = sold.groupby(keys, dropna=False).agg(
            channel_id=("channel_id", "max"), nights_sold=("night_date", "size"),
            reservations=("reservation_id", "nunique"), revenue_cents=("cents", "sum")).reset_index()

    cancelled = reservations[reservations["status"].astype("string").isin(CANCELLED_STATUSES)].copy() \
        if not reservations.empty else reservations
    if not cancelled.empty:
        cancelled["month"] = _month_start(_dates(cancelled["arrival_date"]))
        cancelled = cancelled[cancelled["month"].notna() & cancelled["currency"].notna()
                              & cancelled["listing_id"].notna()].copy()
    if cancelled.empty:
        cancelled_groups = pd.DataFrame(columns=[*keys, "cancel_channel_id", "cancelled_reservations",
                                                 "cancellation_cents"])
    else:
        cancelled["channel_name"] = cancelled["channel_name"].astype("string").fillna(UNKNOWN_CHANNEL)
        cancelled["cents"] = _cents(cancelled["cancellation_payout"]).fillna(0).clip(lower=0)
        cancelled_groups = cancelled.groupby(keys, dropna=False).agg(
            cancel_channel_id=("channel_id", "max"), cancelled_reservations=("id", "size"),
            cancellation_cents=("cents", "sum")).reset_index()

    for frame in (sold_groups, cancelled_groups):
        frame["account_id"] = frame["account_id"].astype("int64")
        frame["listing_id"] = frame["listing_id"].astype("int64")
        frame["channel_name"] = frame["channel_name"].astype("string")
        frame["currency"] = frame["currency"].astype("string")
        frame["month"] = pd.to_datetime(frame["month"])
    merged = sold_groups.merge(cancelled_groups, on=keys, how="outer")
    if merged.empty:
        return pd.DataFrame(columns=REVENUE_COLUMNS)
    nights_sold = merged["nights_sold"].fillna(0).astype("int64")
    revenue_cents = merged["revenue_cents"].fillna(0).astype("int64")
    adr = pd.Series([round(c / n / 100, 2) if n else None for c, n in zip(revenue_cents, nights_sold, strict=True)],
                    index=merged.index, dtype="Float64")
    result = pd.DataFrame({
        **{key: merged[key] for key in keys},
        "channel_id": pd.to_numeric(merged["channel_id"].fillna(merged["cancel_channel_id"]),
                                    errors="coerce").astype("Int64"),
        "nights_sold": nights_sold,
        "reservations": merged["reservations"].fillna(0).astype("int64"),
        "revenue": revenue_cents / 100,
        "adr": adr,
        "cancelled_reservations": merged["cancelled_reservations"].fillna(0).astype("int64"),
        "cancellation_revenue": merged["cancellation_cents"].fillna(0).astype("int64") / 100,
    })
    return result.sort_values(keys).reset_index(drop=True)[REVENUE_COLUMNS]


def guest_response_times(messages: pd.DataFrame, listings: pd.DataFrame) -> pd.DataFrame:
    """Each incoming guest message with the first sent host message after it in the same conversation.

    messages: account_id, id, conversation_id, reservation_id, listing_id, is_incoming, status, sent_at.
    listings: id, time_zone_name. Elapsed wall-clock time, not business hours (docs/analytics.md says why);
    local time and month use the listing's zone (UTC when unknown). Scheduled, failed and cancelled host
    messages are not replies; several guest messages before one reply each get that reply.
    """
    if messages.empty:
        return pd.DataFrame(columns=RESPONSE_TIME_COLUMNS)
    frame = messages.copy()
    frame["sent_at"] = _instants(frame["sent_at"])
    frame = frame[frame["sent_at"].notna() & frame["conversation_id"].notna() & frame["is_incoming"].notna()]
    frame["conversation_id"] = frame["conversation_id"].astype("int64")
    incoming = frame["is_incoming"].astype(bool)
    guests = frame[incoming].sort_values("sent_at")
    hosts = frame[~incoming & (frame["status"].astype("string") == "sent")].sort_values("sent_at")
    if guests.empty:
        return pd.DataFrame(columns=RESPONSE_TIME_COLUMNS)
    replies = hosts[["conversation_id", "id", "sent_at"]].rename(
        columns={"id": "reply_message_id", "sent_at": "reply_at"})
    replies["reply_key"] = replies["reply_at"]
    paired = pd.merge_asof(guests, replies.sort_values("reply_key"), left_on="sent_at", right_on="reply_key",
                           by="conversation_id", direction="forward", allow_exact_matches=False)

    zones = _listing_zones(listings)
    listing_ids = pd.to_numeric(paired["listing_id"], errors="coerce").astype("Int64")
    zone_names = listing_ids.map(zones).astype("object").where(listing_ids.notna(), None)
    local = pd.Series(pd.NaT, index=paired.index, dtype="datetime64[us]")
    for zone in pd.unique(zone_names.fillna("UTC")):
        mask = zone_names.fillna("UTC") == zone
        local[mask] = paired.loc[mask, "sent_at"].dt.tz_convert(zone).dt.tz_localize(None).astype("datetime64[us]")
    response = (paired["reply_at"] - paired["sent_at"]).dt.total_seconds()
    result = pd.DataFrame({
        "account_id": paired["account_id"].astype("int64"),
        "guest_message_id": paired["id"].astype("int64"),
        "conversation_id": paired["conversation_id"],
        "reservation_id": pd.to_numeric(paired["reservation_id"], errors="coerce").astype("Int64"),
        "listing_id": listing_ids,
        "guest_message_at": paired["sent_at"],
        "guest_message_local_time": local,
        "month": _month_start(local),
        "reply_message_id": pd.to_numeric(paired["reply_message_id"], errors="coerce").astype("Int64"),
        "reply_at": paired["reply_at"],
        "response_seconds": response.astype("Float64"),
        "time_zone_name": zone_names.astype("string"),
    })
    return result.sort_values("guest_message_id").reset_index(drop=True)
