"""The Hostaway stand-in in its own OS process, so its serving never competes with the measured client for a GIL.

Started with ``python -m hostaway_pipeline.simulator serve --port 0``; its base URL is read from the
banner, and everything else (call statistics, the call log, mutations) goes through its admin API.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import requests

from hostaway_pipeline.simulator.tokens import derive_client_secret

_BANNER = re.compile(r"base URL (?P<base>http://\S+/v1)")


class StandInProcess:
    """Context manager: a strict, time-scaled stand-in serving ``accounts`` ({id: "seed" | int | "empty"})."""

    def __init__(self, accounts: Mapping[int, str | int], seed: int = 7, time_scale: float = 10.0) -> None:
        self.accounts = dict(accounts)
        self.seed = seed
        self.time_scale = time_scale
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None
        self._http = requests.Session()

    @property
    def window_seconds(self) -> float:
        """Real seconds of one rate-limit window (Hostaway's 10 s, time-scaled)."""
        return 10.0 / self.time_scale

    @property
    def admin_url(self) -> str:
        return self.base_url.removesuffix("/v1") + "/__admin"

    def client_secret(self, account_id: int) -> str:
        return derive_client_secret(self.seed, account_id)

    def __enter__(self) -> StandInProcess:
        spec = ",".join(f"{account_id}:{size}" for account_id, size in self.accounts.items())
        command = [sys.executable, "-m", "hostaway_pipeline.simulator", "serve", "--port", "0",
                   "--accounts", spec, "--seed", str(self.seed), "--time-scale", f"{self.time_scale:g}"]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        deadline = time.monotonic() + 60
        for line in self._process.stdout:
            match = _BANNER.search(line)
            if match:
                self.base_url = match.group("base")
                break
            if time.monotonic() > deadline:
                break
        if not self.base_url:
            self.__exit__()
            raise RuntimeError("the Hostaway stand-in did not start (no banner on its stdout)")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None
        self._http.close()

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, f"{self.admin_url}/{path}", json=body, timeout=60)
        response.raise_for_status()
        payload = response.json()
        return payload.get("result", payload) if isinstance(payload, dict) else payload

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "stats")

    def reset_stats(self) -> None:
        self._admin("POST", "stats/reset")

    def calls(self) -> list[dict[str, Any]]:
        return self._admin("GET", "calls")

    def mutate(self, account_id: int, changes: Mapping[str, int]) -> Any:
        return self._admin("POST", f"accounts/{account_id}/mutate", dict(changes))

    def configure(self, **changes: Any) -> Any:
        """Flip the stand-in's behaviour switches (e.g. ``after_id_reading``)."""
        return self._admin("POST", "config", changes)

    def truth(self, account_id: int) -> dict[str, Any]:
        return self._admin("GET", f"accounts/{account_id}/truth")
