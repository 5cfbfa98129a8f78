"""Converters from Hostaway's JSON values to Postgres column values.

Hostaway sends booleans as 0/1, timestamps as zone-less ``YYYY-MM-DD HH:MM:SS`` in UTC, calendar dates
as ``YYYY-MM-DD`` and money as int or float. Each converter accepts ``None`` and returns ``None``; a value
that cannot be read raises ``ValueError`` naming it. The writer (see ``normalize``) turns that into NULL in
the typed column, keeps the value in ``raw`` and counts it: one bad value never stops a sync.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

HOSTAWAY_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def to_timestamp(value: Any) -> datetime | None:
    """``'2026-03-01 12:30:00'`` (UTC, no zone) -> aware ``datetime``; empty strings read as ``None``.

    Any ISO 8601 form is read (``T`` or space, fractions, date only); a zone or offset is honoured and
    the moment converted to UTC, never dropped.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a Hostaway timestamp: {text!r}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # '0001-01-01 00:00:00+05:00' is before year 1 in UTC
        raise ValueError(f"timestamp out of range in UTC: {value!r}") from None


def format_timestamp(moment: datetime) -> str:
    """An aware or UTC-naive ``datetime`` -> Hostaway's zone-less UTC text."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime(HOSTAWAY_TIMESTAMP_FORMAT)


def to_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"not a Hostaway date: {value!r}") from None


def to_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):
        return bool(int(value))
    raise ValueError(f"not a Hostaway 0/1 flag: {value!r}")


def to_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"not an integer: {value!r}")
    return int(value)


def to_decimal(value: Any) -> Decimal | None:
    """Money and ratings: ``Decimal(str(x))`` keeps what JSON said (``12.1`` stays ``12.1``)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:  # an ArithmeticError, not a ValueError: the writer would not name the field
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():  # NaN/Infinity are no amount (and Infinity fails the numeric column)
        raise ValueError(f"not a number: {value!r}")
    return number


def to_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def to_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
