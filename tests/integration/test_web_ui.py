"""A person finds the offboarding in the Temporal Web UI by a search attribute and reads
its progress there: headless Debian Chromium, driven by Playwright, against the dev
server's real UI during a real run. Screenshots go to the test's output directory."""

from __future__ import annotations

import subprocess
import urllib.parse
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from devtools.scim import ScimServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models import search_attributes as sa
from tests.helpers import client_file, eventually, new_worker, wait_until, waiting_for

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium() -> str:
    return subprocess.run([str(ROOT / "scripts/ensure-chromium.sh")], check=True,
                          capture_output=True, text=True).stdout.strip()


async def test_ops_find_the_offboarding_by_search_attribute_and_read_its_progress(
    dev_env: WorkflowEnvironment, dev_ui_port: int, settings: Settings, scim: ScimServer,
    chromium: str, tmp_path: Path,
) -> None:
    cf = client_file("termination", scim=scim)
    async with new_worker(dev_env.client, settings):
        wid = await OffboardingClient(dev_env.client, settings.task_queue).start(cf)
        await wait_until(dev_env.client.get_workflow_handle(wid),
                         waiting_for("settlement-approval"))
        query = f'{sa.CLIENT_ID.name}="{cf.client_id}"'

        async def listed() -> list[str]:
            return [w.id async for w in dev_env.client.list_workflows(query)]

        # Visibility is eventually consistent.
        await eventually(listed, lambda ids: ids == [wid], what=f"{query} to list it")
        base = f"http://127.0.0.1:{dev_ui_port}/namespaces/default"
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                # The list, filtered by a search attribute as a person would type it.
                await page.goto(f"{base}/workflows?query={urllib.parse.quote(query)}")
                link = page.get_by_role("link", name=wid)
                await expect(link).to_be_visible(timeout=20_000)
                await expect(page.get_by_text("1 Workflow", exact=True)).to_be_visible()
                await page.screenshot(path=str(tmp_path / "1-list.png"), full_page=True)
                # The offboarding: its timers and activities read like the checklist.
                await link.click()
                await expect(page.get_by_text("waiting for settlement-approval").first
                             ).to_be_visible(timeout=20_000)
                await page.screenshot(path=str(tmp_path / "2-workflow.png"), full_page=True)
                # Its current details: the checklist and who must act.
                await expect_current_details(page, cf.client_id, tab_seconds=10, text_seconds=20)
                # The screenshot is of this offboarding's page, its checklist shown above.
                await expect(page.get_by_text(wid).first).to_be_visible()
                await page.screenshot(path=str(tmp_path / "3-details.png"), full_page=True)
            finally:
                await browser.close()


async def expect_current_details(page: Page, client_id: str, *, tab_seconds: float,
                                 text_seconds: float) -> None:
    """An offboarding's page shows its summary and current details (a query the worker
    answers): a termination waiting on finance and the steward, its checklist, who must
    act; the tab may take ``tab_seconds`` to open, each text ``text_seconds`` to appear."""
    tab = page.get_by_text("User Metadata", exact=True)

    async def open_tab() -> int:
        await tab.click()
        return await page.get_by_text("Current Details").count()

    # The tab answers once the page has finished loading.
    await eventually(open_tab, every=0.25, timeout=tab_seconds,
                     what="the User Metadata tab to show Current Details")
    # The UI renders each Markdown text in its own frame.
    details = page.frame_locator('iframe[src*="Who%20must%20act"]')
    for text in ("Waiting for: data-verification, settlement-approval",
                 "Who must act: data steward (verify-data / reject-data); "
                 "finance approver (approve-settlement / dispute-settlement)",
                 "Access revocation: done", "Financial settlement: waiting"):
        await expect(details.get_by_text(text)).to_be_visible(timeout=text_seconds * 1000)
    summary = page.frame_locator('iframe[src^="/render?content=Offboarding"]')
    await expect(summary.get_by_text(f"Offboarding {client_id} (termination)")).to_be_visible()
