"""What an approver does, in a real browser (Debian's Chromium driven by Playwright) on
the portal served by uvicorn, from the links in the mail a real worker sent: finance
disputes with an adjustment, then approves the new statement; the data steward downloads
the package, checks it against the manifest and confirms. The offboarding moves on each
time, and the closure report lists each decision as made through a link.

The phone-sized screenshot of the statement page is the one in the README (docs/): run
with UPDATE_SCREENSHOTS=1 to take it again."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zipfile
from pathlib import Path

from playwright.async_api import Page, ViewportSize, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from devtools.mailcapture import MailCapture
from devtools.scim import ScimServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from tests.conftest import ROOT
from tests.helpers import client_file, links_to, new_worker, portal_server, wait_until
from tests.integration.test_portal import PATIENT
from tests.integration.test_web_ui import CHROMIUM_FLAGS, chromium  # noqa: F401 (fixture)

PHONE: ViewportSize = {"width": 390, "height": 844}


def link_in(mail: MailCapture, to: str, subject: str) -> str:
    """The one link in the one message ``to`` received about ``subject``."""
    [link] = links_to(mail, to, subject)
    return link


async def _recorded(page: Page) -> None:
    await expect(page.get_by_text("Thank you: your decision was recorded.")).to_be_visible()


async def test_an_approver_decides_from_the_link_in_their_email(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
    chromium: str, tmp_path: Path,  # noqa: F811
) -> None:
    cf = client_file("termination", scim=scim)
    finance, steward = cf.approvers.finance[0], cf.approvers.data_verification[0]
    async with portal_server(settings, dev_env.client) as (_, settings), \
            new_worker(dev_env.client, settings), async_playwright() as pw:
        ops = OffboardingClient(dev_env.client, settings.task_queue)
        handle = dev_env.client.get_workflow_handle(await ops.start(cf, PATIENT))
        st = await wait_until(handle, lambda st: {"settlement-approval", "data-verification"}
                              <= set(st.waits))
        v1 = st.statements[-1]
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            context = await browser.new_context(viewport=PHONE, accept_downloads=True)
            page = await context.new_page()

            # Finance: the statement, line by line, then a dispute with an adjustment.
            await page.goto(link_in(mail, finance, "final settlement v1"))
            await expect(page.get_by_role("heading", name=re.compile("Statement v1"))
                         ).to_be_visible()
            await expect(page.get_by_text("Owed by", exact=False)).to_be_visible()
            # What the screenshot shows is the statement the workflow issued: its
            # version, date and hash, every line, and the balance, as the approver reads it.
            await expect(page.get_by_role("heading", level=1)).to_have_text(
                f"Final settlement: {cf.client_name}")
            await expect(page.get_by_role("heading", name=re.compile("Statement v1"))
                         ).to_have_text(f"Statement v1 of {v1.issued} ({v1.short_hash})")
            for line in v1.lines:
                await expect(page.get_by_role("row", name=re.compile(
                    re.escape(f"{line.kind.capitalize()} {line.reference}")))).to_be_visible()
            await expect(page.get_by_role("row", name=re.compile("^Balance"))).to_contain_text(
                f"{v1.currency} {v1.balance:,.2f}")
            await page.screenshot(path=str(tmp_path / "approver-statement.png"),
                                  full_page=True)
            await page.get_by_text("Dispute it instead").click()
            await page.get_by_label("Why").fill("The late fee was waived in October")
            await page.get_by_label(re.compile("Adjustments")).fill("Waived late fee = -150.00")
            await page.get_by_role("button", name="Dispute").click()
            await _recorded(page)
            await expect(page.get_by_text("Statement v1 was disputed")).to_be_visible()
            st = await wait_until(handle, lambda st: len(st.statements) == 2)
            assert st.statements[-1].adjustments == -150

            # The new statement's link, from the next email: approve.
            await wait_until(handle, lambda st: any(
                "v2" in m.subject for m in mail.to(finance)))
            await page.goto(link_in(mail, finance, "final settlement v2"))
            await page.get_by_role("button", name="Approve").click()
            await _recorded(page)
            await page.screenshot(path=str(tmp_path / "approver-decided.png"), full_page=True)
            await wait_until(handle, lambda st: st.step("settlement").state == "done")

            # The steward: download, check against the manifest, confirm.
            await page.goto(link_in(mail, steward, "ready for transfer"))
            files = {}
            for name in ("manifest.json", "data.zip"):
                async with page.expect_download() as download:
                    await page.get_by_role("link", name=f"Download {name}").click()
                files[name] = tmp_path / name
                await (await download.value).save_as(files[name])
            manifest = json.loads(files["manifest.json"].read_bytes())
            st = await ops.status(handle.id)
            assert hashlib.sha256(files["manifest.json"].read_bytes()).hexdigest() == \
                st.data_packages[-1].manifest_sha256
            with zipfile.ZipFile(files["data.zip"]) as zf:
                assert [hashlib.sha256(zf.read(f["path"])).hexdigest()
                        for f in manifest["files"]] == [f["sha256"] for f in manifest["files"]]
            await page.get_by_role("button", name="The files match: confirm").click()
            await _recorded(page)
            await wait_until(handle, lambda st: st.step("data-transfer").state == "done")
        finally:
            await browser.close()
        result = await ops.result(handle.id)
    assert result.status.archive is not None
    report = (settings.archive_root / result.status.archive.report).read_text()
    rows = re.findall(r"<td>([a-z-]+)</td><td>([^<]+)</td><td>(\w*)</td>", report)
    assert [r for r in rows if r[0].endswith(("-settlement", "-data"))] == [
        ("dispute-settlement", finance, "link"), ("approve-settlement", finance, "link"),
        ("verify-data", steward, "link")]
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        for shot in ("approver-statement.png", "approver-decided.png"):
            shutil.copy(tmp_path / shot, ROOT / "docs" / shot)
