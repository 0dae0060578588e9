"""The offboarding's scenarios on the dev server, steered through the CLI's validated
updates as ops and approvers would. Days are shortened (``Timings.day_length``) so months
of contract time pass in seconds; the timer arithmetic itself is in ``test_timers.py``."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devtools.mailcapture import MailCapture
from devtools.scim import ScimServer
from offboarding.client import OffboardingClient, Refused
from offboarding.config import Settings
from offboarding.models.client_file import ClientFile
from offboarding.models.messages import (
    Adjustment,
    ApproveSettlement,
    Cancel,
    CompleteTask,
    DisputeSettlement,
    ExtendNotice,
    MeetingHeld,
    RecordFeedback,
    RejectData,
    Renew,
    TerminateEarly,
    VerifyData,
)
from offboarding.models.status import OffboardingResult, OffboardingStatus, Timings
from tests.conftest import ROOT
from tests.helpers import client_file, new_worker, status_of, wait_until, waiting_for

HISTORIES = ROOT / "tests" / "histories"
DAY = timedelta(milliseconds=100)
# People get long deadlines here, so a slow machine never makes a test's decision late;
# tests that want a deadline to pass set a short one themselves.
FAST = Timings(day_length=DAY, settlement_reminder_days=1000, settlement_escalation_days=1000,
               data_reminder_days=1000, data_escalation_days=1000, meeting_deadline_days=1000,
               feedback_deadline_days=1000)


@dataclass
class Run:
    cli: OffboardingClient
    env: WorkflowEnvironment
    settings: Settings
    mail: MailCapture
    scim: ScimServer

    async def start(self, cf: ClientFile, timings: Timings = FAST) -> WorkflowHandle[Any, Any]:
        wid = await self.cli.start(cf, timings)
        return self.env.client.get_workflow_handle(wid)

    async def result(self, handle: WorkflowHandle[Any, Any],
                     record_as: str | None = None) -> OffboardingResult:
        """The run's result; with RECORD_HISTORIES=1, its history is saved for replay tests
        under a name not taken yet (a committed history is never recorded again)."""
        typed = self.env.client.get_workflow_handle(handle.id, result_type=OffboardingResult)
        result: OffboardingResult = await typed.result()
        path = HISTORIES / f"{record_as}.json"
        if record_as and os.environ.get("RECORD_HISTORIES") == "1" and not path.exists():
            history = await handle.fetch_history()
            path.write_text(history.to_json())
        return result

    def subjects(self, to: str) -> list[str]:
        return [m.subject for m in self.mail.to(to)]


@pytest.fixture
async def run(dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture,
              scim: ScimServer) -> AsyncIterator[Run]:
    async with new_worker(dev_env.client, settings):
        yield Run(OffboardingClient(dev_env.client, settings.task_queue),
                  dev_env, settings, mail, scim)


def checksum_of(st: OffboardingStatus) -> str:
    manifest = Path(st.data_packages[-1].location) / "manifest.json"
    return hashlib.sha256(manifest.read_bytes()).hexdigest()


async def settle_and_verify(cli: OffboardingClient, handle: WorkflowHandle[Any, Any],
                            cf: ClientFile, timeout: float = 30.0) -> None:
    """Finance approves the statement and the steward verifies the export, by the CLI's
    updates, each once the offboarding waits for it."""
    st = await wait_until(handle, waiting_for("settlement-approval"), timeout=timeout)
    await cli.send(handle.id, "approve-settlement", ApproveSettlement(
        by=cf.approvers.finance[0], statement_hash=st.statements[-1].short_hash))
    st = await wait_until(handle, waiting_for("data-verification"), timeout=timeout)
    await cli.send(handle.id, "verify-data", VerifyData(
        by=cf.approvers.data_verification[0], checksum=checksum_of(st)))


async def test_contract_end_from_notice_to_check_in(run: Run) -> None:
    cf = client_file(end_in_days=32, scim=run.scim, follow_up_days=10, retention_days=5)
    primary, billing = cf.contacts.primary.email, cf.contacts.billing.email
    steward = cf.contacts.data_steward.email
    handle = await run.start(cf)
    await run.cli.send(handle.id, "complete-task",
                       CompleteTask(by="ops", task="terms-met", note="checked"))
    await wait_until(handle, waiting_for("meeting"), what="meeting proposal")
    ack = await run.cli.send(handle.id, "meeting-held", MeetingHeld(by="ops", notes="KPIs met"))
    assert ack.detail == "review meeting held"
    await settle_and_verify(run.cli, handle, cf)
    st = await wait_until(handle, waiting_for("feedback"))
    await run.cli.send(handle.id, "record-feedback", RecordFeedback(
        by="ops", nps=9, csat=4, comment="Smooth handover", internal_note="Renewal likely"))
    # Recorded after the publish-on-change change; contract-end.json is from before the
    # handover invite, contract-end-handover-invite.json from before publishing on change.
    result = await run.result(handle, record_as="contract-end-publish-on-change")

    assert result.outcome == "completed"
    st = result.status
    assert [s.state for s in st.steps] == ["done"] * len(st.steps)
    assert st.step("review-meeting").by == "ops"
    assert st.feedback is not None and (st.feedback.nps, st.feedback.csat) == (9, 4)
    assert next(t for t in st.tasks if t.key == "terms-met").done
    assert run.subjects(primary) == [
        f"Conclusion of our contract MSA-2024-017 on {cf.contract.end_date}",
        "Final review meeting for Acme Analytics Ltd: please choose a date",
        "Access to our systems has ended",
        "Knowledge transfer documents for Acme Analytics Ltd",
        "Handover session for Acme Analytics Ltd: let's walk through the documents",
        "How did we do? Two questions about working with us",
        "Thank you, and farewell from all of us",
        "Checking in from your former partners",
    ]
    assert run.subjects(billing) == [
        f"Conclusion of our contract MSA-2024-017 on {cf.contract.end_date}",
        "Final settlement statement v1 for Acme Analytics Ltd",
        "Our financial relationship is settled",
    ]
    statement = run.mail.to(billing)[1].text()
    assert "Balance: USD 10,950.50, payable by Acme Analytics Ltd" in statement
    assert "Refund DEP-2024-01: USD -5,000.00" in statement
    [ready] = run.mail.to(steward)
    assert st.data_packages[0].manifest_sha256 in ready.text()
    knowledge = run.mail.to(primary)[3]
    assert knowledge.attachments() == ["runbook.md", "data-dictionary.csv"]
    farewell = run.mail.to(primary)[6]
    assert farewell.attachments() == ["closure-report.html"]
    # Every account is really revoked on the SCIM server.
    crm, wiki = run.scim.users("crm"), run.scim.users("wiki")
    for user in cf.systems[0].users:
        assert crm[user]["active"] is False
    assert cf.systems[1].users[0] not in wiki
    revoked = run.mail.to(primary)[2].text()
    assert f"crm: {cf.systems[0].users[0]}: deactivated" in revoked
    assert f"wiki: {cf.systems[1].users[0]}: deleted" in revoked
    # The archive holds every email, the statement, the record and a closure report.
    assert st.archive is not None
    archive = Path(st.archive.location)
    files = {p.relative_to(archive).as_posix() for p in archive.rglob("*") if p.is_file()}
    assert {"record.json", "MANIFEST.json", "closure-report.html",
            "statements/statement-v1.json", "emails/notice.eml"} <= files
    assert "Acme Analytics Ltd" in (archive / "closure-report.html").read_text()
    assert st.data_purged == ["CRM export", "Monthly reports", "transfer packages"]
    assert result.summary.startswith("Acme Analytics Ltd: completed; 13/13 steps done")


async def test_renewal_during_the_notice_period_revokes_nothing(run: Run) -> None:
    cf = client_file(end_in_days=60, scim=run.scim)
    handle = await run.start(cf)
    await wait_until(handle, waiting_for("notice-period"))
    await run.cli.send(handle.id, "renew", Renew(by="ops", note="Signed for 12 more months"))
    result = await run.result(handle, record_as="renewal")
    assert result.outcome == "renewed"
    assert run.subjects(cf.contacts.primary.email)[-1] == \
        f"Your contract {cf.contract.reference} continues"
    assert "Signed for 12 more months" in run.mail.to(cf.contacts.primary.email)[-1].text()
    assert all(run.scim.users("crm")[u]["active"] for u in cf.systems[0].users)
    assert not run.mail.to(cf.contacts.billing.email)[1:], "no statement was sent"
    assert result.status.step("settlement").state == "skipped"


@pytest.mark.parametrize("stage", ["notice", "notice-period", "review-meeting"])
async def test_early_termination_from_each_stage_before_settlement(run: Run, stage: str) -> None:
    cf = client_file(end_in_days=40, scim=run.scim)
    handle = await run.start(cf)
    wait = {"notice": lambda s: s.step("notice").state == "waiting",
            "notice-period": waiting_for("notice-period"), "review-meeting": waiting_for("meeting")}
    await wait_until(handle, wait[stage], what=stage)
    await run.cli.send(handle.id, "terminate-early", TerminateEarly(by="ops", cause="Budget cut"))
    st = await wait_until(handle, waiting_for("settlement-approval"))
    # Access ends at once and the settlement and data transfer run side by side.
    assert st.reason == "termination"
    assert st.step("access-revocation").state == "done"
    assert not any(run.scim.users("crm")[u]["active"] for u in cf.systems[0].users)
    st = await wait_until(handle, waiting_for("data-verification"))
    assert "settlement-approval" in (st.waiting_for or "")
    for key in ("review-meeting", "feedback"):
        assert st.step(key).state == "skipped"
    await settle_and_verify(run.cli, handle, cf)
    st = await wait_until(handle, lambda s: s.stage == "keep-in-touch")
    assert st.step("feedback").state == "skipped"
    subjects = run.subjects(cf.contacts.primary.email)
    assert "Closing our engagement with Acme Analytics Ltd" in subjects
    assert "How did we do? Two questions about working with us" not in subjects
    await run.cli.send(handle.id, "cancel", Cancel(by="ops", reason="test over"))
    await run.result(handle, record_as=f"termination-from-{stage}")


async def test_termination_is_refused_once_settlement_has_started(run: Run) -> None:
    cf = client_file(end_in_days=32, scim=run.scim)
    handle = await run.start(cf, FAST.model_copy(update={"meeting_deadline_days": 1}))
    await wait_until(handle, waiting_for("settlement-approval"))
    before = await status_of(handle)
    with pytest.raises(Refused, match="terminate-early is not possible in stage 'settlement'"):
        await run.cli.send(handle.id, "terminate-early", TerminateEarly(by="ops", cause="late"))
    assert (await status_of(handle)).decisions == before.decisions
    await run.cli.send(handle.id, "cancel", Cancel(by="ops", reason="test over"))
    await run.result(handle)


async def test_dispute_reissues_the_statement_and_the_old_one_cannot_be_approved(
    run: Run,
) -> None:
    cf = client_file(end_in_days=32, scim=run.scim)
    billing, finance = cf.contacts.billing.email, cf.approvers.finance[0]
    handle = await run.start(cf, FAST.model_copy(update={"meeting_deadline_days": 1}))
    st = await wait_until(handle, waiting_for("settlement-approval"))
    v1 = st.statements[-1]
    await run.cli.send(handle.id, "dispute-settlement", DisputeSettlement(
        by=finance, statement_hash=v1.short_hash, reason="Credit note missing",
        adjustments=[Adjustment(description="Credit note CN-9", amount="-200.50")]))
    st = await wait_until(handle, lambda s: len(s.statements) == 2 and s.waiting_for is not None
                          and "settlement-approval" in s.waiting_for)
    v2 = st.statements[-1]
    assert v2.balance == v1.balance - Decimal("200.50")
    reissued = run.mail.to(billing)[-1]
    assert reissued.subject == "Final settlement statement v2 for Acme Analytics Ltd"
    assert "Adjustment Credit note CN-9: USD -200.50" in reissued.text()
    with pytest.raises(Refused, match=f"statement {v1.short_hash} is not the current"):
        await run.cli.send(handle.id, "approve-settlement",
                           ApproveSettlement(by=finance, statement_hash=v1.short_hash))
    await run.cli.send(handle.id, "approve-settlement",
                       ApproveSettlement(by=finance, statement_hash=v2.short_hash))
    st = await wait_until(handle, lambda s: s.step("settlement").state == "done")
    assert st.step("settlement").detail == f"statement v2 ({v2.short_hash}) approved"
    assert [d.action for d in st.decisions] == ["dispute-settlement", "approve-settlement"]
    await run.cli.send(handle.id, "cancel", Cancel(by="ops", reason="test over"))
    await run.result(handle, record_as="dispute")


async def test_rejected_data_is_exported_again_and_a_wrong_checksum_is_refused(
    run: Run,
) -> None:
    cf = client_file("termination", scim=run.scim)
    steward = cf.approvers.data_verification[0]
    handle = await run.start(cf)
    st = await wait_until(handle, waiting_for("data-verification"))
    await run.cli.send(handle.id, "reject-data", RejectData(by=steward, reason="CSV truncated"))
    st = await wait_until(handle, lambda s: len(s.data_packages) == 2
                          and "data-verification" in (s.waiting_for or ""))
    assert [m.subject for m in run.mail.to(steward)] == \
        ["Your data from us is ready for transfer"] * 2
    with pytest.raises(Refused, match="does not match the manifest of export 2"):
        await run.cli.send(handle.id, "verify-data", VerifyData(by=steward, checksum="0" * 64))
    await run.cli.send(handle.id, "verify-data", VerifyData(by=steward, checksum=checksum_of(st)))
    st = await wait_until(handle, lambda s: s.step("data-transfer").state == "done")
    assert st.step("data-transfer").detail.startswith("export 2 verified")
    await run.cli.send(handle.id, "cancel", Cancel(by="ops", reason="test over"))
    await run.result(handle, record_as="data-rejection")


async def test_an_unknown_approver_is_refused_and_changes_nothing(run: Run) -> None:
    cf = client_file("termination", scim=run.scim)
    handle = await run.start(cf)
    st = await wait_until(handle, waiting_for("settlement-approval"))
    stmt = st.statements[-1].short_hash
    with pytest.raises(Refused, match=re.escape("mallory@evil.example is not a finance approver")):
        await run.cli.send(handle.id, "approve-settlement",
                           ApproveSettlement(by="mallory@evil.example", statement_hash=stmt))
    after = await status_of(handle)
    assert after.decisions == st.decisions and after.step("settlement").state == "waiting"
    # The same decision as a signal (Web UI) cannot be refused to the sender: it is recorded
    # as ignored, with why, and changes nothing else.
    await handle.signal("approve-settlement", {"by": "mallory@evil.example",
                                               "statement_hash": stmt})
    await handle.signal("approve-settlement", {"by": "ops", "statement_hash": 42})
    after = await wait_until(handle, lambda s: len(s.ignored) == 2)
    assert "not a finance approver" in after.ignored[0].why
    assert after.ignored[1].why.startswith("malformed payload")
    assert after.step("settlement").state == "waiting" and not after.decisions
    await run.cli.send(handle.id, "cancel", Cancel(by="ops", reason="test over"))
    await run.result(handle, record_as="unknown-approver")


async def test_a_second_offboarding_of_the_same_client_is_refused(run: Run) -> None:
    cf = client_file(end_in_days=60, scim=run.scim)
    handle = await run.start(cf)
    with pytest.raises(Refused, match=f"already being offboarded by workflow {handle.id}"):
        await run.start(cf)
    await run.cli.send(handle.id, "cancel", Cancel(by="ops", reason="test over"))
    await run.result(handle)


async def test_cancel_stops_cleanly_with_the_reason_recorded(run: Run) -> None:
    cf = client_file(end_in_days=60, scim=run.scim)
    handle = await run.start(cf)
    await wait_until(handle, waiting_for("notice-period"))
    await run.cli.send(handle.id, "cancel", Cancel(by="dana", reason="Client file was wrong"))
    result = await run.result(handle, record_as="cancel")
    assert result.outcome == "cancelled"
    assert result.status.step("settlement").state == "cancelled"
    assert result.status.step("settlement").detail == "cancelled by dana: Client file was wrong"
    assert all(run.scim.users("crm")[u]["active"] for u in cf.systems[0].users)
    with pytest.raises(Refused, match=f"no running offboarding with id {handle.id}"):
        await run.cli.send(handle.id, "renew", Renew(by="ops"))


async def test_extend_notice_moves_the_end_date_and_rearms_the_timer(run: Run) -> None:
    cf = client_file(end_in_days=33, scim=run.scim)
    started = asyncio.get_running_loop().time()
    handle = await run.start(cf)
    await wait_until(handle, waiting_for("notice-period"))
    new_end = cf.contract.end_date + timedelta(days=30)
    with pytest.raises(Refused, match="must be after the current end date"):
        await run.cli.send(handle.id, "extend-notice",
                           ExtendNotice(by="ops", new_end_date=cf.contract.start_date))
    await run.cli.send(handle.id, "extend-notice", ExtendNotice(by="ops", new_end_date=new_end))
    st = await status_of(handle)
    assert st.contract_end == new_end
    # Well past the original end date (day 33), the notice period still runs.
    original_end = started + 33 * DAY.total_seconds()
    await asyncio.sleep(original_end + 1.0 - asyncio.get_running_loop().time())
    st = await status_of(handle)
    assert st.waiting_for == "notice-period" and st.step("notice-period").detail == \
        f"until {new_end}"
    await run.cli.send(handle.id, "cancel", Cancel(by="ops", reason="test over"))
    await run.result(handle)


WRONG_MESSAGES: list[tuple[str, Callable[[OffboardingStatus], Any], str]] = [
    ("approve-settlement", lambda st: ApproveSettlement(
        by="intruder@example.com", statement_hash=st.statements[-1].short_hash),
     "intruder@example.com is not a finance approver for this client"),
    ("approve-settlement", lambda st: ApproveSettlement(
        by="finance.lead@example.com", statement_hash="0123456789ab"),
     "statement 0123456789ab is not the current statement"),
    ("verify-data", lambda st: VerifyData(by="mindy@globex.example", checksum="f" * 64),
     "does not match the manifest of export 1"),
    ("verify-data", lambda st: VerifyData(by="finance.lead@example.com",
                                          checksum=st.data_packages[-1].manifest_sha256),
     "finance.lead@example.com is not a data verification approver"),
    ("meeting-held", lambda st: MeetingHeld(by="ops"),
     "meeting-held is not possible in stage"),
    ("renew", lambda st: Renew(by="ops"), "renew is not possible in stage"),
    ("extend-notice", lambda st: ExtendNotice(by="ops", new_end_date=st.contract_end),
     "extend-notice is not possible in stage"),
    ("record-feedback", lambda st: RecordFeedback(by="ops", nps=5),
     "record-feedback is not expected now"),
    ("complete-task", lambda st: CompleteTask(by="ops", task="polish-the-silverware"),
     "unknown task 'polish-the-silverware'"),
]


async def test_wrong_messages_are_refused_and_change_nothing(run: Run) -> None:
    cf = client_file("termination", scim=run.scim)
    handle = await run.start(cf)
    await wait_until(handle, lambda s: waiting_for("settlement-approval")(s)
                     and waiting_for("data-verification")(s))
    st = await status_of(handle)
    events = len((await handle.fetch_history()).events)
    for action, make, expected in WRONG_MESSAGES:
        with pytest.raises(Refused, match=re.escape(expected)):
            await run.cli.send(handle.id, action, make(st))
    # A refused update never reaches history, and the checklist is as it was.
    assert len((await handle.fetch_history()).events) == events
    assert (await status_of(handle)) == st
    # Malformed input from the Web UI (a JSON signal) is recorded as ignored, with why.
    await handle.signal("verify-data", {"by": "mindy@globex.example", "checksum": "nope"})
    await handle.signal("complete-task", ["not", "an", "object"])
    after = await wait_until(handle, lambda s: len(s.ignored) == 2)
    assert all(i.why.startswith("malformed payload") for i in after.ignored)
    assert "checksum" in after.ignored[0].why
    assert after.ignored_total == 2
    assert after.model_copy(update={"ignored": [], "ignored_total": 0}) == st
    await run.cli.send(handle.id, "cancel", Cancel(by="ops", reason="test over"))
    await run.result(handle)
    # A message to a finished offboarding is refused too.
    with pytest.raises(Refused, match=f"no running offboarding with id {handle.id}"):
        await run.cli.send(handle.id, "cancel", Cancel(by="ops", reason="again"))
