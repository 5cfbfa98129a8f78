"""What one sync of one resource did, in the terms a run page and an analyst care about."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hostaway_pipeline.hostaway.transport import CallStats
from hostaway_pipeline.storage.entity_writer import WriteCounts


@dataclass
class SyncOutcome:
    resource: str
    account_id: int
    fetched: int
    reported_count: int | None
    counts: WriteCounts
    stats: CallStats
    preview_rows: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {
            **self.stats.as_metadata(),
            "fetched": self.fetched,
            "reported_count": self.reported_count,
            "rows_inserted": self.counts.inserted,
            "rows_updated": self.counts.updated,
            "rows_unchanged": self.counts.unchanged,
            "rows_stale_skipped": self.counts.stale,
            "rows_soft_deleted": self.counts.soft_deleted,
            "values_quarantined": self.counts.values_quarantined,
            "rows_skipped": self.counts.rows_skipped,
            **self.extra,
        }

    def preview_markdown(self, limit: int = 5) -> str:
        rows = self.preview_rows[:limit]
        if not rows:
            return "_no rows_"
        columns = list(rows[0])
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in rows:
            cells = [str(row.get(column, "")).replace("|", "\\|").replace("\n", " ")[:60] for column in columns]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)
