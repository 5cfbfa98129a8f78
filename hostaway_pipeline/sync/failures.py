"""Why a sync refused to finish green: each names account, resource and what to do, in one line.

A sync that raises one of these has already written what it read for certain and deleted nothing it
could not prove gone; the orchestration layer turns it into a failed step carrying the outcome.
"""

from __future__ import annotations

from hostaway_pipeline.sync.outcome import SyncOutcome


class SyncFailure(Exception):
    """A sync that wrote what it could but must not report success; ``outcome`` holds its figures."""

    def __init__(self, message: str, outcome: SyncOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome


class IncompleteRead(SyncFailure):
    """The read ended with fewer distinct objects than the API's ``count``."""


class MassDeleteRefused(SyncFailure):
    """The sync would soft-delete more of the account's rows than the delete policy allows."""


class ReadsFailed(SyncFailure):
    """Some per-object reads (e.g. one conversation's messages) failed after retries."""
