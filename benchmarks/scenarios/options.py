"""Options every scenario takes (from ``python -m benchmarks`` arguments)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchOptions:
    time_scale: float = 10.0  # K: Hostaway's 10 s windows last 10/K real seconds in the stand-in
    seed: int = 7
    database_server_url: str | None = None  # None: HOSTAWAY_BENCH_DATABASE_URL, else the embedded Postgres

    @property
    def ip_calls_per_second(self) -> float:
        """Hostaway's per-IP budget (15 per 10 s) in real seconds at this time scale."""
        return 15.0 * self.time_scale / 10.0
