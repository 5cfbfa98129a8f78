"""docs/data_dictionary.md says what the tables say."""

from __future__ import annotations

from pathlib import Path

from hostaway_pipeline.storage.data_dictionary import render


def test_the_committed_data_dictionary_is_up_to_date():
    committed = Path(__file__).resolve().parents[2] / "docs" / "data_dictionary.md"
    assert committed.read_text() == render(), (
        "regenerate: python -m hostaway_pipeline.storage.data_dictionary > docs/data_dictionary.md"
    )
