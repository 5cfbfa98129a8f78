"""The one normalization step every Hostaway object passes before storage: a bad value costs one value.

Upstream sends what it sends (chat text holding NUL, ``NaN``, ids as floats, amounts no column holds,
timestamps with a zone or none that parse), and a sync that fails on one of them fails the same way on
every re-run: the account would never sync again. So nothing here raises on data:

* a row that is not an object, or has no usable id (an int, or a string of ASCII digits, within bigint),
  is skipped and counted (``rows_skipped``);
* in the whole object (what goes to ``raw``): NUL is removed from every string and field name, lone
  surrogates become U+FFFD, ``NaN``/``Infinity`` become null, and so do integers of more than
  ``MAX_INT_DIGITS`` digits, containers nested deeper than ``MAX_DEPTH`` and non-JSON values: jsonb
  cannot hold them. Each such value is counted (``values_quarantined``);
* typed columns are read from that cleaned object: a value their converter cannot read, or that the
  column cannot hold (beyond bigint or integer, beyond the numeric's precision, a non-finite float) is
  NULL in its column, stays in ``raw`` and is counted. Zoned timestamps are converted to UTC.

Counts carry a few examples naming the object id and the field, never a value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.type_api import to_instance

from hostaway_pipeline.storage.tables import SourceColumn

MAX_DEPTH = 32  # containers below the object; real payloads nest 4 deep
MAX_INT_DIGITS = 3000  # Python refuses to print ints of more than 4300 digits (json.dumps fails)
_INT_LIMIT = 10**MAX_INT_DIGITS
MAX_EXAMPLES = 5
BIGINT_RANGE = (-(2**63), 2**63 - 1)
INTEGER_RANGE = (-(2**31), 2**31 - 1)
SMALLINT_RANGE = (-(2**15), 2**15 - 1)

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class Tally:
    """What one batch cost: values quarantined and rows skipped, with a few examples (never values)."""

    values_quarantined: int = 0
    rows_skipped: int = 0
    quarantined_examples: list[str] = field(default_factory=list)
    skipped_examples: list[str] = field(default_factory=list)

    def quarantine(self, object_id: int, path: tuple[str | int, ...], reason: str) -> None:
        self.values_quarantined += 1
        if len(self.quarantined_examples) < MAX_EXAMPLES:
            self.quarantined_examples.append(f"id {object_id} {render_path(path)}: {reason}")

    def skip(self, position: int, reason: str) -> None:
        self.rows_skipped += 1
        if len(self.skipped_examples) < MAX_EXAMPLES:
            self.skipped_examples.append(f"row #{position}: {reason}")


def render_path(path: tuple[str | int, ...]) -> str:
    """``('Reservation', 'guestName')`` -> ``Reservation.guestName``; long or deep paths are shortened."""
    text = ""
    for index, part in enumerate(path):
        if index == 4:
            return text + "..."
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = clean_text(part)[0][:40]
            text += f".{name}" if text else name
    return text or "(object)"


def clean_text(text: str) -> tuple[str, str | None]:
    """``text`` without NUL, lone surrogates as U+FFFD (valid pairs joined); and why it changed, if it did."""
    reasons = []
    if "\x00" in text:
        text = text.replace("\x00", "")
        reasons.append("NUL removed")
    if _SURROGATE.search(text):
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        reasons.append("lone surrogate replaced")
    return text, " and ".join(reasons) or None


def usable_id(row: Any) -> tuple[int | None, str]:
    """The row's id as a bigint, or None and why not (never the value itself)."""
    if not isinstance(row, Mapping):
        return None, f"not an object ({type(row).__name__})"
    value = row.get("id")
    if value is None:
        return None, "no id"
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        return None, f"id is not an integer ({type(value).__name__})"
    if not BIGINT_RANGE[0] <= value <= BIGINT_RANGE[1]:
        return None, "id beyond bigint"
    return value, ""


def _plain(value: Any) -> bool:
    """A value that needs no cleaning, judged cheaply: most of every object (the fast path)."""
    kind = type(value)
    if kind is str:
        return value.isascii() and "\x00" not in value  # an ASCII string holds no surrogate
    return value is None or kind is bool or (kind is int and -_INT_LIMIT < value < _INT_LIMIT) or (
        kind is float and math.isfinite(value))


def clean_json(value: Any, object_id: int, tally: Tally, path: tuple[str | int, ...] = (), depth: int = 0) -> Any:
    """A copy of ``value`` that jsonb can hold; every value changed on the way is counted in ``tally``."""
    if _plain(value):
        return value
    if isinstance(value, str):
        text, reason = clean_text(value)
        if reason:
            tally.quarantine(object_id, path, reason)
        return text
    if isinstance(value, int):
        if not -_INT_LIMIT < value < _INT_LIMIT:
            tally.quarantine(object_id, path, f"integer longer than {MAX_INT_DIGITS} digits")
            return None
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            tally.quarantine(object_id, path, "NaN or Infinity")
            return None
        return value
    if isinstance(value, Mapping | list | tuple):
        if depth > MAX_DEPTH:
            tally.quarantine(object_id, path, f"nested deeper than {MAX_DEPTH} levels")
            return None
        if isinstance(value, Mapping):
            cleaned: dict[str, Any] = {}
            for key, item in value.items():
                name = key if type(key) is str else str(key)
                if not _plain(name):
                    name, reason = clean_text(name)
                    if reason:
                        tally.quarantine(object_id, (*path, name), f"field name: {reason}")
                if name in cleaned:
                    tally.quarantine(object_id, (*path, name), "field name repeated once cleaned (last kept)")
                cleaned[name] = item if _plain(item) else clean_json(item, object_id, tally, (*path, name), depth + 1)
            return cleaned
        return [item if _plain(item) else clean_json(item, object_id, tally, (*path, index), depth + 1)
                for index, item in enumerate(value)]
    tally.quarantine(object_id, path, f"not a JSON value ({type(value).__name__})")
    return None


class Unfit(ValueError):
    """A value the column cannot hold; the message says why and never holds the value."""


def fit_to_column(type_: Any, value: Any) -> Any:
    """``value`` as the column stores it, or :class:`Unfit` if the column cannot hold it."""
    if value is None:
        return None
    type_ = to_instance(type_)  # tables declare some types as classes (sa.BigInteger)
    if isinstance(type_, sa.Integer) and not isinstance(value, bool):
        low, high, name = (
            (*BIGINT_RANGE, "bigint") if isinstance(type_, sa.BigInteger)
            else (*SMALLINT_RANGE, "smallint") if isinstance(type_, sa.SmallInteger)
            else (*INTEGER_RANGE, "integer")
        )
        if not low <= value <= high:
            raise Unfit(f"beyond {name}")
    elif isinstance(type_, sa.Float):  # before Numeric: Float is a Numeric
        if not math.isfinite(value):
            raise Unfit("NaN or Infinity")
    elif isinstance(type_, sa.Numeric):
        value = _fit_numeric(value, type_)
    elif isinstance(type_, sa.String) and isinstance(value, str):
        value, reason = clean_text(value)
        if reason:  # cannot happen for text read from a cleaned object; no reason to store it if it did
            raise Unfit(reason)
    return value


def _fit_numeric(value: Decimal, type_: sa.Numeric) -> Decimal:
    if not value.is_finite():
        raise Unfit("NaN or Infinity")
    precision, scale = type_.precision, type_.scale or 0
    if precision is None:
        return value
    beyond = f"beyond {_type_name(type_)}"
    if value.adjusted() >= precision - scale:  # checked before quantize: a huge exponent would not quantize
        raise Unfit(beyond)
    rounded = value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)  # as Postgres rounds
    if rounded.adjusted() >= precision - scale:  # 999999999999.995 rounds up out of range
        raise Unfit(beyond)
    return rounded


def typed_values(columns: tuple[SourceColumn, ...], source: Mapping[str, Any], object_id: int,
                 tally: Tally) -> dict[str, Any]:
    """Each typed column's value from the cleaned object: NULL (and counted) where it cannot be read or held."""
    values: dict[str, Any] = {}
    for column in columns:
        try:
            values[column.name] = fit_to_column(column.type_, column.convert(source.get(column.source_key)))
        except Unfit as unfit:
            values[column.name] = None
            tally.quarantine(object_id, (column.source_key,), str(unfit))
        except (TypeError, ValueError, ArithmeticError):  # converters name the value: their message stays here
            values[column.name] = None
            tally.quarantine(object_id, (column.source_key,), f"unreadable as {_type_name(column.type_)}")
    return values


def _type_name(type_: Any) -> str:
    type_ = to_instance(type_)
    if isinstance(type_, sa.DateTime):
        return "timestamptz" if type_.timezone else "timestamp"
    try:
        return str(type_.compile(dialect=postgresql.dialect())).lower()
    except Exception:  # an unknown type: its class name will do
        return type(type_).__name__
