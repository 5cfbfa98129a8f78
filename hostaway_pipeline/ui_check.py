"""``python -m hostaway_pipeline.ui_check``: check a running Dagster UI in a real headless Chromium.

Made for the demo (``make demo``): it opens the asset catalog in Debian's ``chromium`` through Selenium
and ``chromedriver``, waits until the page lists the four core assets and the analyst assets, then asks
the webserver's own GraphQL endpoint, from inside the page, whether every one of those assets has a
materialized partition for each given account and whether a webhook-sourced materialization
(``hostaway/source=webhook``) is recorded. It saves screenshots of the catalog and of the reservations
asset's events (webhook-driven materializations included) and exits non-zero naming what was missing.

Selenium is a development dependency (``pip install -e .[dev]``); Chromium and chromedriver come from
the system (``apt-get install chromium chromium-driver``; ``.ci/run`` installs them).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORE_ASSETS = ("hostaway/listings", "hostaway/reservations", "hostaway/conversations", "hostaway/messages")
ANALYST_ASSETS = ("hostaway_analytics/reservation_nights", "hostaway_analytics/listing_occupancy_monthly",
                  "hostaway_analytics/revenue_monthly", "hostaway_analytics/guest_response_times")
WEBHOOK_TAG = ("hostaway/source", "webhook")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1600, 1000)

PARTITIONS_QUERY = """
query Partitions($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode {
      assetPartitionStatuses { __typename ... on DefaultPartitionStatuses { materializedPartitions } }
    }
  }
}
"""
MATERIALIZATIONS_QUERY = """
query Materializations($key: AssetKeyInput!, $partitions: [String!]) {
  assetOrError(assetKey: $key) {
    __typename
    ... on Asset { assetMaterializations(partitions: $partitions, limit: 200) { partition tags { key value } } }
  }
}
"""


class UiCheckError(RuntimeError):
    """What the UI did not show, in one line."""


@dataclass
class UiCheckResult:
    materialized: dict[str, list[str]] = field(default_factory=dict)  # asset -> account partitions seen
    webhook_materializations: int = 0
    screenshots: list[Path] = field(default_factory=list)

    def missing(self, account_ids: Sequence[int]) -> list[str]:
        wanted = {str(account_id) for account_id in account_ids}
        return [f"{asset} partitions {sorted(wanted - set(found))}"
                for asset, found in self.materialized.items() if not wanted <= set(found)]


def find_chromium() -> tuple[str, str] | None:
    """Paths of a Chromium browser and its chromedriver, or None when either is missing."""
    browser = next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def unavailable_reason() -> str | None:
    """Why the check cannot run here (for a clear skip), or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if find_chromium() is None:
        return "Chromium and chromedriver are not installed (apt-get install -y chromium chromium-driver)"
    return None


def _browser(binaries: tuple[str, str]) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = binaries
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def _graphql(browser: Any, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """Run a query against the webserver from inside the page, as the UI itself does."""
    script = """
        const done = arguments[arguments.length - 1];
        fetch('/graphql', {method: 'POST', headers: {'Content-Type': 'application/json'},
                           body: JSON.stringify({query: arguments[0], variables: arguments[1]})})
          .then(response => response.json()).then(done).catch(error => done({errors: [String(error)]}));
    """
    answer = browser.execute_async_script(script, query, variables)
    if not isinstance(answer, dict) or answer.get("errors"):
        raise UiCheckError(f"the webserver's GraphQL answered {answer!r:.300}")
    return answer["data"]


def _key(asset: str) -> dict[str, Any]:
    return {"path": asset.split("/")}


def _materialized_partitions(browser: Any, asset: str) -> list[str]:
    node = _graphql(browser, PARTITIONS_QUERY, {"key": _key(asset)})["assetNodeOrError"]
    if node.get("__typename") != "AssetNode":
        raise UiCheckError(f"the UI does not know asset {asset} ({node.get('__typename')})")
    return list(node["assetPartitionStatuses"].get("materializedPartitions") or [])


def _webhook_materializations(browser: Any, account_ids: Sequence[int]) -> int:
    partitions = [str(account_id) for account_id in account_ids]
    found = 0
    for asset in CORE_ASSETS:
        answer = _graphql(browser, MATERIALIZATIONS_QUERY, {"key": _key(asset), "partitions": partitions})
        events = (answer["assetOrError"] or {}).get("assetMaterializations") or []
        found += sum(1 for event in events
                     if {"key": WEBHOOK_TAG[0], "value": WEBHOOK_TAG[1]} in (event.get("tags") or []))
    return found


def _wait_for_text(browser: Any, texts: Sequence[str], deadline: float) -> None:
    while True:
        page = browser.find_element("tag name", "body").text
        if all(text in page for text in texts):
            return
        if time.monotonic() > deadline:
            absent = [text for text in texts if text not in page]
            raise UiCheckError(f"the page {browser.current_url} never showed {absent}")
        time.sleep(1.0)


def check_ui(ui_url: str, account_ids: Sequence[int], screenshot_directory: Path,
             timeout_seconds: float = 300.0) -> UiCheckResult:
    """Drive headless Chromium against the UI until everything shows, or raise :class:`UiCheckError`."""
    reason = unavailable_reason()
    if reason:
        raise UiCheckError(reason)
    binaries = find_chromium()
    assert binaries is not None
    ui_url = ui_url.rstrip("/")
    deadline = time.monotonic() + timeout_seconds
    screenshot_directory.mkdir(parents=True, exist_ok=True)
    result = UiCheckResult()
    browser = _browser(binaries)
    try:
        browser.set_script_timeout(60)
        browser.get(f"{ui_url}/assets")
        _wait_for_text(browser, ["hostaway", "hostaway_analytics"], deadline)
        while True:  # analyst assets follow the core ones through the automation sensor: poll
            result.materialized = {asset: _materialized_partitions(browser, asset)
                                   for asset in (*CORE_ASSETS, *ANALYST_ASSETS)}
            result.webhook_materializations = _webhook_materializations(browser, account_ids)
            if not result.missing(account_ids) and result.webhook_materializations:
                break
            if time.monotonic() > deadline:
                problems = result.missing(account_ids)
                if not result.webhook_materializations:
                    problems.append("no webhook-sourced materialization")
                raise UiCheckError(f"after {timeout_seconds:g} s the UI still lacks: {'; '.join(problems)}")
            time.sleep(5.0)
        browser.get(f"{ui_url}/assets")
        _wait_for_text(browser, ["hostaway", "hostaway_analytics", "partitions"], deadline)
        _dismiss_dialogs(browser)
        time.sleep(2.0)  # let the catalog's status columns load before the picture
        result.screenshots.append(_save(browser, screenshot_directory / "ui_asset_catalog.png"))
        # The newest reservations event is webhook-sourced while the demo keeps changing the stand-in.
        browser.get(f"{ui_url}/assets/hostaway/reservations?view=events")
        _wait_for_text(browser, ["events_applied"], deadline)
        _dismiss_dialogs(browser)
        _show_event_tags(browser, deadline)
        result.screenshots.append(_save(browser, screenshot_directory / "ui_reservations_events.png"))
    finally:
        browser.quit()
    return result


def _dismiss_dialogs(browser: Any) -> None:
    """Close Dagster's first-visit "Join the Dagster community" dialog when it is shown."""
    for button in browser.find_elements("xpath", "//button[normalize-space(.)='Skip']"):
        if button.is_displayed():
            button.click()
            time.sleep(0.5)


def _show_event_tags(browser: Any, deadline: float) -> None:
    """Open the selected event's tags, so the picture shows hostaway/source: webhook."""
    for toggle in browser.find_elements("xpath", "//button[starts-with(normalize-space(.), 'Show tags')]"):
        if toggle.is_displayed():
            toggle.click()
            break
    _wait_for_text(browser, ["hostaway/source", "webhook"], deadline)


def _save(browser: Any, path: Path) -> Path:
    if not browser.save_screenshot(str(path)):
        raise UiCheckError(f"Chromium could not save a screenshot to {path}")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hostaway_pipeline.ui_check", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="the Dagster UI (default the demo's)")
    parser.add_argument("--accounts", required=True,
                        help="comma-separated account ids whose partitions must be materialized")
    parser.add_argument("--screenshots", type=Path, default=Path("docs"), help="where to save the PNGs (docs/)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for everything to show")
    args = parser.parse_args(argv)
    try:
        account_ids = [int(part) for part in args.accounts.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--accounts {args.accounts!r} must be comma-separated account ids")
    try:
        result = check_ui(args.url, account_ids, args.screenshots, args.timeout)
    except UiCheckError as error:
        print(f"ui_check: error: {error}", file=sys.stderr)
        return 1
    for asset, partitions in result.materialized.items():
        print(f"{asset:45} materialized partitions {', '.join(sorted(partitions))}")
    print(f"webhook-sourced materializations: {result.webhook_materializations}")
    print("screenshots: " + ", ".join(map(str, result.screenshots)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
