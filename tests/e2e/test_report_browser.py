"""The report as an identity admin uses it, in a real browser: Debian's Chromium driven by Playwright.

Playwright drives the system's /usr/bin/chromium (``make browser`` installs it) through ``executable_path``;
no browser is ever downloaded. The suite also writes the README's screenshot (docs/images/report.png).
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from lifecycle import report
from tests.e2e.test_report_render import CHROMIUM_FLAGS
from tests.report_tenant import HOSTILE_NAME, report_tenant

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "images" / "report.png"


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed: `make test` installs it (make browser)", pytrace=False)
    return binary


@pytest.fixture(name="browser")
async def _browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=_chromium(),
            headless=True,
            args=[flag for flag in CHROMIUM_FLAGS if flag != "--headless"],
        )
        try:
            yield browser
        finally:
            await browser.close()


async def _open(browser: Browser, tmp_path: Path, *, hostile: bool = True, width: int = 1280) -> Page:
    tenant = await report_tenant(hostile=hostile)
    path = tmp_path / "guest-posture.html"
    path.write_text(report.to_html(await report.collect(tenant.services)), encoding="utf-8")
    page = await browser.new_page(viewport={"width": width, "height": 1700})
    await page.goto(path.as_uri())
    return page


async def _visible_guests(page: Page) -> list[str]:
    return await page.eval_on_selector_all(
        "#guest-table tbody tr:not([hidden])", "rows => rows.map(r => r.cells[0].textContent)"
    )


async def test_every_section_renders_with_its_data(browser, tmp_path):
    """Headings, the nine guests, the night's outcomes, partner-named drift and a line per state."""
    page = await _open(browser, tmp_path)
    headings = await page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
    for heading in ("Last night's jobs (24 hours)", "Guests", "Policy drift", "Guests by state over time"):
        assert heading in headings
    assert len(await _visible_guests(page)) == 9
    assert await page.text_content("#guest-count") == "9 of 9 guests"
    outcomes = await page.inner_text("#outcomes table")
    assert "guest-sweep\t" in outcomes and "planned" in outcomes and "no run recorded" in outcomes
    drift = await page.inner_text("#drift table")
    assert "Fabrikam, Inc.\tcrossTenantAccessPolicy/partners" in drift
    lena = await page.inner_text("#guest-table tbody tr:has-text('Lena Fischer')")
    assert lena.split("\t")[:5] == [
        "Lena Fischer",
        "lena@fabrikam.com",
        "Fabrikam, Inc.",
        "anna.berg@contoso.com",
        "active",
    ]
    assert "disable: past-end-date" in lena
    for state in report.STATES:
        points = await page.get_attribute(f"polyline.series-{state}", "points")
        assert points is not None and len(points.split()) == 8
    assert await page.locator("svg circle").count() == 0
    href = await page.get_attribute("#guest-table tbody tr:has-text('Lena Fischer') a", "href")
    assert href is not None and href.startswith("https://entra.microsoft.com/") and "/userId/" in href


async def test_filtering_by_partner_state_and_rule_narrows_the_rows(browser, tmp_path):
    """Each filter keeps only its rows; filters combine; 'all' brings every guest back."""
    page = await _open(browser, tmp_path)
    await page.select_option("#filter-partner", "Fabrikam, Inc.")
    assert sorted(await _visible_guests(page)) == ["Lena Fischer", "Noor Haddad", "Tom Okafor"]
    await page.select_option("#filter-state", "pending")
    assert await _visible_guests(page) == ["Tom Okafor"]
    assert await page.text_content("#guest-count") == "1 of 9 guests"
    await page.select_option("#filter-partner", "")
    await page.select_option("#filter-state", "")
    await page.select_option("#filter-rule", "past-end-date")
    assert sorted(await _visible_guests(page)) == ["Jonas Weber", "Lena Fischer"]
    await page.select_option("#filter-rule", "protected-group")
    assert await _visible_guests(page) == ["Maria Costa"]
    await page.select_option("#filter-rule", "")
    assert len(await _visible_guests(page)) == 9


async def test_search_narrows_the_rows_by_any_text_in_them(browser, tmp_path):
    """Free text matches names, mail and sponsors, case-insensitively; clearing it shows everyone again."""
    page = await _open(browser, tmp_path)
    await page.fill("#guest-search", "OKAFOR")
    assert await _visible_guests(page) == ["Tom Okafor"]
    await page.fill("#guest-search", "anna.berg@")
    assert sorted(await _visible_guests(page)) == ["Jonas Weber", "Lena Fischer"]
    await page.select_option("#filter-partner", "Adatum Corporation")
    assert await _visible_guests(page) == ["Jonas Weber"]
    await page.fill("#guest-search", "")
    await page.select_option("#filter-partner", "")
    assert len(await _visible_guests(page)) == 9


async def test_a_hostile_display_name_stays_text_and_runs_nothing(browser, tmp_path):
    """A guest named with an image tag and a script shows as that text; no dialog, no element, no title change,
    and the filter script (the only one allowed) still works."""
    dialogs: list[str] = []
    page = await _open(browser, tmp_path)
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await page.reload()  # every script the page would run, run again with the dialog listener attached
    assert await page.title() != "owned"
    assert await page.locator("#guest-table img, #guest-table script").count() == 0
    assert await page.evaluate("document.scripts.length") == 1
    cell = page.locator("#guest-table tbody tr a", has_text="Ana <img")
    assert await cell.text_content() == HOSTILE_NAME
    await page.fill("#guest-search", "onerror")
    assert await _visible_guests(page) == [HOSTILE_NAME]
    assert dialogs == [] and await page.title() != "owned"


async def test_the_suite_writes_the_readme_screenshot(browser, tmp_path):
    """docs/images/report.png: the whole report (outcomes, guests, drift, trends, counts) at 1280 px, a real PNG."""
    page = await _open(browser, tmp_path, hostile=False)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT), full_page=True)
    header = SCREENSHOT.read_bytes()[:24]
    width, height = struct.unpack(">II", header[16:24])
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and width == 1280 and height > 1700
    assert SCREENSHOT.stat().st_size > 50_000
