"""A playbook's own gate and task on the time-skipping server: asked by link, reminded on
the playbook's days, escalated to ops, a rejection held for ops and asked again, the task
awaited before the archive, and the optional steps it switched off skipped."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from devtools.mailcapture import Captured, MailCapture
from offboarding.client import workflow_id_for
from offboarding.config import Settings
from offboarding.models.playbook import GateSpec, Playbook, TaskSpec
from offboarding.models.status import OffboardingInput, OffboardingResult
from offboarding.workflows.offboarding import ClientOffboarding
from tests.helpers import client_file, new_worker, record_history, wait_until, waiting_for

LEGAL = "legal@services.example"
MANAGER = "account.manager@services.example"
PLAYBOOK = Playbook(
    name="legal-and-hardware", sha256=hashlib.sha256(b"test playbook").hexdigest(),
    off=["review-meeting", "feedback"],
    gates=[GateSpec(id="legal-sign-off", title="Legal sign-off", after="settlement",
                    deciders=[LEGAL], binds="statement", reminder_days=2,
                    escalation_days=5, question="Does the settlement meet the contract?")],
    tasks=[TaskSpec(key="hardware-return", title="Return the hardware", owner=MANAGER,
                    after="access-revocation", due_days=6, reminder_days=2)])


@pytest.fixture
async def started(ts_env: WorkflowEnvironment) -> AsyncIterator[list[WorkflowHandle[Any, Any]]]:
    """The offboardings a test started, terminated if still running when it ends: one left
    behind by a failed test kept the shared time-skipping server from skipping time, and
    every later test of the session timed out."""
    handles: list[WorkflowHandle[Any, Any]] = []
    yield handles
    for handle in handles:
        with contextlib.suppress(RPCError):
            await handle.terminate("the test is over")


def reminders(mail: MailCapture, person: str) -> list[Captured]:
    return [m for m in mail.to(person) if m.subject.startswith("Reminder")]


async def test_a_playbook_gate_and_task_are_asked_reminded_and_escalated(
    ts_env: WorkflowEnvironment, settings: Settings, mail: MailCapture,
    started: list[WorkflowHandle[Any, Any]],
) -> None:
    today = (await ts_env.get_current_time()).date()
    cf = client_file(today=today, end_in_days=10)
    client = ts_env.client
    async with new_worker(client, settings):
        handle = await client.start_workflow(
            ClientOffboarding.run, OffboardingInput(client=cf, playbook=PLAYBOOK),
            id=workflow_id_for(cf.client_id), task_queue=settings.task_queue)
        started.append(handle)
        st = await wait_until(handle, waiting_for("notice-period"))
        assert st.playbook == PLAYBOOK.label
        assert [s.key for s in st.steps].index("legal-sign-off") == \
            [s.key for s in st.steps].index("settlement") + 1
        await ts_env.sleep(timedelta(days=10, hours=1))
        st = await wait_until(handle, waiting_for("settlement-approval"))
        assert st.step("review-meeting").state == "skipped"
        assert st.step("review-meeting").detail == f"switched off by playbook {PLAYBOOK.label}"
        await handle.signal("approve-settlement", {
            "by": cf.approvers.finance[0], "statement_hash": st.statements[-1].short_hash})

        # The gate: its decider is asked by link about the approved statement.
        st = await wait_until(handle, waiting_for("legal-sign-off"))
        [first] = st.gates
        assert (first.round, first.bound) == (1, st.statements[-1].hash)
        [asked] = mail.to(LEGAL)
        assert asked.subject == f"Your decision: Legal sign-off for {cf.client_name}"
        assert "Does the settlement meet the contract?" in asked.text()
        assert "http://portal.test/o/" in asked.text()

        # Reminded every 2 days, ops alerted after 5: the playbook's days, not the defaults.
        await ts_env.sleep(timedelta(days=2, hours=1))
        await wait_until(handle, lambda s: bool(reminders(mail, LEGAL)), what="a reminder")
        assert reminders(mail, LEGAL)[0].subject.startswith("Reminder: Legal sign-off for")
        assert not mail.to(settings.ops_email)
        await ts_env.sleep(timedelta(days=3))
        st = await wait_until(handle, lambda s: s.overdue, what="overdue")
        [alert] = mail.to(settings.ops_email)
        assert "overdue" in alert.subject

        # A rejection stops the gate for ops; their retry asks again, in a new round.
        await handle.signal("reject-gate", {"by": LEGAL, "gate": "legal-sign-off",
                                            "document": first.document,
                                            "reason": "clause 7 is not met"})
        st = await wait_until(handle, waiting_for("ops-action"))
        assert st.step("legal-sign-off").detail == (
            f"NEEDS OPS (gate-legal-sign-off): Legal sign-off rejected by {LEGAL}: "
            "clause 7 is not met")
        await handle.signal("retry-step", {"by": "ops", "problem": "gate-legal-sign-off"})
        # Round 2 is made, its mail sent, and only then waited on: decide once it waits.
        st = await wait_until(handle, lambda s: len(s.gates) == 2
                              and "legal-sign-off" in s.waits, what="round 2 asked")
        second = st.gates[-1]
        assert second.document != first.document
        assert mail.to(LEGAL)[-1].subject == asked.subject, "asked again, by mail"
        await handle.signal("approve-gate", {"by": LEGAL, "gate": "legal-sign-off",
                                             "document": first.document})
        st = await wait_until(handle, lambda s: s.ignored_total == 1, what="the stale round")
        assert "is not the current round" in st.ignored[-1].why
        await handle.signal("approve-gate", {"by": LEGAL, "gate": "legal-sign-off",
                                             "document": second.document[:12]})
        st = await wait_until(handle, waiting_for("data-verification"))
        assert st.step("legal-sign-off").state == "done"
        assert st.step("legal-sign-off").by == LEGAL
        manifest = Path(st.data_packages[-1].location) / "manifest.json"
        await handle.signal("verify-data", {
            "by": cf.approvers.data_verification[0],
            "checksum": hashlib.sha256(manifest.read_bytes()).hexdigest()})

        # The task: opened after access revocation; the archive waits for it.
        st = await wait_until(handle, waiting_for("task-hardware-return"))
        [task_mail] = mail.to(MANAGER)
        assert task_mail.subject == f"A task for you: Return the hardware ({cf.client_name})"
        assert "http://portal.test/o/" in task_mail.text()
        await ts_env.sleep(timedelta(days=2, hours=1))
        await wait_until(handle, lambda s: bool(reminders(mail, MANAGER)), what="a reminder")
        st = await wait_until(handle, lambda s: s.stage == "archive")
        assert st.step("archive").state == "waiting", "the archive waits for the task"
        assert st.step("archive").detail == "for the tasks: hardware-return"
        await handle.signal("complete-task", {"by": MANAGER, "task": "hardware-return",
                                              "note": "laptops back"})
        st = await wait_until(handle, lambda s: s.step("farewell").state == "done")
        [task] = [t for t in st.tasks if t.key == "hardware-return"]
        assert (task.done, task.by, task.note) == (True, MANAGER, "laptops back")
        assert st.step("feedback").detail == f"switched off by playbook {PLAYBOOK.label}"
        await ts_env.sleep(timedelta(days=91))
        result = await client.get_workflow_handle(
            handle.id, result_type=OffboardingResult).result()
        assert result.outcome == "completed"
        await record_history(handle, "playbook-gate-and-task")


async def test_a_cancel_ends_a_playbook_task_that_waits(
    ts_env: WorkflowEnvironment, settings: Settings, mail: MailCapture,
    started: list[WorkflowHandle[Any, Any]],
) -> None:
    today = (await ts_env.get_current_time()).date()
    cf = client_file(today=today, end_in_days=10)
    playbook = PLAYBOOK.model_copy(update={"gates": []})
    async with new_worker(ts_env.client, settings):
        handle = await ts_env.client.start_workflow(
            ClientOffboarding.run, OffboardingInput(client=cf, playbook=playbook),
            id=workflow_id_for(cf.client_id), task_queue=settings.task_queue)
        started.append(handle)
        await ts_env.sleep(timedelta(days=10, hours=1))
        st = await wait_until(handle, waiting_for("settlement-approval"))
        await handle.signal("approve-settlement", {
            "by": cf.approvers.finance[0], "statement_hash": st.statements[-1].short_hash})
        st = await wait_until(handle, waiting_for("data-verification"))
        manifest = Path(st.data_packages[-1].location) / "manifest.json"
        await handle.signal("verify-data", {
            "by": cf.approvers.data_verification[0],
            "checksum": hashlib.sha256(manifest.read_bytes()).hexdigest()})
        await wait_until(handle, waiting_for("task-hardware-return"))
        await handle.signal("cancel", {"by": "ops", "reason": "client stays"})
        result = await ts_env.client.get_workflow_handle(
            handle.id, result_type=OffboardingResult).result()
        assert result.outcome == "cancelled"
        assert "task-hardware-return" not in result.status.waits
        [task] = [t for t in result.status.tasks if t.key == "hardware-return"]
        assert not task.done
