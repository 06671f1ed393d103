"""The live view end to end in headless Chromium: a real cluster under supervisord, the real page.

The test logs in with the address `dtm cluster view` prints (the secret in the fragment), creates
a task with `todo` and sees the batch reach the other node on the page, pauses the sync with the
page's lever, makes the spec's conflict on the two nodes, resumes it with the page's lever and sees
the conflict listed with its losing write; it saves the screenshot the README shows. It drives
Debian's chromium (`apt-get install chromium`) through playwright; no browser is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from runcluster import RunCluster, run_cluster
from tests.harness import request

__all__ = ["run_cluster"]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The README's picture; a run writes it only with DTM_SCREENSHOT=1 (else into the test's folder),
# so the suite leaves the checkout as it found it.
README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "live-view.png"
WAIT_MS = 30_000

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None,
        reason=f"no chromium at {CHROMIUM} (Debian: apt-get install chromium)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="the playwright package is not installed (pip install -e '.[dev]')",
    ),
]


def test_the_page_shows_a_batch_and_a_conflict_made_with_its_levers(
    run_cluster: RunCluster, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    c = run_cluster
    c.write_config(view=True)
    c.up()
    address = c.ok("view").strip()
    assert "#k=" in address

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(address)
            expect(page.locator("#conn")).to_have_text("live", timeout=WAIT_MS)
            assert "#k=" not in page.url  # the secret left the address bar
            expect(page.locator("#nodes tr[data-node=store2]")).to_be_visible()

            made = subprocess.run(
                [sys.executable, "-m", "dtm.cli.main", "--url", c.url("handler"), "add", "Buy",
                 "groceries"],
                capture_output=True, text=True, timeout=30, env=c.env(), check=False,
            )  # fmt: skip
            assert made.returncode == 0, made.stderr
            key = f"local.{made.stdout.strip()}"
            for node in ("store1", "store2"):
                rows = page.locator(f"#nodes tr[data-node={node}] td.rows")
                expect(rows).to_have_text("1", timeout=WAIT_MS)
            batch = page.locator("#timeline li[data-kind=batch]").first
            expect(batch).to_contain_text("1 row", timeout=WAIT_MS)

            page.click("#components tr[data-comp=sync] button[data-lever=pause]")
            expect(page.locator("#lever-msg")).to_contain_text("paused sync", timeout=WAIT_MS)
            expect(page.locator("#components tr[data-comp=sync]")).to_contain_text("PAUSED")
            row = request("GET", c.url("store1") + "/v1/kv/" + key).json()
            done = {**row["value"], "status": "complete"}
            assert request("PUT", c.url("store1") + "/v1/kv/" + key, {"value": done}).status == 200
            assert request("DELETE", c.url("store2") + "/v1/kv/" + key).status == 200
            page.click("#components tr[data-comp=sync] button[data-lever=resume]")
            expect(page.locator("#lever-msg")).to_contain_text("resumed sync", timeout=WAIT_MS)

            listed = page.locator(f'#conflicts li[data-key="{key}"]')
            expect(listed).to_contain_text("winner: deleted", timeout=WAIT_MS)
            expect(listed.locator(".loser")).to_contain_text("[complete] Buy groceries")
            expect(page.locator("#timeline li[data-kind=conflict]").first).to_be_visible()

            # the timeline holds still while paused, counts what it did not show, then catches up
            page.click("#pause-timeline")
            shown = page.locator("#timeline li").count()
            assert request("PUT", c.url("store1") + "/v1/kv/local.more", {"value": 1}).status == 200
            expect(page.locator("#timeline-note")).to_contain_text("new", timeout=WAIT_MS)
            expect(page.locator("#timeline-note")).not_to_have_text("paused: 0 new")
            assert page.locator("#timeline li").count() == shown
            page.click("#pause-timeline")
            wrote = page.locator("#timeline li[data-kind=write]", has_text="(local.more)")
            expect(wrote).to_contain_text("write on store1: 1 row", timeout=WAIT_MS)
            expect(page.locator("#nodes tr[data-node=store2] td.rows")).to_have_text("1")
            copied = page.locator(
                "#timeline li[data-kind=write]", has_text="store2: 1 row (local.more"
            )
            assert copied.count() == 0  # the copy on store2 is the batch's, not a write there
            shot = README_SHOT if os.environ.get("DTM_SCREENSHOT") == "1" else tmp_path / "v.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            assert errors == []
        finally:
            browser.close()
