"""After settlement, data and access: knowledge transfer, feedback, the archive and the
farewell, and keeping in touch (a check-in, and the retention deletion if it is later)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

from offboarding.activities.archive import Archiver
from offboarding.models.records import Attachment
from offboarding.models.stages import Stage, Wait
from offboarding.workflows.context import Run
from offboarding.workflows.mail import email
from offboarding.workflows.problems import until_done
from offboarding.workflows.sending import RETRY_FOREVER
from offboarding.workflows.waits import sleep_until, until_deadline

# Workflow changes made behind workflow.patched(), oldest first. Remove a patch (keeping
# its new path) only once no offboarding that started before it is still running.
HANDOVER_INVITE = "handover-invite-email"


async def knowledge_transfer(run: Run) -> None:
    run.enter(Stage.KNOWLEDGE_TRANSFER)
    docs, primary = run.client.documents, run.client.contacts.primary.email
    if docs:
        listed = {"documents": [d.model_dump() for d in docs]}
        await email(run, "knowledge-transfer", "knowledge_transfer", "knowledge-transfer",
                    [primary], attachments=[Attachment(root="documents", path=d.path)
                                            for d in docs], extra=listed)
        # Added while offboardings were in flight: those that passed this point before
        # the change replay without it (tests/test_replay.py); new ones send it.
        if workflow.patched(HANDOVER_INVITE):
            await email(run, "handover-invite", "handover_invite", "knowledge-transfer",
                        [primary], extra=listed)
    run.mark("knowledge-transfer", "done",
             f"{len(docs)} document(s) sent; handover session is a manual item")


async def feedback(run: Run) -> None:
    s, clock = run.s, run.clock
    run.enter(Stage.FEEDBACK)
    await email(run, "feedback-survey", "feedback_survey", "feedback",
                [run.client.contacts.primary.email])
    await until_deadline(run, Wait.FEEDBACK, "feedback", run.inp.timings.feedback_deadline_days,
                         lambda deadline: f"survey sent; open until {clock.as_date(deadline)}",
                         "waiting for feedback", lambda: s.pending.feedback is not None)
    fb = s.status.feedback
    if fb is None:
        run.mark("feedback", "skipped", "no feedback by the deadline")
    else:
        run.mark("feedback", "done", f"NPS {fb.nps}, CSAT {fb.csat}", by=fb.by)


async def archive_and_farewell(run: Run) -> None:
    s = run.s
    run.enter(Stage.ARCHIVE)
    run.vis.publish()
    receipt = await until_done(run, "archive", "archive", lambda: (
        workflow.execute_activity_method(
            Archiver.archive_offboarding, s.status,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=30), retry_policy=RETRY_FOREVER,
            summary="write the archive bundle and closure report",
        )))
    s.status.archive = receipt
    if receipt is None:
        run.mark("archive", "skipped", "archive skipped by ops")
    else:
        run.mark("archive", "done",
                 f"{len(receipt.files)} files, manifest {receipt.manifest_sha256[:12]}")
    run.enter(Stage.FAREWELL)
    await email(run, "farewell", "farewell", "farewell", [run.client.contacts.primary.email],
                attachments=[Attachment(root="archive", path=receipt.report)] if receipt
                else [], extra={"termination": s.status.reason == "termination"})
    run.mark("farewell", "done", "sent with the closure report" if receipt
             else "sent without a closure report (archive skipped)")


async def keep_in_touch(run: Run) -> None:
    s, clock = run.s, run.clock
    run.enter(Stage.KEEP_IN_TOUCH)
    when = clock.now() + clock.days(run.client.follow_up_days)
    run.mark("keep-in-touch", "waiting", f"check-in on {clock.as_date(when)}")
    run.vis.publish()
    await sleep_until(run, when, f"check in on {clock.as_date(when)}",
                      lambda: s.pending.cancel is not None)
    run.check_interrupts()
    await email(run, "check-in", "check_in", "keep-in-touch",
                [run.client.contacts.primary.email])
    run.mark("keep-in-touch", "done", "check-in sent")
    retention = run.retention
    if retention is not None:
        run.vis.publish()
    if retention is not None and not retention.done():
        # Retention may outlast the check-in; a cancel still ends the wait.
        cancelled = asyncio.create_task(
            workflow.wait_condition(lambda: s.pending.cancel is not None))
        await workflow.wait([retention, cancelled], return_when=asyncio.FIRST_COMPLETED)
        cancelled.cancel()
        run.check_interrupts()
