"""The report page as an on-call engineer opens it: headless Chromium renders it, the charts are there,
the script ran, and the console stays clean. Skipped, with the reason, where Chromium is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from mirrorcap.report import analyze_captures, render_html

from tests.support.pcap_crafting import known_records, write_pcap

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def _chromium(profile: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (scripts/install-system-packages.sh installs it)")
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


def _console_problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line or "Refused to" in line]


def test_report_page_renders_with_charts_and_a_clean_console(tmp_path: Path) -> None:
    summary = analyze_captures([write_pcap(tmp_path / "c.pcap", known_records())], capture_id="cap-browser-test")
    page = tmp_path / "report.html"
    page.write_text(render_html(summary), encoding="utf-8")
    screenshot = tmp_path / "report.png"

    shot = _chromium(tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=1280,2200", page.as_uri())
    dom = _chromium(tmp_path / "profile-dom", "--dump-dom", page.as_uri())

    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.exists() and screenshot.stat().st_size > 20_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = dom.stdout
    assert 'aria-label="Traffic over time"' in rendered
    assert 'aria-label="HTTP status codes"' in rendered
    assert 'aria-label="Top talkers by bytes"' in rendered
    assert 'class="show-bytes interactive"' in rendered  # the script ran to the end of its set-up
    assert "500 POST /api/orders" in rendered
    assert _console_problems(shot.stderr + dom.stderr) == []
