"""After settlement, data and access: knowledge transfer, feedback, the archive and the
farewell, and keeping in touch (a check-in, and the retention deletion if it is later)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

from offboarding.activities.archive import Archiver
from offboarding.models.records import Attachment
from offboarding.models.stages import Stage, StepKey, Wait
from offboarding.workflows import patches
from offboarding.workflows.context import Run
from offboarding.workflows.mail import email
from offboarding.workflows.playbook_steps import switched_off
from offboarding.workflows.problems import until_done
from offboarding.workflows.sending import RETRY_FOREVER
from offboarding.workflows.waits import sleep_until, until_deadline


async def knowledge_transfer(run: Run) -> None:
    run.enter(Stage.KNOWLEDGE_TRANSFER)
    if switched_off(run, StepKey.KNOWLEDGE_TRANSFER):
        return
    docs, primary = run.client.documents, run.client.contacts.primary.email
    if docs:
        listed = {"documents": [d.model_dump() for d in docs]}
        await email(run, "knowledge-transfer", template="knowledge_transfer",
                    step=StepKey.KNOWLEDGE_TRANSFER, to=[primary],
                    attachments=[Attachment(root="documents", path=d.path) for d in docs],
                    extra=listed)
        # Added while offboardings were in flight: those that passed this point before
        # the change replay without it (tests/replay/test_replay.py); new ones send it.
        if workflow.patched(patches.HANDOVER_INVITE):
            await email(run, "handover-invite", template="handover_invite",
                        step=StepKey.KNOWLEDGE_TRANSFER, to=[primary], extra=listed)
    run.mark(StepKey.KNOWLEDGE_TRANSFER, "done",
             f"{len(docs)} document(s) sent; handover session is a manual item")


async def feedback(run: Run) -> None:
    s, clock = run.s, run.clock
    run.enter(Stage.FEEDBACK)
    if switched_off(run, StepKey.FEEDBACK):
        return
    await email(run, "feedback-survey", template="feedback_survey", step=StepKey.FEEDBACK,
                to=[run.client.contacts.primary.email])
    await until_deadline(run, Wait.FEEDBACK, StepKey.FEEDBACK,
                         run.inp.timings.feedback_deadline_days,
                         lambda deadline: f"survey sent; open until {clock.as_date(deadline)}",
                         "waiting for feedback", lambda: s.pending.feedback is not None)
    fb = s.status.feedback
    if fb is None:
        run.mark(StepKey.FEEDBACK, "skipped", "no feedback by the deadline")
    else:
        run.mark(StepKey.FEEDBACK, "done", f"NPS {fb.nps}, CSAT {fb.csat}", by=fb.by)


async def archive_and_farewell(run: Run) -> None:
    s = run.s
    run.enter(Stage.ARCHIVE)
    run.vis.publish()
    receipt = await until_done(run, "archive", StepKey.ARCHIVE, lambda: (
        workflow.execute_activity_method(
            Archiver.archive_offboarding, s.status,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=30), retry_policy=RETRY_FOREVER,
            summary="write the archive bundle and closure report",
        )))
    s.status.archive = receipt
    if receipt is None:
        run.mark(StepKey.ARCHIVE, "skipped", "archive skipped by ops")
    else:
        run.mark(StepKey.ARCHIVE, "done",
                 f"{len(receipt.files)} files, manifest {receipt.manifest_sha256[:12]}")
    if s.pending.cancel is not None and workflow.patched(patches.CANCEL_STOPS_FAREWELL):
        run.check_interrupts()
    run.enter(Stage.FAREWELL)
    await email(run, "farewell", template="farewell", step=StepKey.FAREWELL,
                to=[run.client.contacts.primary.email],
                attachments=[Attachment(root="archive", path=receipt.report)] if receipt else [],
                extra={"termination": s.status.reason == "termination"})
    run.mark(StepKey.FAREWELL, "done", "sent with the closure report" if receipt
             else "sent without a closure report (archive skipped)")


async def keep_in_touch(run: Run) -> None:
    s, clock = run.s, run.clock
    run.enter(Stage.KEEP_IN_TOUCH)
    if not switched_off(run, StepKey.KEEP_IN_TOUCH):
        when = clock.now() + clock.days(run.client.follow_up_days)
        run.mark(StepKey.KEEP_IN_TOUCH, "waiting", f"check-in on {clock.as_date(when)}")
        run.vis.publish()
        await sleep_until(run, when, f"check in on {clock.as_date(when)}",
                          lambda: s.pending.cancel is not None)
        run.check_interrupts()
        await email(run, "check-in", template="check_in", step=StepKey.KEEP_IN_TOUCH,
                    to=[run.client.contacts.primary.email])
        run.mark(StepKey.KEEP_IN_TOUCH, "done", "check-in sent")
    retention = run.retention
    # Two checks of the same thing: histories recorded before publish-on-change upsert
    # here whenever a retention exists, done or not, so this upsert must stay as it is.
    if retention is not None:
        run.vis.publish()
    if retention is not None and not retention.done():
        # Retention may outlast the check-in; a cancel still ends the wait.
        cancelled = asyncio.create_task(
            workflow.wait_condition(lambda: s.pending.cancel is not None))
        await workflow.wait([retention, cancelled], return_when=asyncio.FIRST_COMPLETED)
        cancelled.cancel()
        run.check_interrupts()
