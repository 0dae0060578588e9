"""Timer logic in real calendar days, on the time-skipping server: the notice 30 days
before the end, reminders and escalation while finance waits, the feedback deadline, the
retention period and the check-in 90 days later. Decisions arrive as signals with JSON
payloads, as the Web UI or ``temporal workflow signal`` send them."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from devtools.mailcapture import Captured, MailCapture
from devtools.scim import ScimServer
from offboarding.client import workflow_id_for
from offboarding.config import Settings
from offboarding.models.status import OffboardingInput, OffboardingResult
from offboarding.workflows.offboarding import ClientOffboarding
from tests.helpers import client_file, new_worker, status_of, wait_until, waiting_for


async def test_contract_end_runs_on_real_calendar_days(
    ts_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
) -> None:
    today = (await ts_env.get_current_time()).date()
    cf = client_file(today=today, end_in_days=45, scim=scim)
    finance = cf.approvers.finance
    client = ts_env.client
    async with new_worker(client, settings):
        handle = await client.start_workflow(
            ClientOffboarding.run, OffboardingInput(client=cf),
            id=workflow_id_for(cf.client_id), task_queue=settings.task_queue)
        notice_date = cf.contract.end_date - timedelta(days=30)
        st = await wait_until(handle, lambda s: s.step("notice").state == "waiting")
        assert st.step("notice").detail == f"scheduled for {notice_date}"
        assert not mail.messages, "nothing is sent before the notice date"

        await ts_env.sleep(timedelta(days=14))
        assert not mail.messages, "still nothing a day before the notice date"
        await ts_env.sleep(timedelta(days=1, hours=1))
        await wait_until(handle, waiting_for("notice-period"))
        [notice] = mail.to(cf.contacts.primary.email)
        assert notice.subject == (f"Conclusion of our contract {cf.contract.reference} on "
                                  f"{cf.contract.end_date}")
        assert "renewal offer" in notice.text() and not (await status_of(handle)).short_notice

        # Notice period, then the meeting nobody holds: skipped after its 7-day deadline.
        await ts_env.sleep(timedelta(days=30))
        await wait_until(handle, waiting_for("meeting"))
        await ts_env.sleep(timedelta(days=7, hours=1))
        st = await wait_until(handle, waiting_for("settlement-approval"))
        assert st.step("review-meeting").state == "skipped"

        # Each finance approver is reminded every 3 days, by a message of their own with
        # their own link, and ops are alerted once after 10.
        def reminders(person: str) -> list[Captured]:
            return [m for m in mail.to(person) if m.subject.startswith("Reminder")]

        await ts_env.sleep(timedelta(days=3, hours=1))
        await wait_until(handle, lambda s: all(reminders(p) for p in finance), what="reminder")
        for person in finance:
            [reminder] = reminders(person)
            assert reminder.subject.startswith("Reminder: settlement approval")
            assert reminder.recipients == [person]
            assert "http://portal.test/o/" in reminder.text()
        await ts_env.sleep(timedelta(days=7, hours=1))
        st = await wait_until(handle, lambda s: s.overdue, what="overdue")
        [alert] = mail.to(settings.ops_email)
        assert "overdue" in alert.subject
        assert len(reminders(finance[0])) == 3, "reminders on days 3, 6 and 9"

        await handle.signal("approve-settlement", {
            "by": finance[1], "statement_hash": st.statements[-1].short_hash})
        st = await wait_until(handle, waiting_for("data-verification"))
        assert not st.overdue and st.step("settlement").by == finance[1]
        manifest = Path(st.data_packages[-1].location) / "manifest.json"
        await handle.signal("verify-data", {
            "by": cf.approvers.data_verification[0],
            "checksum": hashlib.sha256(manifest.read_bytes()).hexdigest()})
        st = await wait_until(handle, waiting_for("feedback"))
        assert st.step("data-retention").state == "waiting"

        # Nobody answers the survey within 14 days: skipped, and the offboarding goes on.
        await ts_env.sleep(timedelta(days=14, hours=1))
        st = await wait_until(handle, lambda s: s.stage == "keep-in-touch")
        assert st.step("feedback").state == "skipped"
        assert st.step("farewell").state == "done"

        # Retention (30 days after verification) deletes our copy; the check-in waits 90.
        await ts_env.sleep(timedelta(days=20))
        st = await wait_until(handle, lambda s: s.step("data-retention").state == "done")
        assert st.data_purged == ["CRM export", "Monthly reports", "transfer packages"]
        for data_set in cf.data_sets:
            assert not (settings.client_data_root / data_set.path).exists()
        assert not any(settings.transfer_root.rglob("manifest.json"))
        assert not [m for m in mail.messages if m.subject.startswith("Checking in")]
        # Skip explicitly to the check-in: waiting on result() alone did not make this
        # server skip the remaining 70 days.
        await ts_env.sleep(timedelta(days=71))
        result = await client.get_workflow_handle(
            handle.id, result_type=OffboardingResult).result()
        assert result.outcome == "completed"
        [check_in] = [m for m in mail.messages if m.subject.startswith("Checking in")]
        assert check_in.recipients == [cf.contacts.primary.email]
        done_on = (await ts_env.get_current_time()).date()
        assert done_on >= notice_date + timedelta(days=30 + 7 + 10 + 14 + 90)


async def test_started_after_the_notice_date_sends_at_once_with_short_notice(
    ts_env: WorkflowEnvironment, settings: Settings, mail: MailCapture,
) -> None:
    today = (await ts_env.get_current_time()).date()
    cf = client_file(today=today, end_in_days=10)
    async with new_worker(ts_env.client, settings):
        handle = await ts_env.client.start_workflow(
            ClientOffboarding.run, OffboardingInput(client=cf),
            id=workflow_id_for(cf.client_id), task_queue=settings.task_queue)
        st = await wait_until(handle, waiting_for("notice-period"))
        assert st.short_notice
        assert st.step("notice").detail.startswith("short notice")
        [notice] = mail.to(cf.contacts.primary.email)
        assert "later than the 30 days the contract foresees" in notice.text()
        await handle.signal("cancel", {"by": "ops", "reason": "test over"})
        await ts_env.client.get_workflow_handle(handle.id).result()


async def test_a_termination_waits_for_its_effective_date(
    ts_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
) -> None:
    today = (await ts_env.get_current_time()).date()
    effective = today + timedelta(days=10)
    cf = client_file("termination", scim=scim, end_in_days=None,
                     termination={"cause": "Breach", "effective_date": effective.isoformat()})
    user = cf.systems[0].users[0]
    async with new_worker(ts_env.client, settings):
        handle = await ts_env.client.start_workflow(
            ClientOffboarding.run, OffboardingInput(client=cf),
            id=workflow_id_for(cf.client_id), task_queue=settings.task_queue)
        st = await wait_until(handle, lambda s: s.stage == "awaiting-termination")
        assert st.effective_date == effective
        await ts_env.sleep(timedelta(days=9))
        assert user in scim.users("crm"), "nothing is revoked before the effective date"
        assert not mail.messages
        await ts_env.sleep(timedelta(days=1, hours=1))
        st = await wait_until(handle, waiting_for("settlement-approval"))
        assert user not in scim.users("crm")
        assert st.contract_end == effective
        await handle.signal("cancel", {"by": "ops", "reason": "test over"})
        await ts_env.client.get_workflow_handle(handle.id).result()
