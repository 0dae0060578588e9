"""The approvals portal over HTTP, on the dev server with a real worker and real mail:
approvers decide from the links in their email; every link that is not theirs, not valid
or not current is refused as the issue describes, and a refusal sends no update (the
history's length does not change). The portal app runs in process (httpx's ASGI
transport); the browser test and the download's memory use run it under uvicorn."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devtools import stack
from devtools.mailcapture import MailCapture
from devtools.procs import free_port, stop, wait_for_port
from devtools.scim import ScimServer
from offboarding.client import OffboardingClient, Refused
from offboarding.config import Settings
from offboarding.models.client_file import ClientFile
from offboarding.models.messages import ApproveSettlement, Cancel, Message
from offboarding.models.status import OffboardingStatus, Timings
from offboarding.portal.app import build_app
from offboarding.security.links import LinkKeys, load_link_keys, new_key_file, parse
from tests.conftest import ROOT
from tests.helpers import (
    CLIENT_DATA,
    client_file,
    links_to,
    new_worker,
    record_history,
    wait_until,
    waiting_for,
)

DAY = timedelta(milliseconds=100)
PATIENT = Timings(day_length=DAY, settlement_reminder_days=1000,
                  settlement_escalation_days=1000, data_reminder_days=1000,
                  data_escalation_days=1000, meeting_deadline_days=1000,
                  feedback_deadline_days=1000)
class CountingClient(OffboardingClient):
    """The portal's real Temporal client, counting what it is asked: a refused link must
    not reach Temporal at all."""

    calls = 0

    async def status(self, wid: str) -> OffboardingStatus:
        CountingClient.calls += 1
        return await super().status(wid)

    async def send(self, wid: str, action: str, msg: Message) -> Any:
        CountingClient.calls += 1
        return await super().send(wid, action, msg)


@dataclass
class Deciding:
    env: WorkflowEnvironment
    settings: Settings
    mail: MailCapture
    cli: OffboardingClient
    http: httpx.AsyncClient
    cf: ClientFile
    handle: WorkflowHandle[Any, Any]

    async def history_length(self) -> int:
        return len((await self.handle.fetch_history()).events)

    def path(self, link: str) -> str:
        return link.removeprefix("http://portal.test")


async def _deciding(env: WorkflowEnvironment, settings: Settings, mail: MailCapture,
                    scim: ScimServer, require_links: bool = False) -> AsyncIterator[Deciding]:
    settings = settings.model_copy(update={"require_links": require_links})
    app = build_app(settings, env.client)
    app.state.portal.ops = CountingClient(env.client, settings.task_queue)
    cli = OffboardingClient(env.client, settings.task_queue, require_links=require_links)
    cf = client_file("termination", scim=scim)
    async with new_worker(env.client, settings), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://portal.test") as http:
        wid = await cli.start(cf, PATIENT)
        handle = env.client.get_workflow_handle(wid)
        await wait_until(handle, lambda st: {"settlement-approval", "data-verification"}
                         <= set(st.waits))
        yield Deciding(env, settings, mail, cli, http, cf, handle)
        with contextlib.suppress(Refused):  # still running: stop it with the worker
            await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))


@pytest.fixture
async def deciding(dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture,
                   scim: ScimServer) -> AsyncIterator[Deciding]:
    async for d in _deciding(dev_env, settings, mail, scim):
        yield d


async def test_finance_disputes_then_approves_and_the_steward_verifies_through_links(
        deciding: Deciding) -> None:
    d, cf = deciding, deciding.cf
    finance, steward = cf.approvers.finance[0], cf.approvers.data_verification[0]
    [v1] = links_to(d.mail, finance, "final settlement v1")
    page = await d.http.get(d.path(v1))
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "Statement v1" in page.text and "Approve" in page.text
    assert "Set-Cookie" not in page.headers

    dispute = await d.http.post(d.path(v1).rsplit("/", 1)[0] + "/decide", data={
        "token": v1.rsplit("/", 1)[1], "decision": "dispute", "reason": "Fee waived",
        "adjustments": "Waived late fee = -150.00"})
    assert dispute.status_code == 303
    st = await wait_until(d.handle, lambda st: len(st.statements) == 2)
    decision = st.decisions[-1]
    assert (decision.action, decision.by, decision.via) == ("dispute-settlement", finance, "link")

    [v2] = await _eventually(lambda: links_to(d.mail, finance, "final settlement v2"))
    old = await d.http.get(d.path(v1))
    assert "replaced by statement v2" in old.text and "was disputed" in old.text
    approve = await _post(d, v2, "approve")
    assert approve.status_code == 303
    shown = await d.http.get(approve.headers["location"].removeprefix("http://portal.test"))
    assert "your decision was recorded" in shown.text and "was approved" in shown.text
    assert f"By <strong>{finance}</strong> via link" in shown.text

    [data] = links_to(d.mail, steward, "ready for transfer")
    manifest = await d.http.get(d.path(data) + "/manifest.json")
    package = await d.http.get(d.path(data) + "/data.zip")
    st = await wait_until(d.handle, lambda st: st.step("settlement").state == "done")
    assert hashlib.sha256(manifest.content).hexdigest() == st.data_packages[-1].manifest_sha256
    assert manifest.headers["x-checksum-sha256"] == st.data_packages[-1].manifest_sha256
    listed = json.loads(manifest.content)
    assert package.headers["repr-digest"] == "sha-256=:" + base64.b64encode(
        hashlib.sha256(package.content).digest()).decode() + ":"
    assert hashlib.sha256(package.content).hexdigest() == listed["package_sha256"]
    with zipfile.ZipFile(io.BytesIO(package.content)) as zf:
        for entry in listed["files"]:
            assert hashlib.sha256(zf.read(entry["path"])).hexdigest() == entry["sha256"]
    assert (await _post(d, data, "verify")).status_code == 303
    st = await wait_until(d.handle, lambda st: st.step("data-transfer").state == "done")
    assert [(x.action, x.by, x.via) for x in st.decisions if x.via] == [
        ("dispute-settlement", finance, "link"), ("approve-settlement", finance, "link"),
        ("verify-data", steward, "link")]
    # No mail to the client names a place on our disks.
    assert all(str(d.settings.transfer_root) not in m.text() for m in d.mail.to(steward))
    result = await d.cli.result(d.handle.id)
    assert result.outcome == "completed"
    report = (d.settings.archive_root / result.status.archive.report).read_text() \
        if result.status.archive else ""
    assert report.count("<td>link</td>") == 3, "the closure report says how each was made"
    await record_history(d.handle, "termination-approval-links")


async def _post(d: Deciding, link: str, decision: str, **fields: str) -> httpx.Response:
    wid_path, token = d.path(link).rsplit("/", 1)
    return await d.http.post(wid_path + "/decide", data={"token": token, "decision": decision,
                                                          **fields})


async def _eventually(get: Any, tries: int = 100) -> Any:
    for _ in range(tries):
        if found := get():
            return found
        await asyncio.sleep(0.1)
    raise AssertionError("never appeared")


async def test_links_that_are_not_valid_here_are_refused_without_an_update(
        deciding: Deciding, tmp_path: Any) -> None:
    d, cf = deciding, deciding.cf
    finance, steward = cf.approvers.finance[0], cf.approvers.data_verification[0]
    [link] = links_to(d.mail, finance, "final settlement v1")
    [data] = links_to(d.mail, steward, "ready for transfer")
    wid_path, token = d.path(link).rsplit("/", 1)
    keys = load_link_keys(d.settings.link_key_file, None, None)
    assert keys is not None
    new_key_file(tmp_path / "other.json", kid="l2")
    other = load_link_keys(tmp_path / "other.json", None, None)
    assert other is not None
    st = await wait_until(d.handle, waiting_for("settlement-approval"))
    statement = st.statements[-1].hash

    def minted(k: LinkKeys = keys, **change: Any) -> str:
        a: dict[str, Any] = {"workflow_id": d.handle.id, "family": "settlement",
                             "document": statement, "email": finance,
                             "now": datetime.now(UTC), **change}
        return k.mint(a["workflow_id"], a["family"], a["document"], a["email"], a["now"])

    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    forbidden = {
        "tampered signature": f"{wid_path}/{tampered}",
        "expired": f"{wid_path}/{minted(now=datetime.now(UTC) - timedelta(days=15))}",
        "unknown key id": f"{wid_path}/{minted(other)}",
        "another offboarding's id": f"/o/offboarding-someone-else/{token}",
        "a finance link on the download": f"{wid_path}/{token}/data.zip",
    }
    before, calls = await d.history_length(), CountingClient.calls
    for what, path in forbidden.items():
        answer = await d.http.get(path)
        assert answer.status_code == 403, what
        assert "This link cannot be used" in answer.text, what
        assert answer.headers["cache-control"] == "no-store", what
        if not path.endswith("data.zip"):  # and the same link cannot decide either
            post = await d.http.post("/o/" + path.split("/")[2] + "/decide", data={
                "token": path.split("/")[3], "decision": "approve"})
            assert post.status_code == 403, what
    assert CountingClient.calls == calls, "a refused link must not reach Temporal"

    malformed = {
        "oversized": (b"token=" + token.encode() + b"&reason=" + b"x" * 70_000, 413),
        "unknown field": (f"token={token}&decision=approve&by=mallory".encode(), 400),
        "field twice": (f"token={token}&decision=approve&decision=dispute".encode(), 400),
        "not UTF-8": (b"token=" + token.encode() + b"&reason=\xff\xfe", 400),
        "data decision on a finance link": (f"token={token}&decision=verify".encode(), 400),
        "bad adjustment": (f"token={token}&decision=dispute&reason=x&adjustments=fee"
                           .encode(), 400),
        "no link": (b"decision=approve", 403),
    }
    for what, (body, code) in malformed.items():
        answer = await d.http.post(wid_path + "/decide", content=body, headers={
            "content-type": "application/x-www-form-urlencoded"})
        assert answer.status_code == code, (what, answer.text)
    bad = await d.http.post(wid_path + "/decide", data={
        "token": token, "decision": "dispute", "reason": "x", "adjustments": "fee = lots"})
    assert "adjustments, line 1: 'lots' is not an amount" in html.unescape(bad.text)
    assert await d.history_length() == before

    # A decision, then the same link again and an old statement's link: refused, no update.
    assert (await _post(d, link, "dispute", reason="fee", adjustments="Fee = -1")
            ).status_code == 303
    await wait_until(d.handle, lambda st: len(st.statements) == 2)
    [v2] = await _eventually(lambda: links_to(d.mail, finance, "final settlement v2"))
    await wait_until(d.handle, waiting_for("settlement-approval"))
    before = await d.history_length()
    again = await _post(d, link, "approve")
    assert again.status_code == 409 and "replaced by statement v2" in again.text
    assert "was disputed" in again.text
    assert await d.history_length() == before
    assert (await _post(d, v2, "approve")).status_code == 303
    await wait_until(d.handle, lambda st: st.step("settlement").state == "done")
    before = await d.history_length()
    twice = await _post(d, v2, "dispute", reason="changed my mind")
    assert twice.status_code == 409 and "was approved" in twice.text
    assert await d.history_length() == before
    # The steward's link does not open a statement, nor decide one.
    assert (await _post(d, data, "approve")).status_code == 400
    # A stored package that no longer matches what the steward was sent is not served.
    st = await d.cli.status(d.handle.id)
    manifest = Path(st.data_packages[-1].location) / "manifest.json"
    manifest.write_bytes(manifest.read_bytes() + b" ")
    damaged = await d.http.get(d.path(data) + "/data.zip")
    assert damaged.status_code == 500 and "does not match the checksum" in damaged.text


async def test_a_cancel_ends_the_export_and_its_download(deciding: Deciding) -> None:
    """Issue 20, row 10: a cancelled offboarding kept its export, and the steward's link
    kept downloading it."""
    d = deciding
    [data] = links_to(d.mail, d.cf.approvers.data_verification[0], "")[-1:]
    assert (await d.http.get(d.path(data) + "/data.zip")).status_code == 200
    st = await d.cli.status(d.handle.id)
    package = Path(st.data_packages[-1].location)
    await d.cli.send(d.handle.id, "cancel", Cancel(by="ops", reason="signed elsewhere"))
    await d.handle.result()
    await record_history(d.handle, "cancel-ends-exports")
    gone = await d.http.get(d.path(data) + "/data.zip")
    assert gone.status_code == 410 and "cancelled" in gone.text
    assert not package.exists(), "the export was deleted"
    st = await d.cli.status(d.handle.id)
    assert st.step("data-retention").detail == "cancelled; deleted: transfer packages"
    assert (CLIENT_DATA / d.cf.data_sets[0].path).exists(), "the client's own data stays"


async def test_a_terminated_offboarding_reads_as_ended_and_serves_nothing(
        deciding: Deciding) -> None:
    """Found by an attacker's pass: after `temporal workflow terminate` (or the server's
    history limit), `status` still showed the last stage and waits, and the portal still
    offered the form and served the export."""
    d = deciding
    [data] = links_to(d.mail, d.cf.approvers.data_verification[0], "")[-1:]
    await d.handle.terminate("an operator's mistake")
    st = await d.cli.status(d.handle.id)
    assert st.ended_as == "terminated" and st.outcome is None
    gone = await d.http.get(d.path(data) + "/data.zip")
    assert gone.status_code == 410 and "terminated" in gone.text
    page = await d.http.get(d.path(data))
    assert "The offboarding is terminated" in page.text and "<form" not in page.text


async def test_with_links_required_the_cli_and_a_signal_cannot_decide_for_an_approver(
        dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture,
        scim: ScimServer) -> None:
    async for d in _deciding(dev_env, settings, mail, scim, require_links=True):
        finance = d.cf.approvers.finance[0]
        st = await wait_until(d.handle, waiting_for("settlement-approval"))
        approve = ApproveSettlement(by=finance, statement_hash=st.statements[-1].hash)
        with pytest.raises(Refused, match="only through the approver's own link"):
            await d.cli.send(d.handle.id, "approve-settlement", approve)
        await d.handle.signal("approve-settlement", approve.model_dump(mode="json"))
        st = await wait_until(d.handle, lambda st: st.ignored_total == 1)
        assert st.ignored[-1].action == "approve-settlement"
        assert "only through the approver's own link" in st.ignored[-1].why
        assert "settlement-approval" in st.waits
        [link] = links_to(d.mail, finance, "final settlement v1")
        assert (await _post(d, link, "approve")).status_code == 303
        st = await wait_until(d.handle, lambda st: st.step("settlement").state == "done")
        assert st.decisions[-1].via == "link"


def _rss(pid: int) -> int:
    """Resident memory of a process, in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_a_200_mb_export_downloads_with_bounded_memory(
        dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture,
        scim: ScimServer, tmp_path: Path) -> None:
    """The portal process (as make run and compose start it) streams the package: its
    resident memory during the download of 200 MB grows by a few MB, not by the file."""
    cf = client_file("termination", scim=scim)
    big = CLIENT_DATA / cf.client_id / "archive.bin"
    with big.open("wb") as f:
        for _ in range(25):
            f.write(os.urandom(8 * 1024 * 1024))  # incompressible: data.zip stays 200 MB
    cf = ClientFile.model_validate({**cf.model_dump(mode="json"), "data_sets": [
        *[d.model_dump() for d in cf.data_sets],
        {"name": "Archive", "path": f"{cf.client_id}/archive.bin"}]})
    port = free_port()
    settings = settings.model_copy(update={"portal_url": f"http://127.0.0.1:{port}",
                                           "portal_address": f"127.0.0.1:{port}"})
    address = dev_env.client.service_client.config.target_host
    portal = subprocess.Popen([sys.executable, "-m", "offboarding.portal.main"],
                              env=stack.worker_env(settings, address), cwd=ROOT,
                              stdout=(tmp_path / "portal.log").open("wb"),
                              stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, portal, timeout=30)
        async with new_worker(dev_env.client, settings), httpx.AsyncClient(timeout=120) as http:
            cli = OffboardingClient(dev_env.client, settings.task_queue)
            handle = dev_env.client.get_workflow_handle(await cli.start(cf, PATIENT))
            await wait_until(handle, waiting_for("data-verification"), timeout=180)
            [link] = links_to(mail, cf.approvers.data_verification[0], "ready for transfer")
            assert (await http.get(link)).status_code == 200  # warm: templates, client
            before = peak = _rss(portal.pid)
            digest, size = hashlib.sha256(), 0
            async with http.stream("GET", link + "/data.zip") as download:
                async for chunk in download.aiter_bytes():
                    digest.update(chunk)
                    size += len(chunk)
                    peak = max(peak, _rss(portal.pid))
                expected = download.headers["x-checksum-sha256"]
            await cli.send(handle.id, "cancel", Cancel(by="ops", reason="test over"))
    finally:
        stop(portal)
    assert size > 200 * 1024 * 1024 and digest.hexdigest() == expected
    grew = peak - before
    print(f"portal RSS {before / 2**20:.1f} MiB before, peak {peak / 2**20:.1f} MiB during "
          f"a {size / 2**20:.0f} MiB download (+{grew / 2**20:.1f} MiB)")
    assert grew < 32 * 1024 * 1024, f"the portal grew by {grew / 2**20:.0f} MiB"
    # Its access log shows the requests, never the link itself: a link is a credential.
    token = link.rsplit("/", 1)[1]
    logged = (tmp_path / "portal.log").read_text()
    assert "/data.zip HTTP/1.1\" 200" in logged and token not in logged, logged[-2000:]


async def test_every_approver_and_every_reminder_gets_its_own_working_link(
        dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture,
        scim: ScimServer) -> None:
    approvers = ["finance.lead@example.com", "cfo@example.com"]
    cf = client_file("termination", scim=scim, approvers={
        "finance": approvers, "data_verification": ["mindy@globex.example"]})
    keys = load_link_keys(settings.link_key_file, None, None)
    assert keys is not None
    reminding = PATIENT.model_copy(update={"settlement_reminder_days": 3})
    app = build_app(settings, dev_env.client)
    async with new_worker(dev_env.client, settings), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://portal.test") as http:
        cli = OffboardingClient(dev_env.client, settings.task_queue)
        handle = dev_env.client.get_workflow_handle(await cli.start(cf, reminding))
        for person in approvers:
            await _eventually(lambda p=person: [
                m for m in mail.to(p) if m.subject.startswith("Reminder")])
        for person in approvers:
            asked = links_to(mail, person, "final settlement v1")
            reminded = links_to(mail, person, "Reminder")
            assert len(asked) == 1 and reminded, person
            for link in [*asked, *reminded]:
                claims = parse(link.rsplit("/", 1)[1], keys.public(), datetime.now(UTC))
                assert claims.e == person, "each link is its reader's own"
                page = await http.get(link.removeprefix("http://portal.test"))
                assert page.status_code == 200 and f"for {person}" in page.text
            # Each message went to that person alone.
            assert all(m.recipients == [person] for m in mail.to(person)
                       if "settlement v1" in m.subject or m.subject.startswith("Reminder"))

        # A genuine link for someone who is not an approver: the workflow itself refuses
        # it (its validator: no trace in history), and the page says why in words.
        st = await wait_until(handle, waiting_for("settlement-approval"))
        intruder = keys.mint(handle.id, "settlement", st.statements[-1].hash,
                             "intruder@example.com", datetime.now(UTC), run_id=st.run_id)
        answer = await http.post(f"/o/{handle.id}/decide",
                                 data={"token": intruder, "decision": "approve"})
        assert answer.status_code == 409
        assert "intruder@example.com is not a finance approver for this client" in \
            html.unescape(answer.text)
        assert "Traceback" not in answer.text
        st = await cli.status(handle.id)
        assert not [d for d in st.decisions if d.by == "intruder@example.com"]
        await cli.send(handle.id, "cancel", Cancel(by="ops", reason="test over"))
