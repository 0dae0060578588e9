"""The contract end on the real Temporal cluster (PostgreSQL, two server hosts) with every
approver decision made through the portal's links, as people make them: finance opens the
statement link in its email and approves; the data steward opens the transfer link,
downloads the manifest and the package, checks them against the emailed checksum and
confirms. The portal runs under uvicorn against the cluster, the worker is a real one;
ops' own steps (terms met, meeting, feedback) go through the CLI's updates."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from pathlib import Path

import httpx
import pytest

from devtools.approvers import check_download, decide
from devtools.cluster import Cluster
from devtools.mailcapture import MailCapture
from devtools.scim import ScimServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import CompleteTask, MeetingHeld, RecordFeedback
from offboarding.models.status import OffboardingResult
from tests.helpers import (
    client_file,
    eventually,
    links_to,
    new_worker,
    portal_server,
    wait_until,
    waiting_for,
)
from tests.integration.test_scenarios import FAST

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]
WAIT = 90.0
"""Generous: a real cluster on a busy 2-core machine; nothing here waits on a timer of
more than a few (100 ms) days."""


async def test_contract_end_decided_through_the_portals_links_on_the_cluster(
        cluster: Cluster, settings: Settings, mail: MailCapture, scim: ScimServer) -> None:
    client = await cluster.client()
    cf = client_file(end_in_days=32, scim=scim, follow_up_days=10, retention_days=5)
    finance, steward = cf.approvers.finance[0], cf.approvers.data_verification[0]
    billing = cf.contacts.billing.email

    async def link(to: str, subject: str) -> str:
        async def look() -> list[str]:
            return links_to(mail, to, subject)
        found = await eventually(look, timeout=WAIT, what=f"a link to {to} about {subject!r}")
        return found[-1]

    async with portal_server(settings, client) as (url, settings), \
            new_worker(client, settings), httpx.AsyncClient(timeout=60) as http:
        ops = OffboardingClient(client, settings.task_queue)
        wid = await ops.start(cf, FAST)
        handle = client.get_workflow_handle(wid)
        await ops.send(wid, "complete-task", CompleteTask(by="ops", task="terms-met",
                                                          note="checked"))
        await wait_until(handle, waiting_for("meeting"), timeout=WAIT)
        await ops.send(wid, "meeting-held", MeetingHeld(by="ops", notes="KPIs met"))

        # Finance: the statement's link, its page, the Approve button.
        st = await wait_until(handle, waiting_for("settlement-approval"), timeout=WAIT)
        statement = st.statements[-1]
        approve_link = await link(finance, f"final settlement v{statement.version}")
        assert approve_link.startswith(url + "/o/"), "the link points at the portal"
        page = await http.get(approve_link)
        assert page.status_code == 200
        assert f"Statement v{statement.version}" in page.text and "Approve" in page.text
        answer = await decide(http, approve_link, "approve")
        assert answer.status_code == 200
        assert "your decision was recorded" in answer.text and "was approved" in answer.text
        assert f"By <strong>{finance}</strong> via link" in answer.text

        # The steward: the transfer link, the download checked, the Confirm button.
        st = await wait_until(handle, waiting_for("data-verification"), timeout=WAIT)
        package = st.data_packages[-1]
        data_link = await link(steward, "ready for transfer")
        assert data_link.startswith(url + "/o/")
        checked = await check_download(http, data_link, package.manifest_sha256)
        assert checked.startswith(f"manifest {package.manifest_sha256[:12]} and data.zip")
        answer = await decide(http, data_link, "verify")
        assert answer.status_code == 200
        assert "your decision was recorded" in answer.text
        assert f"By <strong>{steward}</strong> via link" in answer.text

        await wait_until(handle, waiting_for("feedback"), timeout=WAIT)
        await ops.send(wid, "record-feedback", RecordFeedback(by="ops", nps=9, csat=4))
        typed = client.get_workflow_handle(wid, result_type=OffboardingResult)
        result: OffboardingResult = await asyncio.wait_for(typed.result(), WAIT)

        # A used link no longer decides anything: its page says what was decided.
        again = await http.get(approve_link)
        assert "was approved" in again.text and 'name="token"' not in again.text

    st = result.status
    assert result.outcome == "completed"
    assert [s.state for s in st.steps] == ["done"] * len(st.steps)
    assert [(d.action, d.by, d.via) for d in st.decisions if d.via == "link"] == [
        ("approve-settlement", finance, "link"), ("verify-data", steward, "link")]
    assert st.step("settlement").by == finance
    assert st.data_packages[-1].manifest_sha256 == package.manifest_sha256

    # The mail people received: each message once, the billing contact's last one says
    # the money is settled, the farewell carries the closure report.
    counts = Counter(m.message_id for m in mail.messages)
    assert set(counts.values()) == {1}, counts
    assert len(counts) == len(st.emails)
    assert [m.subject for m in mail.to(billing)][-1] == "Our financial relationship is settled"
    [farewell] = [m for m in mail.messages if m.message_id.startswith("<farewell.")]
    assert farewell.attachments() == ["closure-report.html"]

    # The archive: complete, and its report says how each decision was made.
    assert st.archive is not None
    report = (settings.archive_root / st.archive.report).read_text()
    assert report.count("<td>link</td>") == 2, "the closure report names the channel"
    archive = Path(st.archive.location)
    manifest = (archive / "MANIFEST.json").read_bytes()
    assert hashlib.sha256(manifest).hexdigest() == st.archive.manifest_sha256
    keys = [e.key for e in st.emails]
    assert {f"emails/{k}.eml" for k in keys[:keys.index("farewell")]} <= set(st.archive.files)
