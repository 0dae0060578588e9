"""Crashes and restarts with real processes: the worker killed with SIGKILL at each kind of
stage, the dev server (SQLite file) restarted while offboardings wait. Nothing is lost and
every message arrives exactly once (counted by Message-ID), except in the one window SMTP
cannot close, which is measured here rather than hidden."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import Client, WorkflowHandle

from devtools import mailcapture
from devtools.mailcapture import MailCapture
from devtools.procs import free_port, start_logged, stop
from devtools.scim import ScimServer
from devtools.stack import DevServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import (
    Cancel,
    CompleteTask,
    MeetingHeld,
    RecordFeedback,
    VerifyData,
)
from offboarding.models.status import OffboardingResult, Timings
from offboarding.temporal import connect, register_search_attributes
from tests.faults import FaultProxy
from tests.helpers import (
    client_file,
    eventually,
    new_worker,
    status_of,
    wait_until,
    waiting_for,
    worker_env,
)

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        self.proc = await asyncio.to_thread(
            start_logged, [sys.executable, "worker.py"], self.log, "worker polling",
            env=self.env, cwd=ROOT)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        if self.proc is not None:
            stop(self.proc)


@pytest.fixture
def server(temporal_cli: str, tmp_path: Path) -> Iterator[DevServer]:
    dev = DevServer(tmp_path / "temporal.db", tmp_path / "server.log", cli=temporal_cli).start()
    yield dev
    dev.close()


@pytest.fixture
async def client(server: DevServer) -> Client:
    c = await connect(server.address)
    await register_search_attributes(c)
    return c


@pytest.fixture
async def worker(server: DevServer, settings: Settings,
                 tmp_path: Path) -> AsyncIterator[WorkerProcess]:
    w = WorkerProcess(worker_env(settings, server.address), tmp_path / "worker.log")
    await w.start()
    yield w
    w.close()


async def notice_timer(client: Client, handle: WorkflowHandle[Any, Any]) -> bool | None:
    """Whether the server has fired the notice timer (None: not started yet), read from
    the history, which the server keeps whether a worker runs or not."""
    started: set[int] = set()
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            [summary] = await client.data_converter.decode([event.user_metadata.summary],
                                                           [str])
            if summary.startswith("notice due"):
                started.add(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED and \
                event.timer_fired_event_attributes.started_event_id in started:
            return True
    return False if started else None


def stalled(mail: MailCapture) -> Callable[[], Awaitable[bool]]:
    async def look() -> bool:
        return mail.stalled.is_set()
    return look


def message_ids(mail: MailCapture) -> Counter[str]:
    return Counter(m.message_id for m in mail.messages)


async def result_of(client: Client, handle: WorkflowHandle[Any, Any]) -> OffboardingResult:
    typed = client.get_workflow_handle(handle.id, result_type=OffboardingResult)
    result: OffboardingResult = await asyncio.wait_for(typed.result(), 120)
    return result


async def test_kills_and_server_restarts_lose_nothing_and_send_nothing_twice(
    server: DevServer, client: Client, worker: WorkerProcess, settings: Settings,
    mail: MailCapture, scim: ScimServer,
) -> None:
    # Notice on day 10, end on day 40: with half-second days the notice period lasts 15 s,
    # long enough for a server restart to fall inside it.
    cf = client_file(end_in_days=40, scim=scim, follow_up_days=10, retention_days=5)
    cli = OffboardingClient(client, settings.task_queue)
    day = timedelta(milliseconds=500)
    wid = await cli.start(cf, Timings(day_length=day, meeting_deadline_days=10_000,
                                      settlement_reminder_days=10_000,
                                      settlement_escalation_days=10_000,
                                      data_reminder_days=10_000, data_escalation_days=10_000,
                                      feedback_deadline_days=10_000))
    handle = client.get_workflow_handle(wid)

    # 1. Killed while sleeping on the notice timer, which fires while no worker runs.
    await wait_until(handle, lambda s: s.step("notice").state == "waiting")
    worker.kill()
    assert await notice_timer(client, handle) is False, "it fired before the kill"
    await eventually(lambda: notice_timer(client, handle), timeout=30,
                     what="the notice timer to fire with no worker running")
    await worker.start()
    st = await wait_until(handle, lambda s: s.step("notice").state == "done", timeout=60)

    # 2. The server restarts during the notice period: its timer survives.
    assert st.waiting_for == "notice-period"
    server.restart()
    await wait_until(handle, waiting_for("meeting"), timeout=60)
    await cli.send(wid, "meeting-held", MeetingHeld(by="ops", notes="held"))

    # 3. Killed while waiting for an approval; the decision arrives while no worker runs
    #    (as a signal, stored by the server), and the server restarts before it is seen.
    st = await wait_until(handle, waiting_for("settlement-approval"), timeout=60)
    worker.kill()
    await handle.signal("approve-settlement", {
        "by": cf.approvers.finance[0], "statement_hash": st.statements[-1].short_hash})
    server.restart()
    await worker.start()
    st = await wait_until(handle, waiting_for("data-verification"), timeout=60)
    assert st.step("settlement").by == cf.approvers.finance[0]

    manifest = Path(st.data_packages[-1].location) / "manifest.json"
    await cli.send(wid, "verify-data", VerifyData(
        by=cf.approvers.data_verification[0],
        checksum=hashlib.sha256(manifest.read_bytes()).hexdigest()))
    await wait_until(handle, waiting_for("feedback"), timeout=60)
    await cli.send(wid, "complete-task", CompleteTask(by="ops", task="handover-session-held"))
    await cli.send(wid, "record-feedback", RecordFeedback(by="ops", nps=8))

    # 4. Killed at the archive and farewell stage.
    await wait_until(handle, lambda s: s.stage in ("archive", "farewell", "keep-in-touch"))
    worker.kill()
    await worker.start()
    result = await result_of(client, handle)

    assert result.outcome == "completed"
    assert [s.state for s in result.status.steps] == ["done"] * len(result.status.steps)
    counts = message_ids(mail)
    # 11, and since approval links one request per finance approver (two here).
    assert len(counts) == len(result.status.emails) == 13
    assert set(counts.values()) == {1}, f"sent twice: {[k for k, v in counts.items() if v > 1]}"
    assert worker.starts == 4


@pytest.mark.parametrize("after_commit", [False, True], ids=["before-commit", "after-commit"])
async def test_a_worker_killed_during_an_email_send(
    server: DevServer, client: Client, worker: WorkerProcess, settings: Settings,
    mail: MailCapture, scim: ScimServer, after_commit: bool,
) -> None:
    """Before the SMTP server commits the message, a kill costs nothing: the retry sends it
    once. After the commit but before the reply reaches the worker (the window SMTP cannot
    close), the retry sends it again: measured here as exactly one duplicate, which the
    receiving side can recognise by its identical Message-ID."""
    cf = client_file("termination", scim=scim)
    mail.stall_match = "access-revoked"
    mail.stall_seconds = 5
    mail.stall_after_commit = after_commit
    cli = OffboardingClient(client, settings.task_queue)
    wid = await cli.start(cf)
    handle = client.get_workflow_handle(wid)
    await eventually(stalled(mail), what="the send to reach the SMTP server")
    worker.kill()
    await worker.start()
    st = await wait_until(handle, waiting_for("settlement-approval"), timeout=90)
    counts = message_ids(mail)
    [revoked_id] = [k for k in counts if "access-revoked" in k]
    assert counts[revoked_id] == (2 if after_commit else 1)
    assert all(v == 1 for k, v in counts.items() if k != revoked_id)
    assert [e.key for e in st.emails].count("access-revoked") == 1
    await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
    await result_of(client, handle)


async def test_sigterm_lets_the_running_send_finish(
    server: DevServer, client: Client, worker: WorkerProcess, settings: Settings,
    mail: MailCapture, scim: ScimServer,
) -> None:
    cf = client_file("termination", scim=scim)
    mail.stall_match = "access-revoked"
    mail.stall_seconds = 3
    cli = OffboardingClient(client, settings.task_queue)
    wid = await cli.start(cf)
    handle = client.get_workflow_handle(wid)
    await eventually(stalled(mail), what="the send to reach the SMTP server")
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.proc.wait, 30) == 0
    [revoked] = [m for m in mail.messages if "access-revoked" in m.message_id]
    assert revoked.subject == "Access to our systems has ended"
    await worker.start()
    st = await wait_until(handle, waiting_for("settlement-approval"), timeout=30)
    assert [e.key for e in st.emails].count("access-revoked") == 1
    assert set(message_ids(mail).values()) == {1}
    await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
    await result_of(client, handle)


async def test_an_smtp_outage_is_ridden_out_with_retries(
    dev_env: Any, settings: Settings, scim: ScimServer,
) -> None:
    port = free_port()  # nothing listens here yet: the mail server is down
    down = settings.model_copy(update={"smtp_port": port})
    cf = client_file("termination", scim=scim)
    async with new_worker(dev_env.client, down):
        cli = OffboardingClient(dev_env.client, down.task_queue)
        wid = await cli.start(cf)
        handle = dev_env.client.get_workflow_handle(wid)

        async def pending_activities() -> list[PendingActivityInfo]:
            return list((await handle.describe()).raw_description.pending_activities)

        pending = await eventually(pending_activities, lambda p: bool(p) and p[0].attempt >= 3,
                                   every=0.2, what="the send to be retried twice")
        assert "could not reach the mail server" in pending[0].last_failure.message
        assert (await status_of(handle)).outcome is None, "the offboarding waits, not fails"
        controller, capture = mailcapture.start("127.0.0.1", port)
        try:
            st = await wait_until(handle, waiting_for("settlement-approval"), timeout=60)
            assert [m.subject for m in capture.messages][:1] == [
                "Access to our systems has ended"]
            assert [e.key for e in st.emails][:1] == ["access-revoked"]
            await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
            await result_of(dev_env.client, handle)
        finally:
            controller.stop()


async def test_a_worker_killed_during_scim_revocation(
    server: DevServer, client: Client, settings: Settings, mail: MailCapture,
    scim: ScimServer, tmp_path: Path,
) -> None:
    proxy = FaultProxy(scim.port, delay=1.0)
    port = await proxy.start()
    slow = settings.model_copy(update={"scim_systems": {
        "crm": settings.scim_systems["crm"].model_copy(
            update={"base_url": f"http://127.0.0.1:{port}/crm/v2"})}})
    worker = WorkerProcess(worker_env(slow, server.address), tmp_path / "worker.log")
    await worker.start()
    try:
        cf = client_file("termination", scim=scim)
        [user] = cf.systems[0].users
        cli = OffboardingClient(client, settings.task_queue)
        wid = await cli.start(cf)
        handle = client.get_workflow_handle(wid)
        await asyncio.wait_for(proxy.seen.wait(), 30)
        worker.kill()  # mid-request: the SCIM call may or may not have reached the server
        await worker.start()
        st = await wait_until(handle, waiting_for("settlement-approval"), timeout=90)
        [revocation] = st.revocations
        assert revocation.accounts[0].result in ("deleted", "already-gone")
        assert user not in scim.users("crm")
        assert set(message_ids(mail).values()) == {1}
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await result_of(client, handle)
    finally:
        worker.close()
        proxy.close()
