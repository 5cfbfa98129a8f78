"""Renders the data dictionary (docs/data_dictionary.md) from the table declarations and their comments.

``python -m hostaway_pipeline.storage.data_dictionary > docs/data_dictionary.md``; a test keeps the
committed file equal to what the tables say.
"""

from __future__ import annotations

import sqlalchemy as sa

from hostaway_pipeline.storage.tables import metadata


def _type_name(column: sa.Column) -> str:
    type_ = column.type
    if isinstance(type_, sa.DateTime) and type_.timezone:
        return "timestamptz"
    compiled = type_.compile(dialect=sa.dialects.postgresql.dialect())
    return compiled.lower()


def render() -> str:
    lines = [
        "# Data dictionary: schema `hostaway`",
        "",
        "Generated from `hostaway_pipeline/storage/tables.py` by "
        "`python -m hostaway_pipeline.storage.data_dictionary`; the same text is in the database as "
        "`COMMENT ON` (psql: `\\d+ hostaway.<table>`).",
    ]
    for table in metadata.sorted_tables:
        lines += ["", f"## `hostaway.{table.name}`", "", table.comment or "", "",
                  "| column | type | null | meaning |", "|---|---|---|---|"]
        for column in table.columns:
            key = " (key)" if column.primary_key else ""
            meaning = (column.comment or "").replace("|", "\\|")
            lines.append(f"| `{column.name}`{key} | {_type_name(column)} | {'yes' if column.nullable else 'no'} | "
                         f"{meaning} |")
        indexes = sorted(", ".join(c.name for c in index.columns) for index in table.indexes)
        if indexes:
            lines += ["", "Indexes: " + "; ".join(f"({columns})" for columns in indexes)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
