"""The example playbook end to end on the dev server: a termination with its legal
sign-off decided in a real browser from the link in the legal team's mail, and its
hardware-return task marked done from the owner's link. The playbook file is changed
while the offboarding runs, and the offboarding keeps the playbook it started with."""

from __future__ import annotations

import hashlib
import re
import shutil
from datetime import timedelta
from pathlib import Path

from playwright.async_api import async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from devtools.mailcapture import MailCapture
from devtools.scim import ScimServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.status import Timings
from offboarding.playbooks import load_playbook
from tests.conftest import ROOT
from tests.helpers import (
    client_file,
    links_to,
    new_worker,
    portal_server,
    record_history,
    wait_until,
    waiting_for,
)
from tests.integration.test_web_ui import CHROMIUM_FLAGS, chromium  # noqa: F401 (fixture)

EXAMPLE = ROOT / "examples" / "playbooks"
DAYS = Timings(day_length=timedelta(seconds=2), settlement_reminder_days=1000,
               settlement_escalation_days=1000, data_reminder_days=1000,
               data_escalation_days=1000)


async def test_the_example_playbook_runs_with_its_gate_and_task_decided_by_link(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
    chromium: str, tmp_path: Path,  # noqa: F811
) -> None:
    shutil.copytree(EXAMPLE, tmp_path / "playbooks")
    path = tmp_path / "playbooks" / "legal-and-hardware.yaml"
    playbook = load_playbook(path)
    [gate], [task] = playbook.gates, playbook.tasks
    cf = client_file("termination", scim=scim, follow_up_days=1, retention_days=0)
    finance, steward = cf.approvers.finance[0], cf.approvers.data_verification[0]
    assert isinstance(gate.deciders, list), "the example names its legal team"
    [legal] = gate.deciders
    async with portal_server(settings, dev_env.client) as (_, settings), \
            new_worker(dev_env.client, settings), async_playwright() as pw:
        ops = OffboardingClient(dev_env.client, settings.task_queue)
        handle = dev_env.client.get_workflow_handle(await ops.start(cf, DAYS,
                                                                    playbook=playbook))
        # The file changes while the offboarding runs: a new gate title, a new hash.
        path.write_text(path.read_text().replace(gate.title, "Changed after the start"))
        assert load_playbook(path).label != playbook.label

        st = await wait_until(handle, lambda st: {"settlement-approval", "data-verification",
                                                  f"task-{task.key}"} <= set(st.waits))
        assert st.playbook == playbook.label
        await handle.signal("approve-settlement", {
            "by": finance, "statement_hash": st.statements[-1].short_hash})
        await wait_until(handle, waiting_for(gate.id))
        [asked] = [m for m in mail.to(legal) if m.subject.startswith("Your decision")]
        assert gate.title in asked.subject, "the title it started with"

        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page()
            [link] = links_to(mail, legal, "Your decision")
            await page.goto(link)
            await expect(page.get_by_role("heading", level=1)).to_contain_text(gate.title)
            await page.get_by_role("button", name=gate.approve_label).click()
            await expect(page.get_by_text("Thank you: your decision was recorded.")
                         ).to_be_visible()
            st = await wait_until(handle, lambda st: st.step(gate.id).state == "done")
            assert st.step(gate.id).by == legal

            [link] = links_to(mail, task.owner, "A task for you")
            await page.goto(link)
            await expect(page.get_by_role("heading", level=1)).to_contain_text(task.title)
            await page.get_by_role("button", name=re.compile("done", re.I)).click()
            await expect(page.get_by_text("Thank you: your decision was recorded.")
                         ).to_be_visible()
        finally:
            await browser.close()

        st = await wait_until(handle, lambda st: next(
            t for t in st.tasks if t.key == task.key).done)
        manifest = Path(st.data_packages[-1].location) / "manifest.json"
        await handle.signal("verify-data", {
            "by": steward, "checksum": hashlib.sha256(manifest.read_bytes()).hexdigest()})
        result = await ops.result(handle.id)
    assert result.outcome == "completed"
    assert result.status.archive is not None
    report = (settings.archive_root / result.status.archive.report).read_text()
    rows = re.findall(r"<td>([a-z-]+)</td><td>([^<]+)</td><td>(\w*)</td>", report)
    assert ("approve-gate", legal, "link") in rows
    assert ("complete-task", task.owner, "link") in rows
    await record_history(handle, "playbook-example-termination")
