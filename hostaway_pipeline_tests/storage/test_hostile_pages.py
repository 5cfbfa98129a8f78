"""Property: a hostile page never stops a write. Every good row is stored, every bad value costs that value
and is counted once, every row that is not an object or has no usable id is skipped and counted; against
real Postgres.

Each generated page holds good rows (valid values for the entity's typed columns, zoned timestamps among
them) into which bad values are injected: NUL and lone surrogates (typed text and raw-only fields),
NaN/Infinity, integers beyond bigint or integer, amounts beyond numeric(14,2), unreadable timestamps,
dates, flags and integers, "NaN"/"Infinity"/"1e400" as text in a float or amount column, nesting deeper
than the bound, integers too long to print and NUL in field names; and rows that are not objects or whose
id is missing, not an integer or beyond bigint. What each typed column and ``raw`` must hold is worked out
here, independently of the writer.
"""

from __future__ import annotations

import itertools
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.sql.type_api import to_instance

from hostaway_pipeline.settings import ALWAYS_REDACTED_FIELDS
from hostaway_pipeline.storage import tables
from hostaway_pipeline.storage.entity_writer import EntityWriter
from hostaway_pipeline.storage.normalize import MAX_DEPTH, MAX_INT_DIGITS
from hostaway_pipeline.storage.redaction import Redactor

MAX_EXAMPLES = 200
_accounts = itertools.count(900_000)  # a fresh account per example: the engine fixture truncates per test only

SAFE_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
BIGINT = (-(2**63), 2**63 - 1)


def kind_of(column: tables.SourceColumn) -> str:
    type_ = to_instance(column.type_)
    for name, cls in (("bigint", sa.BigInteger), ("integer", sa.Integer), ("float", sa.Float),
                      ("numeric", sa.Numeric), ("bool", sa.Boolean), ("timestamp", sa.DateTime),
                      ("date", sa.Date), ("text", sa.Text)):
        if isinstance(type_, cls):
            return name
    raise AssertionError(f"no generator for column {column.name}")


def good_value(draw, kind: str) -> tuple[Any, Any]:
    """A valid source value for a column kind, and what the typed column must hold."""
    if kind == "text":
        text = draw(SAFE_TEXT)
        return text, text
    if kind in ("bigint", "integer"):
        bits = 63 if kind == "bigint" else 31
        number = draw(st.integers(-(2**bits), 2**bits - 1))
        return (draw(st.sampled_from([number, str(number)])) if number >= 0 else number), number
    if kind == "numeric":
        cents = draw(st.integers(-(10**14) + 1, 10**14 - 1))
        return draw(st.sampled_from([cents / 100, str(Decimal(cents) / 100)])), Decimal(cents) / 100
    if kind == "float":
        number = draw(st.floats(allow_nan=False, allow_infinity=False))
        return number, number
    if kind == "bool":
        flag = draw(st.sampled_from([0, 1, "0", "1", True, False]))
        return flag, bool(int(flag))
    if kind == "date":
        day = draw(st.dates())
        return day.isoformat(), day
    moment = draw(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1))).replace(microsecond=0)
    if draw(st.booleans()):  # Hostaway's form: UTC without a zone
        return moment.strftime("%Y-%m-%d %H:%M:%S"), moment.replace(tzinfo=UTC)
    zoned = moment.replace(tzinfo=timezone(timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60)))))
    return zoned.isoformat(sep=draw(st.sampled_from([" ", "T"]))), zoned.astimezone(UTC)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def cut(value: Any, depth: int = 1) -> Any:
    """A field's value (depth 1) as raw must hold it: containers deeper than the bound become null."""
    if isinstance(value, dict | list) and depth > MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {key: cut(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [cut(item, depth + 1) for item in value]
    return value


def bad_value(draw, name: str) -> tuple[Any, Any, Any]:
    """A bad value: (what the source says, what its typed column must hold, what raw must hold)."""
    before, after = draw(SAFE_TEXT), draw(SAFE_TEXT)
    if name == "nul":
        return f"{before}\x00{after}\x00", before + after, before + after
    if name == "surrogate":
        lone = chr(draw(st.integers(0xD800, 0xDFFF)))
        return before + lone + after, before + "\ufffd" + after, before + "\ufffd" + after
    if name == "nonfinite":
        return draw(st.sampled_from([math.nan, math.inf, -math.inf])), None, None
    if name == "nonfinite_text":  # jsonb holds these strings; the float or numeric column cannot
        text = draw(st.sampled_from(["NaN", "Infinity", "-inf", "1e400", "-1e999"]))
        return text, None, text
    if name == "beyond_bigint":
        number = draw(st.one_of(st.integers(2**63, 10**40), st.integers(-(10**40), -(2**63) - 1)))
        return number, None, number
    if name == "beyond_integer":
        number = draw(st.one_of(st.integers(2**31, 2**63 - 1), st.integers(-(2**63), -(2**31) - 1)))
        return number, None, number
    if name == "beyond_amount":
        amount = draw(st.one_of(st.integers(10**12, 10**30), st.integers(-(10**30), -(10**12)),
                                st.sampled_from([999999999999.995, 1e15, "1e20", "-1E+12"])))
        return amount, None, amount
    if name == "bad_timestamp":
        text = draw(st.sampled_from(["0000-00-00 00:00:00", "2026-02-30 10:00:00", "yesterday", "2026-13-01",
                                     "0001-01-01 00:00:00+05:00", "12:30", "x" + before]))
        return text, None, text
    if name == "bad_date":
        text = draw(st.sampled_from(["2026-99-99", "0000-00-00", "soon", "x" + before]))
        return text, None, text
    if name == "bad_bool":
        flag = draw(st.sampled_from([2, -1, "yes", "true", 0.5, [1], {"a": 1}]))
        return flag, None, flag
    if name == "bad_integer":
        number = draw(st.sampled_from(["abc", 1.5, "1e3", [1], {"a": 1}, "12,5", "x" + before]))
        return number, None, number
    if name == "deep":
        deep = nested(draw(st.integers(MAX_DEPTH + 1, MAX_DEPTH + 200)))
        return deep, None, cut(deep)
    if name == "huge_int":
        return draw(st.integers(10**MAX_INT_DIGITS, 10 ** (MAX_INT_DIGITS + 40))), None, None
    raise AssertionError(name)


# Each bad value, and the column kinds it goes into; () = only a raw-only field. Those in RAW_TOO may go
# into either.
BAD_VALUES: dict[str, tuple[str, ...]] = {
    "nul": ("text",), "surrogate": ("text",),
    "nonfinite": ("float", "numeric"), "nonfinite_text": ("float", "numeric"),
    "beyond_bigint": ("bigint",), "beyond_integer": ("integer",), "beyond_amount": ("numeric",),
    "bad_timestamp": ("timestamp",), "bad_date": ("date",), "bad_bool": ("bool",),
    "bad_integer": ("bigint", "integer"), "deep": (), "huge_int": (),
}
RAW_TOO = {"nul", "surrogate", "nonfinite", "deep"}

UNUSABLE_ROWS = st.one_of(
    st.none(), st.integers(), SAFE_TEXT, st.lists(st.integers(), max_size=3), st.floats(),
    st.fixed_dictionaries({  # bad values in a skipped row are not looked at, so not counted
        "id": st.sampled_from([None, 1.5, True, "abc", "12a", 2**63, -(2**63) - 1, [1], "\u0661\u0662", {"x": 1},
                               "", " "]),
        "body": st.just("\x00"), "updatedOn": st.just("never")}),
    st.fixed_dictionaries({"name": SAFE_TEXT}),
)


@st.composite
def hostile_pages(draw) -> dict[str, Any]:
    entity = tables.ENTITY_TABLES[draw(st.sampled_from(sorted(tables.ENTITY_TABLES)))]
    kinds = {column.name: kind_of(column) for column in entity.source_columns}
    good: list[dict[str, Any]] = []
    bad_values = 0
    for object_id in draw(st.lists(st.integers(*BIGINT), unique=True, max_size=6)):
        given_id = draw(st.sampled_from([object_id, f" {object_id} "])) if object_id >= 0 else object_id
        source: dict[str, Any] = {"id": given_id}
        raw: dict[str, Any] = {"id": given_id}
        typed: dict[str, Any] = {}
        for column in entity.source_columns:
            typed[column.name] = None
            if draw(st.integers(0, 9)):  # one field in ten is absent
                source[column.source_key], typed[column.name] = good_value(draw, kinds[column.name])
                raw[column.source_key] = source[column.source_key]
        taken: set[str] = set()
        for name in draw(st.lists(st.sampled_from(sorted(BAD_VALUES)), unique=True, max_size=5)):
            targets = [c for c in entity.source_columns if kinds[c.name] in BAD_VALUES[name] and c.name not in taken]
            if targets and (name not in RAW_TOO or draw(st.booleans())):
                column = draw(st.sampled_from(targets))
                taken.add(column.name)
                source[column.source_key], typed[column.name], raw[column.source_key] = bad_value(draw, name)
            elif name in RAW_TOO or not BAD_VALUES[name]:
                source[f"x_{name}"], _, raw[f"x_{name}"] = bad_value(draw, name)
            else:
                continue  # the entity has no column of that kind left
            bad_values += 1
        if draw(st.booleans()):  # NUL in a field name: the name is cleaned, the value kept
            source["x_na\x00me"] = raw["x_name"] = draw(SAFE_TEXT)
            bad_values += 1
        good.append({"id": object_id, "source": source, "raw": raw, "typed": typed})
    unusable = draw(st.lists(UNUSABLE_ROWS, max_size=4))
    page = [row["source"] for row in good] + unusable
    order = draw(st.permutations(range(len(page))))
    return {"entity": entity, "page": [page[i] for i in order], "good": good, "bad_values": bad_values,
            "unusable": len(unusable)}


def canonical(value: Any) -> Any:
    """JSON as jsonb gives it back: numbers compared as exact decimals (1e22 comes back as 10**22)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    return [canonical(item) for item in value]


QUARANTINED_EXAMPLE = re.compile(r"id -?\d+ [\w.\[\]]+: [\w ,():]+")
SKIPPED_EXAMPLE = re.compile(r"row #\d+: [\w ()]+")


@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(case=hostile_pages())
def test_a_hostile_page_costs_its_bad_values_and_unusable_rows_never_the_write(engine, case):
    account = next(_accounts)
    entity = case["entity"]
    writer = EntityWriter(engine, Redactor(ALWAYS_REDACTED_FIELDS))

    counts = writer.write(entity.name, account, case["page"])

    assert counts.rows_skipped == case["unusable"]
    assert counts.values_quarantined == case["bad_values"]
    assert counts.inserted == len(case["good"])
    table = entity.table
    with engine.connect() as connection:
        rows = {row.id: row for row in connection.execute(sa.select(table).where(table.c.account_id == account))}
    assert set(rows) == {expected["id"] for expected in case["good"]}
    for expected in case["good"]:
        row = rows[expected["id"]]
        assert {name: getattr(row, name) for name in expected["typed"]} == expected["typed"]
        assert canonical(row.raw) == canonical(expected["raw"])
    for example in counts.quarantined_examples:  # ids and field names, never a value
        assert QUARANTINED_EXAMPLE.fullmatch(example), example
    for example in counts.skipped_examples:
        assert SKIPPED_EXAMPLE.fullmatch(example), example

