"""The HTML report as a person sees it: rendered by headless Chromium (installed by `make test`)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from lifecycle import report
from tests.unit.test_report import _services

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(name="chromium", scope="module")
def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed: `make test` installs it (make browser)", pytrace=False)
    return binary


async def _page(tmp_path: Path) -> Path:
    services = await _services()
    posture = await report.collect(services)
    path = tmp_path / "guest-posture.html"
    path.write_text(report.to_html(posture), encoding="utf-8")
    return path


def _run(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    return subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )


async def test_chromium_renders_every_section_with_data(chromium, tmp_path):
    """The rendered DOM has each section heading, the partner rows and the chart's series."""
    page = await _page(tmp_path)
    dom = _run(chromium, tmp_path, "--dump-dom", page.as_uri()).stdout
    for heading in (
        "Guests by partner and state",
        "Pending invitations by age",
        "Upcoming expiries (30 days)",
        "Recent failures",
        "Guests by state over time",
    ):
        assert heading in dom
    assert "fabrikam" in dom and "Authorization_RequestDenied" in dom
    assert 'class="series-active"' in dom


async def test_chromium_takes_a_full_size_screenshot_of_the_report(chromium, tmp_path):
    """A screenshot is produced at the requested size: the page renders without a blank error page."""
    page = await _page(tmp_path)
    shot = tmp_path / "report.png"
    _run(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    header = shot.read_bytes()[:24]
    width, height = struct.unpack(">II", header[16:24])
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and (width, height) == (1200, 1600)
    assert shot.stat().st_size > 20_000
