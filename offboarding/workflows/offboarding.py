"""The client-offboarding workflow: one durable run per departing client.

It follows the checklist in ``workflows/state.py``: durable timers for the notice, the
notice period, reminders, retention and the later check-in; human decisions as signals
(Web UI, ``temporal workflow signal``) or validated updates (the CLI); activities for
everything that touches the world. Nothing here does I/O or reads a clock but Temporal's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    # Loaded lazily by pydantic's EmailStr; passed through so the sandbox doesn't reload them.
    import email_validator  # noqa: F401
    import idna  # noqa: F401

    from offboarding.activities.access import AccessRevoker
    from offboarding.activities.archive import Archiver
    from offboarding.activities.data_transfer import DataTransfer
    from offboarding.activities.email import Mailer
    from offboarding.models import search_attributes as sa
    from offboarding.models.client_file import SystemAccess
    from offboarding.models.messages import (
        MESSAGE_TYPES,
        Ack,
        Adjustment,
        ApproveSettlement,
        Cancel,
        CompleteTask,
        DisputeSettlement,
        ExtendNotice,
        FixContact,
        MeetingHeld,
        Message,
        RecordFeedback,
        RejectData,
        Renew,
        RetryStep,
        SkipStep,
        TerminateEarly,
        VerifyData,
    )
    from offboarding.models.records import (
        Attachment,
        EmailReceipt,
        EmailRequest,
        ExportRequest,
        PurgeRequest,
        RevokeRequest,
        SystemRevocation,
    )
    from offboarding.models.settlement import compute_statement
    from offboarding.models.status import (
        OffboardingInput,
        OffboardingResult,
        OffboardingStatus,
        Outcome,
        Problem,
    )
    from offboarding.security.codec import UNDECODABLE, UNDECODABLE_REASON
    from offboarding.workflows.state import TERMINATION_SKIPS, OffboardingState, Rejected

# Workflow changes made behind workflow.patched(), oldest first. Remove a patch (keeping
# its new path) only once no offboarding that started before it is still running.
HANDOVER_INVITE = "handover-invite-email"

RETRY_FOREVER = RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                            maximum_interval=timedelta(minutes=10))


T = TypeVar("T")


class _Interrupted(Exception):
    """Unwinds the run when ops renew or cancel."""


class _SwitchToTermination(Exception):
    """Unwinds the contract-end path when ops terminate early."""


def workflow_id_for(client_id: str) -> str:
    """Business-keyed: one offboarding per client at a time."""
    return f"offboarding-{client_id}"


@workflow.defn(name="ClientOffboarding")
class ClientOffboarding:
    @workflow.init
    def __init__(self, inp: OffboardingInput) -> None:
        self.inp = inp
        self.client = inp.client
        self.s = OffboardingState(workflow.info().workflow_id, inp.client,
                                  second_ops=inp.second_ops)
        self._t0 = workflow.now()
        self._d0 = self._t0.date()
        self._retention: asyncio.Task[None] | None = None

    # ----- time: real calendar days, or scaled ones for demos and tests ----------------

    def _days(self, n: float) -> timedelta:
        return (self.inp.timings.day_length or timedelta(days=1)) * n

    def _at(self, d: date) -> datetime:
        if self.inp.timings.day_length is None:
            return datetime.combine(d, time(0), tzinfo=UTC)
        return self._t0 + self._days((d - self._d0).days)

    def _today(self) -> date:
        elapsed = workflow.now() - self._t0
        return self._d0 + timedelta(days=int(elapsed / self._days(1)))

    def _as_date(self, when: datetime) -> str:
        """How a moment is shown to people: the (possibly scaled) calendar date."""
        if self.inp.timings.day_length is None:
            return when.date().isoformat()
        return (self._d0 + timedelta(days=int((when - self._t0) / self._days(1)))).isoformat()

    # ----- the run ---------------------------------------------------------------------

    def _enter(self, stage: str, now: datetime, detail: str = "") -> None:
        self.s.enter(stage, now, detail)
        workflow.logger.info("stage %s", stage, extra={"step": stage})

    def _count(self, name: str, description: str, **attributes: str) -> None:
        """A counter on the worker's Prometheus endpoint; not counted again on replay."""
        workflow.metric_meter().create_counter(name, description).add(1, attributes)

    @workflow.run
    async def run(self, inp: OffboardingInput) -> OffboardingResult:
        self._publish()
        self._count("offboarding_started", "Offboardings started", reason=self.client.reason)
        outcome: Outcome = "completed"
        try:
            if self.client.reason == "contract_end":
                try:
                    await self._contract_end()
                except _SwitchToTermination:
                    self.s.end_all_waits()
            if self.s.status.reason == "termination":
                await self._termination()
            await self._closing()
        except _Interrupted:
            if self.s.pending.cancel:
                outcome = "cancelled"
                await self._cancelled(self.s.pending.cancel)
            else:
                outcome = "renewed"
                await self._renewed()
        self.s.status.outcome = outcome
        self.s.status.stage = outcome
        self._publish()
        reason = self.s.status.reason
        if outcome == "cancelled":
            self._count("offboarding_cancelled", "Offboardings cancelled", reason=reason)
        else:
            self._count("offboarding_completed", "Offboardings completed or renewed",
                        reason=reason, outcome=outcome)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return OffboardingResult(outcome=outcome, summary=self._summary(), status=self.s.status)

    async def _contract_end(self) -> None:
        c = self.client.contract
        await self._contract_review()

        # Notice of contract conclusion, notice_days before the end.
        self._enter("notice", workflow.now())
        while True:
            notice_date = self.s.status.contract_end - timedelta(days=c.notice_days)
            self._publish()
            if notice_date < self._today():
                self.s.status.short_notice = True
                break
            self.s.mark("notice", "waiting", workflow.now(), f"scheduled for {notice_date}")
            self._publish()
            await self._sleep_until(self._at(notice_date), f"notice due {notice_date}",
                                    lambda: self.s.pending.extend is not None)
            if self.s.pending.extend is None:
                break
            self.s.pending.extend = None
        await self._email("notice", "notice", "notice", [self.client.contacts.primary.email],
                          cc=[self.client.contacts.billing.email])
        self.s.mark("notice", "done", workflow.now(),
                    ("short notice: " if self.s.status.short_notice else "")
                    + f"sent for end date {self.s.status.contract_end}")

        # Notice period: until the end date, which extend-notice may move.
        self._enter("notice-period", workflow.now())
        self.s.start_wait("notice-period", workflow.now(), None)
        while True:
            end = self.s.status.contract_end
            self.s.mark("notice-period", "waiting", workflow.now(), f"until {end}")
            self._publish()
            await self._sleep_until(self._at(end), f"notice period until {end}",
                                    lambda: self.s.pending.extend is not None)
            if self.s.pending.extend is None:
                break
            self.s.pending.extend = None
        self.s.end_wait("notice-period")
        self.s.mark("notice-period", "done", workflow.now(), f"ended {self.s.status.contract_end}")

        await self._review_meeting()

    async def _contract_review(self) -> None:
        c = self.client.contract
        self._enter("contract-review", workflow.now())
        open_items = "; ".join(c.outstanding_deliverables) or "none"
        self.s.mark("contract-review", "done", workflow.now(),
                    f"{len(c.services)} services reviewed; outstanding deliverables: {open_items}")
        self._check_interrupts()

    async def _review_meeting(self) -> None:
        self._enter("review-meeting", workflow.now())
        if self.s.pending.meeting is None:
            base = self._today()
            dates = [(base + timedelta(days=d)).isoformat() for d in (2, 3, 5)]
            await self._email("meeting-proposal", "meeting_proposal", "review-meeting",
                              [self.client.contacts.primary.email], extra={"dates": dates})
            deadline = workflow.now() + self._days(self.inp.timings.meeting_deadline_days)
            self.s.start_wait("meeting", workflow.now(), deadline)
            self.s.mark("review-meeting", "waiting", workflow.now(), "proposed " + ", ".join(dates))
            self._publish()
            await self._sleep_until(deadline, "waiting for the review meeting",
                                    lambda: self.s.pending.meeting is not None)
            self.s.end_wait("meeting")
        held = self.s.pending.meeting
        if held is None:
            self.s.mark("review-meeting", "skipped", workflow.now(), "no meeting by the deadline")
        else:
            self.s.mark("review-meeting", "done", workflow.now(), held.notes or "held", by=held.by)

    async def _termination(self) -> None:
        t = self.s.pending.terminate
        effective = (t.effective_date if t else
                     self.client.termination.effective_date if self.client.termination else None)
        self.s.status.effective_date = effective
        now = workflow.now()
        for key in TERMINATION_SKIPS:
            if self.s.status.step(key).state in ("pending", "active", "waiting"):
                self.s.mark(key, "skipped", now, "not part of a termination")
        if self.s.status.step("contract-review").state == "pending":
            await self._contract_review()
        if effective and self._at(effective) > workflow.now():
            self._enter("awaiting-termination", workflow.now())
            self._publish()
            await self._sleep_until(self._at(effective), f"termination effective {effective}",
                                    lambda: self.s.pending.cancel is not None)
            self._check_interrupts()
        self.s.status.contract_end = effective or self._today()
        self._enter("termination", workflow.now())
        # Access ends at once; settlement and data transfer then run side by side.
        await self._access_revocation()
        await _together(self._settlement(), self._data_transfer())

    async def _closing(self) -> None:
        if self.s.status.reason == "contract_end":
            await self._settlement()
            await self._data_transfer()
            await self._access_revocation()
        await self._knowledge_transfer()
        if self.s.status.reason == "contract_end":
            await self._feedback()
        await self._archive_and_farewell()
        await self._keep_in_touch()

    # ----- settlement ------------------------------------------------------------------

    async def _settlement(self) -> None:
        p, t = self.s.pending, self.inp.timings
        self._enter("settlement", workflow.now())
        adjustments: list[Adjustment] = []
        while True:
            version = len(self.s.status.statements) + 1
            statement = compute_statement(self.client.account, version=version,
                                          issued=self._today(), adjustments=adjustments)
            self.s.add_statement(statement)
            await self._email(f"statement-v{version}", "settlement_statement", "settlement",
                              [self.client.contacts.billing.email],
                              extra={"statement": statement.model_dump(mode="json")})
            self.s.mark("settlement", "waiting", workflow.now(),
                        f"statement v{version} ({statement.short_hash}) sent; balance "
                        f"{statement.currency} {statement.balance} owed by {statement.owed_by}")
            await self._await_human(
                "settlement-approval", lambda: p.approved is not None or p.dispute is not None,
                to=list(self.client.approvers.finance),
                reminder_every=t.settlement_reminder_days,
                escalate_after=t.settlement_escalation_days,
                how=f"Approve or dispute statement {statement.short_hash}: python starter.py "
                    f"approve-settlement {workflow.info().workflow_id} --statement "
                    f"{statement.short_hash} --by <you>",
            )
            if p.dispute is not None:
                adjustments += p.dispute.adjustments
                p.dispute = None
                continue
            break
        assert p.approved is not None
        await self._email("settlement-confirmed", "settlement_confirmed", "settlement",
                          [self.client.contacts.billing.email],
                          extra={"statement": statement.model_dump(mode="json")})
        self.s.mark("settlement", "done", workflow.now(),
                    f"statement v{statement.version} ({statement.short_hash}) approved",
                    by=p.approved.by)

    # ----- data ------------------------------------------------------------------------

    async def _data_transfer(self) -> None:
        p, t = self.s.pending, self.inp.timings
        self._enter("data-transfer", workflow.now())
        data_sets = [(d.name, d.path) for d in self.client.data_sets]
        if not data_sets:
            self.s.mark("data-transfer", "skipped", workflow.now(), "no client data sets listed")
            self.s.mark("data-retention", "skipped", workflow.now(), "nothing to delete")
            return
        while True:
            attempt = len(self.s.status.data_packages) + 1
            request = ExportRequest(workflow_id=workflow.info().workflow_id,
                                    client_id=self.client.client_id, attempt=attempt,
                                    data_sets=data_sets)
            exported = await self._until_done(
                f"export-{attempt}", "data-transfer",
                functools.partial(
                    workflow.execute_activity_method, DataTransfer.export_client_data, request,
                    start_to_close_timeout=timedelta(minutes=30),
                    heartbeat_timeout=timedelta(seconds=30),
                    retry_policy=RETRY_FOREVER,
                    summary=f"export client data, attempt {attempt}",
                ))
            if exported is None:
                self.s.mark("data-transfer", "skipped", workflow.now(), "export skipped by ops")
                self.s.mark("data-retention", "skipped", workflow.now(), "nothing exported")
                return
            package = exported
            self.s.status.data_packages.append(package)
            await self._email(f"data-ready-{attempt}", "data_ready", "data-transfer",
                              [self.client.contacts.data_steward.email],
                              extra={"package": package.model_dump(mode="json")})
            self.s.mark("data-transfer", "waiting", workflow.now(),
                        f"export {attempt}: {package.files} files, manifest "
                        f"{package.manifest_sha256[:12]}")
            await self._await_human(
                "data-verification", lambda: p.verified is not None or p.rejected is not None,
                to=[self.client.contacts.data_steward.email],
                reminder_every=t.data_reminder_days, escalate_after=t.data_escalation_days,
                how="Verify the checksum of manifest.json: python starter.py verify-data "
                    f"{workflow.info().workflow_id} --checksum <sha256> --by <you>",
            )
            if p.rejected is not None:
                p.rejected = None
                continue
            break
        assert p.verified is not None
        self.s.mark("data-transfer", "done", workflow.now(),
                    f"export {attempt} verified ({package.manifest_sha256[:12]})",
                    by=p.verified.by)
        purge_at = workflow.now() + self._days(self.client.retention_days)
        self.s.mark("data-retention", "waiting", workflow.now(),
                    f"our copy is deleted on {self._as_date(purge_at)}")
        self._retention = asyncio.create_task(self._purge_after(purge_at, data_sets))

    async def _purge_after(self, when: datetime, data_sets: list[tuple[str, str]]) -> None:
        await workflow.sleep(max(when - workflow.now(), timedelta(0)),
                             summary=f"retention: delete our copy on {self._as_date(when)}")
        # A deletion that fails (a file that cannot be removed) is a problem ops see and
        # retry once they have fixed it, not an activity retried forever in silence.
        result = await self._until_done("purge", "data-retention", lambda: (
            workflow.execute_activity_method(
                DataTransfer.purge_client_data,
                PurgeRequest(workflow_id=workflow.info().workflow_id,
                             client_id=self.client.client_id, data_sets=data_sets),
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(seconds=30), retry_policy=RETRY_FOREVER,
                summary="delete our copy of the client's data",
            )))
        if result is None:
            self.s.mark("data-retention", "skipped", workflow.now(),
                        "deletion skipped by ops: our copy was NOT deleted")
        else:
            self.s.status.data_purged = result.deleted
            self.s.mark("data-retention", "done", workflow.now(),
                        "deleted: " + (", ".join(result.deleted) or "nothing left"))
        self._publish()

    # ----- access ----------------------------------------------------------------------

    async def _access_revocation(self) -> None:
        self._enter("access-revocation", workflow.now())
        self._publish()
        wid = workflow.info().workflow_id
        if not self.client.systems:
            self.s.mark("access-revocation", "skipped", workflow.now(),
                        "no systems listed in the client file: nothing to revoke")
            return

        def revoke(sys: SystemAccess) -> Awaitable[SystemRevocation]:
            return workflow.execute_activity_method(
                AccessRevoker.revoke_access,
                RevokeRequest(workflow_id=wid, system=sys.system, users=sys.users, mode=sys.mode),
                start_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=RETRY_FOREVER,
                summary=f"{sys.mode} {len(sys.users)} account(s) on {sys.system}",
            )

        # Every system at once; one that needs ops (a refused token) waits for them alone.
        results = await _together(*[
            self._until_done(f"access-{sys.system}", "access-revocation",
                             functools.partial(revoke, sys))
            for sys in self.client.systems])
        failures: list[str] = []
        for sys, res in zip(self.client.systems, results, strict=True):
            if res is None:
                failures.append(f"{sys.system}: skipped by ops, accounts NOT revoked")
            else:
                self.s.status.revocations.append(res)
        accounts = sum(len(r.accounts) for r in self.s.status.revocations)
        await self._email("access-revoked", "access_revoked", "access-revocation",
                          [self.client.contacts.primary.email],
                          extra={"revocations": [r.model_dump(mode="json")
                                                 for r in self.s.status.revocations],
                                 "failures": failures})
        detail = f"{accounts} account(s) on {len(self.s.status.revocations)} system(s) revoked"
        self.s.mark("access-revocation", "done", workflow.now(),
                    "; ".join([detail, *failures]))

    # ----- knowledge, feedback, archive, farewell, check-in ----------------------------

    async def _knowledge_transfer(self) -> None:
        self._enter("knowledge-transfer", workflow.now())
        docs = self.client.documents
        if docs:
            await self._email("knowledge-transfer", "knowledge_transfer", "knowledge-transfer",
                              [self.client.contacts.primary.email],
                              attachments=[Attachment(root="documents", path=d.path) for d in docs],
                              extra={"documents": [d.model_dump() for d in docs]})
            # Added while offboardings were in flight: those that passed this point before
            # the change replay without it (tests/test_replay.py); new ones send it.
            if workflow.patched(HANDOVER_INVITE):
                await self._email("handover-invite", "handover_invite", "knowledge-transfer",
                                  [self.client.contacts.primary.email],
                                  extra={"documents": [d.model_dump() for d in docs]})
        self.s.mark("knowledge-transfer", "done", workflow.now(),
                    f"{len(docs)} document(s) sent; handover session is a manual item")

    async def _feedback(self) -> None:
        self._enter("feedback", workflow.now())
        await self._email("feedback-survey", "feedback_survey", "feedback",
                          [self.client.contacts.primary.email])
        deadline = workflow.now() + self._days(self.inp.timings.feedback_deadline_days)
        self.s.start_wait("feedback", workflow.now(), deadline)
        self.s.mark("feedback", "waiting", workflow.now(),
                    f"survey sent; open until {self._as_date(deadline)}")
        self._publish()
        await self._sleep_until(deadline, "waiting for feedback",
                                lambda: self.s.pending.feedback is not None)
        self.s.end_wait("feedback")
        fb = self.s.status.feedback
        if fb is None:
            self.s.mark("feedback", "skipped", workflow.now(), "no feedback by the deadline")
        else:
            self.s.mark("feedback", "done", workflow.now(), f"NPS {fb.nps}, CSAT {fb.csat}",
                        by=fb.by)

    async def _archive_and_farewell(self) -> None:
        self._enter("archive", workflow.now())
        self._publish()
        receipt = await self._until_done("archive", "archive", lambda: (
            workflow.execute_activity_method(
                Archiver.archive_offboarding, self.s.status,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(seconds=30), retry_policy=RETRY_FOREVER,
                summary="write the archive bundle and closure report",
            )))
        self.s.status.archive = receipt
        if receipt is None:
            self.s.mark("archive", "skipped", workflow.now(), "archive skipped by ops")
        else:
            self.s.mark("archive", "done", workflow.now(),
                        f"{len(receipt.files)} files, manifest {receipt.manifest_sha256[:12]}")
        self._enter("farewell", workflow.now())
        await self._email("farewell", "farewell", "farewell",
                          [self.client.contacts.primary.email],
                          attachments=[Attachment(root="archive", path=receipt.report)]
                          if receipt else [],
                          extra={"termination": self.s.status.reason == "termination"})
        self.s.mark("farewell", "done", workflow.now(),
                    "sent with the closure report" if receipt
                    else "sent without a closure report (archive skipped)")

    async def _keep_in_touch(self) -> None:
        self._enter("keep-in-touch", workflow.now())
        when = workflow.now() + self._days(self.client.follow_up_days)
        self.s.mark("keep-in-touch", "waiting", workflow.now(),
                    f"check-in on {self._as_date(when)}")
        self._publish()
        await self._sleep_until(when, f"check in on {self._as_date(when)}",
                                lambda: self.s.pending.cancel is not None)
        self._check_interrupts()
        await self._email("check-in", "check_in", "keep-in-touch",
                          [self.client.contacts.primary.email])
        self.s.mark("keep-in-touch", "done", workflow.now(), "check-in sent")
        if self._retention is not None:
            self._publish()
        if self._retention is not None and not self._retention.done():
            # Retention may outlast the check-in; a cancel still ends the wait.
            cancelled = asyncio.create_task(
                workflow.wait_condition(lambda: self.s.pending.cancel is not None))
            await workflow.wait([self._retention, cancelled],
                                return_when=asyncio.FIRST_COMPLETED)
            cancelled.cancel()
            self._check_interrupts()

    # ----- endings other than completion -----------------------------------------------

    async def _renewed(self) -> None:
        renew = self.s.pending.renew
        assert renew is not None
        await self._email("renewal-confirmation", "renewal_confirmation", "notice",
                          [self.client.contacts.primary.email], extra={"note": renew.note})
        self.s.skip_remaining(workflow.now(), "contract renewed")

    async def _cancelled(self, cancel: Cancel) -> None:
        if self._retention is not None and not self._retention.done():
            self._retention.cancel()
        self.s.skip_remaining(workflow.now(), f"cancelled by {cancel.by}: {cancel.reason}",
                              state="cancelled")

    # ----- waiting ---------------------------------------------------------------------

    def _interrupted(self) -> bool:
        p = self.s.pending
        switching = p.terminate is not None and self.s.status.reason == "contract_end"
        return p.cancel is not None or p.renew is not None or switching

    def _check_interrupts(self) -> None:
        p = self.s.pending
        if p.cancel is not None or p.renew is not None:
            raise _Interrupted()
        if p.terminate is not None and self.s.status.reason == "contract_end":
            self.s.status.reason = "termination"
            raise _SwitchToTermination()

    async def _sleep_until(self, when: datetime, summary: str, wake: Callable[[], bool]) -> None:
        """A durable timer raced against a condition (and ops' interruptions).

        A timer task rather than ``wait_condition(timeout=...)``: the latter has hung
        under the time-skipping test server.
        """
        def done() -> bool:
            return wake() or self._interrupted()

        delay = when - workflow.now()
        if delay > timedelta(0) and not done():
            timer = asyncio.create_task(workflow.sleep(delay, summary=summary))
            cond = asyncio.create_task(workflow.wait_condition(done))
            await workflow.wait([timer, cond], return_when=asyncio.FIRST_COMPLETED)
            for task in (timer, cond):
                task.cancel()
        self._check_interrupts()

    async def _await_human(self, what: str, done: Callable[[], bool], *, to: list[str],
                           reminder_every: float, escalate_after: float, how: str) -> None:
        """Wait for a person, reminding them every few days and alerting ops once overdue."""
        since = workflow.now()
        overdue_at = since + self._days(escalate_after)
        self.s.start_wait(what, since, overdue_at)
        self._publish()
        reminders = 0
        context = {"what": what.replace("-", " "), "since": self._as_date(since), "how": how}
        while not done():
            next_reminder = since + self._days(reminder_every) * (reminders + 1)
            wake_at = next_reminder if self.s.status.overdue else min(next_reminder, overdue_at)
            await self._sleep_until(wake_at, f"waiting for {what}", done)
            if done():
                break
            now = workflow.now()
            if not self.s.status.overdue and now >= overdue_at:
                self.s.status.overdue = True
                self._publish()
                await self._email(f"{what}-overdue", "ops_alert", None, [], to_ops=True,
                                  extra={**context, "reminders": reminders,
                                                         "problem": False})
            if now >= next_reminder:
                reminders += 1
                await self._email(f"{what}-reminder-{reminders}", "reminder", None, to,
                                  extra=context)
        self.s.end_wait(what)
        self._publish()

    # ----- activities ------------------------------------------------------------------

    async def _until_done(self, key: str, step: str,
                          call: Callable[[], Awaitable[T]]) -> T | None:
        """Run an activity; when it fails for a reason only people can fix (transient
        faults are retried by the activity's retry policy), raise a problem, alert ops and
        wait until they retry or skip. Returns None when skipped."""
        while True:
            try:
                return await call()
            except ActivityError as err:
                if _cancelled(err):  # we stopped it ourselves (a cancel): not ops' problem
                    raise
                why = _cause(err)
            problem = self.s.raise_problem(key, step, why, workflow.now())
            self.s.mark(step, self.s.status.step(step).state, workflow.now(),
                        f"NEEDS OPS ({key}): {why}")
            self._publish()
            await self._email(f"problem-{key}-{len(self.s.status.problems)}", "ops_alert",
                              None, [], to_ops=True, extra={
                                  "what": key, "reminders": 0, "problem": True,
                                  "since": self._as_date(problem.since),
                                  "how": f"{why}. Fix the cause, then: python starter.py "
                                         f"retry-step {workflow.info().workflow_id} --problem "
                                         f"{key} --by <you> (or skip-step ... --reason ...)"})
            await workflow.wait_condition(functools.partial(self._settled_or_interrupted, problem))
            self._check_interrupts()
            self.s.end_ops_wait_if_clear()
            self._publish()
            if problem.resolution == "skip":
                return None

    def _settled_or_interrupted(self, problem: Problem) -> bool:
        return problem.resolution is not None or self._interrupted()

    async def _email(self, key: str, template: str, step: str | None, to: list[str], *,
                     cc: list[str] | None = None, extra: dict[str, Any] | None = None,
                     attachments: list[Attachment] | None = None,
                     to_ops: bool = False) -> None:
        """Send one message. When it belongs to a checklist ``step``, a refused recipient
        holds that step up for ops (fix-contact, retry-step or skip-step). Reminders and
        alerts belong to no step (None): a failure is recorded and the offboarding moves
        on. The caller names the step because the stage cannot: in a termination,
        settlement and data transfer run side by side."""
        c = self.client
        context: dict[str, Any] = {
            "client_name": c.client_name,
            "contact": c.contacts.primary.model_dump(),
            "billing": c.contacts.billing.model_dump(),
            "steward": c.contacts.data_steward.model_dump(),
            "contract": c.contract.model_dump(mode="json"),
            "renewal_offer": (c.contract.renewal_offer.model_dump(mode="json")
                              if c.contract.renewal_offer else None),
            "end_date": self.s.status.contract_end.isoformat(),
            "short_notice": self.s.status.short_notice,
            "account_manager": c.account_manager,
            "retention_days": c.retention_days,
            "workflow_id": workflow.info().workflow_id,
            **(extra or {}),
        }
        def send() -> Awaitable[EmailReceipt]:
            # Addresses are read at each try, so a fix-contact applies to the retry.
            req = EmailRequest(
                workflow_id=workflow.info().workflow_id, key=key, template=template,
                to=[self.s.address(a) for a in to], cc=[self.s.address(a) for a in cc or []],
                to_ops=to_ops, context=context, attachments=attachments or [])
            return workflow.execute_activity_method(
                Mailer.send_email, req,
                # Short, so a send lost with a crashed worker is retried within a minute.
                start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY_FOREVER,
                summary=f"email {key}",
            )

        if step is None:
            try:
                self.s.status.emails.append(await send())
            except ActivityError as err:
                if _cancelled(err):
                    raise
                self.s.ignore(workflow.now(), f"email {key}", None,
                              f"not delivered: {_cause(err)}")
                self._publish()
            return
        receipt = await self._until_done(f"mail-{key}", step, send)
        if receipt is None:
            self.s.ignore(workflow.now(), f"email {key}", None, "skipped by ops")
            return
        self.s.status.emails.append(receipt)
        if receipt.refused:
            self.s.ignore(workflow.now(), f"email {key}", None,
                          "not delivered to " + ", ".join(receipt.refused))
            self._publish()

    # ----- what the UI and search see --------------------------------------------------

    def _publish(self) -> None:
        st = self.s.status
        waits = st.waiting_for.split(",") if st.waiting_for else []
        workflow.upsert_search_attributes([
            sa.CLIENT_ID.value_set(st.client_id),
            sa.REASON.value_set(st.reason),
            sa.STAGE.value_set(st.stage),
            sa.WAITING_FOR.value_set(waits),
            sa.WAITING_SINCE.value_set(st.waiting_since) if st.waiting_since
            else sa.WAITING_SINCE.value_unset(),
            sa.CONTRACT_END.value_set(datetime.combine(st.contract_end, time(0), tzinfo=UTC)),
            sa.OVERDUE.value_set(st.overdue),
            sa.SHORT_NOTICE.value_set(st.short_notice),
        ])
        workflow.set_current_details(self.s.details_markdown())

    def _summary(self) -> str:
        st = self.s.status
        done = sum(1 for s in st.steps if s.state == "done")
        return (f"{st.client_name}: {st.outcome}; {done}/{len(st.steps)} steps done, "
                f"{len(st.emails)} emails sent, "
                f"{sum(len(r.accounts) for r in st.revocations)} accounts revoked")

    # ----- queries, signals, updates ---------------------------------------------------

    @workflow.query
    def status(self) -> OffboardingStatus:
        return self.s.status

    def _validate(self, name: str, msg: Message) -> None:
        try:
            self.s.validate(name, msg)
        except Rejected as err:
            raise ApplicationError(str(err), type="Rejected", non_retryable=True) from None

    def _apply(self, name: str, msg: Message) -> Ack:
        detail = self.s.apply(name, msg, workflow.now())
        self._publish()
        return Ack(stage=self.s.status.stage, detail=detail)

    def _signal(self, name: str, raw: RawValue) -> None:
        """Signals cannot answer, so an invalid one is recorded as ignored, with why."""
        meta = raw.payload.metadata
        if meta.get("encoding") == UNDECODABLE:
            why = meta.get(UNDECODABLE_REASON, b"").decode(errors="replace")
            self.s.ignore(workflow.now(), name, None, f"payload cannot be decoded: {why}")
            self._publish()
            return
        try:
            payload = workflow.payload_converter().from_payload(raw.payload, dict)
            msg = MESSAGE_TYPES[name].model_validate(payload)
        except Exception as err:  # malformed JSON or fields: record it, change nothing else
            self.s.ignore(workflow.now(), name, None, f"malformed payload: {_short(err)}")
            self._publish()
            return
        try:
            self.s.validate(name, msg)
        except Rejected as err:
            self.s.ignore(workflow.now(), name, msg.by, str(err))
            self._publish()
            return
        self._apply(name, msg)

    @workflow.signal(dynamic=True)
    def unknown_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """A signal nobody handles would wait in the SDK's buffer forever, unseen."""
        known = ", ".join(sorted(MESSAGE_TYPES))
        self.s.ignore(workflow.now(), name[:100], None,
                      f"no such action; the actions are: {known}")
        self._publish()

    # One signal and one validated update per human action, under the same name.

    @workflow.signal(name="approve-settlement")
    def approve_settlement_signal(self, raw: RawValue) -> None:
        self._signal("approve-settlement", raw)

    @workflow.update(name="approve-settlement")
    def approve_settlement(self, msg: ApproveSettlement) -> Ack:
        return self._apply("approve-settlement", msg)

    @approve_settlement.validator
    def _v_approve_settlement(self, msg: ApproveSettlement) -> None:
        self._validate("approve-settlement", msg)

    @workflow.signal(name="dispute-settlement")
    def dispute_settlement_signal(self, raw: RawValue) -> None:
        self._signal("dispute-settlement", raw)

    @workflow.update(name="dispute-settlement")
    def dispute_settlement(self, msg: DisputeSettlement) -> Ack:
        return self._apply("dispute-settlement", msg)

    @dispute_settlement.validator
    def _v_dispute_settlement(self, msg: DisputeSettlement) -> None:
        self._validate("dispute-settlement", msg)

    @workflow.signal(name="verify-data")
    def verify_data_signal(self, raw: RawValue) -> None:
        self._signal("verify-data", raw)

    @workflow.update(name="verify-data")
    def verify_data(self, msg: VerifyData) -> Ack:
        return self._apply("verify-data", msg)

    @verify_data.validator
    def _v_verify_data(self, msg: VerifyData) -> None:
        self._validate("verify-data", msg)

    @workflow.signal(name="reject-data")
    def reject_data_signal(self, raw: RawValue) -> None:
        self._signal("reject-data", raw)

    @workflow.update(name="reject-data")
    def reject_data(self, msg: RejectData) -> Ack:
        return self._apply("reject-data", msg)

    @reject_data.validator
    def _v_reject_data(self, msg: RejectData) -> None:
        self._validate("reject-data", msg)

    @workflow.signal(name="complete-task")
    def complete_task_signal(self, raw: RawValue) -> None:
        self._signal("complete-task", raw)

    @workflow.update(name="complete-task")
    def complete_task(self, msg: CompleteTask) -> Ack:
        return self._apply("complete-task", msg)

    @complete_task.validator
    def _v_complete_task(self, msg: CompleteTask) -> None:
        self._validate("complete-task", msg)

    @workflow.signal(name="meeting-held")
    def meeting_held_signal(self, raw: RawValue) -> None:
        self._signal("meeting-held", raw)

    @workflow.update(name="meeting-held")
    def meeting_held(self, msg: MeetingHeld) -> Ack:
        return self._apply("meeting-held", msg)

    @meeting_held.validator
    def _v_meeting_held(self, msg: MeetingHeld) -> None:
        self._validate("meeting-held", msg)

    @workflow.signal(name="record-feedback")
    def record_feedback_signal(self, raw: RawValue) -> None:
        self._signal("record-feedback", raw)

    @workflow.update(name="record-feedback")
    def record_feedback(self, msg: RecordFeedback) -> Ack:
        return self._apply("record-feedback", msg)

    @record_feedback.validator
    def _v_record_feedback(self, msg: RecordFeedback) -> None:
        self._validate("record-feedback", msg)

    @workflow.signal(name="renew")
    def renew_signal(self, raw: RawValue) -> None:
        self._signal("renew", raw)

    @workflow.update(name="renew")
    def renew(self, msg: Renew) -> Ack:
        return self._apply("renew", msg)

    @renew.validator
    def _v_renew(self, msg: Renew) -> None:
        self._validate("renew", msg)

    @workflow.signal(name="terminate-early")
    def terminate_early_signal(self, raw: RawValue) -> None:
        self._signal("terminate-early", raw)

    @workflow.update(name="terminate-early")
    def terminate_early(self, msg: TerminateEarly) -> Ack:
        return self._apply("terminate-early", msg)

    @terminate_early.validator
    def _v_terminate_early(self, msg: TerminateEarly) -> None:
        self._validate("terminate-early", msg)

    @workflow.signal(name="extend-notice")
    def extend_notice_signal(self, raw: RawValue) -> None:
        self._signal("extend-notice", raw)

    @workflow.update(name="extend-notice")
    def extend_notice(self, msg: ExtendNotice) -> Ack:
        return self._apply("extend-notice", msg)

    @extend_notice.validator
    def _v_extend_notice(self, msg: ExtendNotice) -> None:
        self._validate("extend-notice", msg)

    @workflow.signal(name="cancel")
    def cancel_signal(self, raw: RawValue) -> None:
        self._signal("cancel", raw)

    @workflow.update(name="cancel")
    def cancel(self, msg: Cancel) -> Ack:
        return self._apply("cancel", msg)

    @cancel.validator
    def _v_cancel(self, msg: Cancel) -> None:
        self._validate("cancel", msg)

    @workflow.signal(name="fix-contact")
    def fix_contact_signal(self, raw: RawValue) -> None:
        self._signal("fix-contact", raw)

    @workflow.update(name="fix-contact")
    def fix_contact(self, msg: FixContact) -> Ack:
        return self._apply("fix-contact", msg)

    @fix_contact.validator
    def _v_fix_contact(self, msg: FixContact) -> None:
        self._validate("fix-contact", msg)

    @workflow.signal(name="retry-step")
    def retry_step_signal(self, raw: RawValue) -> None:
        self._signal("retry-step", raw)

    @workflow.update(name="retry-step")
    def retry_step(self, msg: RetryStep) -> Ack:
        return self._apply("retry-step", msg)

    @retry_step.validator
    def _v_retry_step(self, msg: RetryStep) -> None:
        self._validate("retry-step", msg)

    @workflow.signal(name="skip-step")
    def skip_step_signal(self, raw: RawValue) -> None:
        self._signal("skip-step", raw)

    @workflow.update(name="skip-step")
    def skip_step(self, msg: SkipStep) -> Ack:
        return self._apply("skip-step", msg)

    @skip_step.validator
    def _v_skip_step(self, msg: SkipStep) -> None:
        self._validate("skip-step", msg)


async def _together(*steps: Awaitable[T]) -> list[T]:
    """Run steps side by side and return their results; if one raises (a cancel), stop the
    others before going on, so the workflow never ends with their activities running."""
    tasks = [asyncio.ensure_future(s) for s in steps]
    await workflow.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
    if failed:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        error = failed[0].exception()
        assert error is not None
        raise error
    return [t.result() for t in tasks]


def _cancelled(err: ActivityError) -> bool:
    return isinstance(err.cause, CancelledError)


def _cause(err: BaseException) -> str:
    cause = err.__cause__ or err
    return getattr(cause, "message", None) or str(cause)


def _short(err: Exception) -> str:
    return str(err).replace("\n", " ")[:300]
