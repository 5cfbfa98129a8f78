"""The normalization step on its own: what it cleans, refuses and names (never a value)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from hostaway_pipeline.storage import normalize, tables
from hostaway_pipeline.storage.normalize import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    Tally,
    Unfit,
    clean_json,
    clean_text,
    fit_to_column,
)

MONEY = sa.Numeric(14, 2)


def test_a_lone_surrogate_is_replaced_and_a_split_pair_joined():
    assert clean_text("a\udc80b") == ("a\ufffdb", "lone surrogate replaced")
    assert clean_text("\ud83c\udfd6") == ("\U0001f3d6", "lone surrogate replaced")
    assert clean_text("Zoë 東京 🏖️") == ("Zoë 東京 🏖️", None)


@pytest.mark.parametrize(("amount", "stored"), [("999999999999.994", Decimal("999999999999.99")),
                                                ("0.005", Decimal("0.01")), ("-0.005", Decimal("-0.01"))])
def test_an_amount_is_rounded_half_away_from_zero_as_postgres_rounds_it(amount, stored):
    assert fit_to_column(MONEY, Decimal(amount)) == stored


@pytest.mark.parametrize("amount", ["999999999999.995", "1e12", "-1e12", "1e999999"])
def test_an_amount_that_rounds_beyond_the_precision_is_refused(amount):
    with pytest.raises(Unfit, match=r"beyond numeric\(14, 2\)"):
        fit_to_column(MONEY, Decimal(amount))


def test_only_ascii_digits_make_a_usable_id():
    assert normalize.usable_id({"id": "\u0661\u0662"}) == (None, "id is not an integer (str)")  # int() would read 12
    assert normalize.usable_id({"id": " 12 "}) == (12, "")
    assert normalize.usable_id({"id": True}) == (None, "id is not an integer (bool)")


def test_nesting_beyond_the_bound_is_cut_once_and_named_by_a_short_path():
    value: object = "leaf"
    for _ in range(MAX_DEPTH + 50):
        value = {"k": value}
    tally = Tally()
    cleaned = clean_json({"id": 1, "deep": value}, 1, tally)
    depth = 0
    node = cleaned["deep"]
    while isinstance(node, dict):
        node, depth = node["k"], depth + 1
    assert node is None and depth == MAX_DEPTH
    assert tally.values_quarantined == 1
    assert tally.quarantined_examples == [f"id 1 deep.k.k.k...: nested deeper than {MAX_DEPTH} levels"]


def test_the_raw_column_comment_states_the_bounds_normalization_applies():
    for entity in tables.ENTITY_TABLES.values():
        comment = entity.table.c.raw.comment
        assert f"more than {MAX_INT_DIGITS} digits" in comment and f"deeper than {MAX_DEPTH} levels" in comment
