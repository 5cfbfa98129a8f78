"""Scenario results: figures, targets checked against them, the printed table and the JSON file."""

from __future__ import annotations

import json
import operator
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "<": operator.lt, ">": operator.gt,
}


@dataclass(frozen=True)
class Target:
    """A figure's bound, e.g. ``Target("served_429", "==", 0)``."""

    figure: str
    comparator: str
    bound: float

    def met_by(self, value: float) -> bool:
        return _COMPARATORS[self.comparator](value, self.bound)

    def __str__(self) -> str:
        return f"{self.comparator} {self.bound:g}"


@dataclass
class ScenarioResult:
    scenario: str
    description: str
    figures: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def target_for(self, figure: str) -> Target | None:
        return next((t for t in self.targets if t.figure == figure), None)

    @property
    def missed(self) -> list[Target]:
        return [t for t in self.targets if not t.met_by(float(self.figures[t.figure]))]

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "description": self.description,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "figures": self.figures,
            "targets": [{"figure": t.figure, "comparator": t.comparator, "bound": t.bound,
                         "met": t.met_by(float(self.figures[t.figure]))} for t in self.targets],
            "details": self.details,
        }


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def render_table(result: ScenarioResult) -> str:
    rows = [(name, _format(value), str(result.target_for(name) or ""),
             "" if (t := result.target_for(name)) is None else ("ok" if t.met_by(float(value)) else "MISSED"))
            for name, value in result.figures.items()]
    widths = [max(len(row[i]) for row in [("figure", "value", "target", ""), *rows]) for i in range(4)]
    lines = [f"== {result.scenario}: {result.description}",
             "  ".join(h.ljust(w) for h, w in zip(("figure", "value", "target", ""), widths, strict=True))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    """JSON-ready: materialization metadata carries Dagster values (a column schema, a table of changed ids)
    that JSON has no type for, some of them tuples that refuse iteration: those are written as their text."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def write_json(result: ScenarioResult, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.scenario}.json"
    path.write_text(json.dumps(_plain(result.as_json()), indent=2, sort_keys=False) + "\n")
    return path
