"""From the contract review to the final review meeting: only a contract that ends on its
date goes this way (an early termination leaves it, see termination.py)."""

from __future__ import annotations

from datetime import date, timedelta

from offboarding.models.stages import Stage, StepKey, Wait
from offboarding.workflows.context import Run
from offboarding.workflows.mail import email
from offboarding.workflows.playbook_steps import switched_off
from offboarding.workflows.waits import until_date, until_deadline


async def contract_end(run: Run) -> None:
    await contract_review(run)
    await _notice(run)
    await _notice_period(run)
    await _review_meeting(run)


async def contract_review(run: Run) -> None:
    c = run.client.contract
    run.enter(Stage.CONTRACT_REVIEW)
    open_items = "; ".join(c.outstanding_deliverables) or "none"
    run.mark(StepKey.CONTRACT_REVIEW, "done",
             f"{len(c.services)} services reviewed; outstanding deliverables: {open_items}")
    run.check_interrupts()


async def _notice(run: Run) -> None:
    """Notice of contract conclusion, notice_days before the end (which may move)."""
    s, contacts = run.s, run.client.contacts
    run.enter(Stage.NOTICE)

    def due() -> date:
        return s.status.contract_end - timedelta(days=run.client.contract.notice_days)

    def arm(day: date) -> bool:
        # Published twice (here and after the mark): histories recorded before
        # publish-on-change upsert at both points, so both calls stay.
        run.vis.publish()
        if day < run.clock.today():
            s.status.short_notice = True
            return False
        run.mark(StepKey.NOTICE, "waiting", f"scheduled for {day}")
        run.vis.publish()
        return True

    await until_date(run, due, arm, lambda day: f"notice due {day}")
    await email(run, "notice", template="notice", step=StepKey.NOTICE, to=[contacts.primary.email],
                cc=[contacts.billing.email])
    run.mark(StepKey.NOTICE, "done", ("short notice: " if s.status.short_notice else "")
             + f"sent for end date {s.status.contract_end}")


async def _notice_period(run: Run) -> None:
    """Until the end date, which extend-notice may move."""
    s = run.s
    run.enter(Stage.NOTICE_PERIOD)
    s.start_wait(Wait.NOTICE_PERIOD, run.clock.now(), None)

    def arm(day: date) -> bool:
        run.mark(StepKey.NOTICE_PERIOD, "waiting", f"until {day}")
        run.vis.publish()
        return True

    await until_date(run, lambda: s.status.contract_end, arm,
                     lambda day: f"notice period until {day}")
    s.end_wait(Wait.NOTICE_PERIOD)
    run.mark(StepKey.NOTICE_PERIOD, "done", f"ended {s.status.contract_end}")


async def _review_meeting(run: Run) -> None:
    s, clock = run.s, run.clock
    run.enter(Stage.REVIEW_MEETING)
    if switched_off(run, StepKey.REVIEW_MEETING):
        return
    if s.pending.meeting is None:
        dates = [(clock.today() + timedelta(days=d)).isoformat() for d in (2, 3, 5)]
        await email(run, "meeting-proposal", template="meeting_proposal",
                    step=StepKey.REVIEW_MEETING, to=[run.client.contacts.primary.email],
                    extra={"dates": dates})
        await until_deadline(run, Wait.MEETING, StepKey.REVIEW_MEETING,
                             run.inp.timings.meeting_deadline_days,
                             lambda _: "proposed " + ", ".join(dates),
                             "waiting for the review meeting",
                             lambda: s.pending.meeting is not None)
    held = s.pending.meeting
    if held is None:
        run.mark(StepKey.REVIEW_MEETING, "skipped", "no meeting by the deadline")
    else:
        run.mark(StepKey.REVIEW_MEETING, "done", held.notes or "held", by=held.by)
