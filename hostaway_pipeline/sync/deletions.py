"""Deciding what is gone upstream: candidates, proof by id, and the mass-delete guard.

A row missing from one read is only a *candidate*: offset pages shift while rows are deleted or added,
so a walk can skip a live row and still reach ``count``. Each candidate is proved gone by one request
for it by id answering 404; a candidate the API still serves is alive (and its current version is
written); a lookup that fails otherwise leaves the row as it is (reported, retried by the next sync).
We chose this over "absent from two consecutive complete reads": it costs one call per candidate, and
candidates are rare (real deletions plus the rows a walk skipped), while deletions show after one sync
instead of two, and a row skipped by two walks in a row is never deleted by mistake.

The mass-delete guard: a sync that would soft-delete more than ``max_share`` of the account's live rows
of a resource *and* more than ``min_rows`` deletes nothing and fails, unless ``allow`` says the mass
deletion is expected. Proof stops as soon as that line is crossed, so a broken upstream costs a few
calls, not one per stored row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hostaway_pipeline.hostaway.errors import HostawayError

DEFAULT_MAX_DELETE_SHARE = 0.10
DEFAULT_MIN_DELETE_ROWS = 5


@dataclass(frozen=True)
class DeletePolicy:
    max_share: float = DEFAULT_MAX_DELETE_SHARE
    min_rows: int = DEFAULT_MIN_DELETE_ROWS
    allow_mass_delete: bool = False

    def allowed(self, live_rows: int) -> int | None:
        """How many rows one sync may soft-delete (None: no limit)."""
        if self.allow_mass_delete:
            return None
        return max(self.min_rows, math.floor(self.max_share * live_rows))


@dataclass
class DeletionProof:
    gone: list[int] = field(default_factory=list)
    alive: list[dict] = field(default_factory=list)
    unconfirmed: list[int] = field(default_factory=list)
    refused: bool = False
    allowed: int | None = None
    candidates: int = 0

    def metadata(self) -> dict[str, int]:
        return {"delete_candidates": self.candidates, "delete_confirmed_gone": len(self.gone),
                "delete_candidates_alive": len(self.alive), "delete_unconfirmed": len(self.unconfirmed)}


def prove_deletions(candidates: Iterable[int], lookup: Callable[[int], dict | None], live_rows: int,
                    policy: DeletePolicy) -> DeletionProof:
    """Look each candidate up by id (see the module docstring); stop once the guard's line is crossed."""
    ordered = sorted(set(candidates))
    proof = DeletionProof(allowed=policy.allowed(live_rows), candidates=len(ordered))
    for object_id in ordered:
        try:
            found = lookup(object_id)
        except HostawayError:
            proof.unconfirmed.append(object_id)
            continue
        if found is None:
            proof.gone.append(object_id)
            if proof.allowed is not None and len(proof.gone) > proof.allowed:
                proof.refused = True
                return proof
        else:
            proof.alive.append(found)
    return proof
