"""Waiting: durable timers raced against people. Every wait also ends when ops renew,
cancel or terminate early (``Run.check_interrupts``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow

from offboarding.models.stages import StepKey, Wait
from offboarding.workflows import causes
from offboarding.workflows.context import Run
from offboarding.workflows.sending import notify

T = TypeVar("T")


async def sleep_until(run: Run, when: datetime, summary: str, wake: Callable[[], bool]) -> None:
    """A durable timer raced against a condition (and ops' interruptions).

    A timer task rather than ``wait_condition(timeout=...)``: the latter has hung under
    the time-skipping test server.
    """
    def done() -> bool:
        return wake() or run.interrupted()

    run.vis.before_wait()
    delay = when - run.clock.now()
    if delay > timedelta(0) and not done():
        timer = asyncio.create_task(workflow.sleep(delay, summary=summary))
        cond = asyncio.create_task(workflow.wait_condition(done))
        await workflow.wait([timer, cond], return_when=asyncio.FIRST_COMPLETED)
        for task in (timer, cond):
            task.cancel()
    if done():  # a person ended the wait, not the timer: go on in their decision's trace
        causes.follow(run)
    run.check_interrupts()


async def until_deadline(run: Run, what: Wait, step: StepKey, days: float,
                         detail: Callable[[datetime], str], summary: str,
                         done: Callable[[], bool]) -> None:
    """Wait for a person's answer that the offboarding can do without: after ``days`` it
    goes on (the step is then skipped by the caller)."""
    clock = run.clock
    deadline = clock.now() + clock.days(days)
    run.s.start_wait(what, clock.now(), deadline)
    run.mark(step, "waiting", detail(deadline))
    run.vis.publish()
    await sleep_until(run, deadline, summary, done)
    run.s.end_wait(what)


async def until_date(run: Run, due: Callable[[], date], arm: Callable[[date], bool],
                     summary: Callable[[date], str]) -> None:
    """Sleep until the day ``due()`` returns; ``extend-notice`` moves that day, and the
    timer is re-armed for the new one. ``arm`` runs before each timer and may decline
    it (the day has passed) by returning False."""
    pending = run.s.pending
    while True:
        day = due()
        if not arm(day):
            return
        await sleep_until(run, run.clock.at(day), summary(day),
                          lambda: pending.extend is not None)
        if pending.extend is None:
            return
        pending.extend = None


async def await_human(run: Run, what: str, done: Callable[[], bool], *, to: list[str],
                      reminder_every: float, escalate_after: float, how: str,
                      remind: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None,
                      label: str | None = None) -> None:
    """Wait for a person, reminding them every few days and alerting ops once overdue.
    ``remind`` sends a reminder (given its key and context) when the caller has its own
    way, e.g. one message per approver with their link. ``label`` names the wait in
    messages (by default, its name)."""
    s, clock = run.s, run.clock
    since = clock.now()
    overdue_at = since + clock.days(escalate_after)
    s.start_wait(what, since, overdue_at)
    run.vis.publish()
    reminders = 0
    context = {"what": label or what.replace("-", " "), "since": clock.as_date(since), "how": how}
    while not done():
        next_reminder = since + clock.days(reminder_every) * (reminders + 1)
        wake_at = next_reminder if s.status.overdue else min(next_reminder, overdue_at)
        await sleep_until(run, wake_at, f"waiting for {what}", done)
        if done():
            break
        now = clock.now()
        if not s.status.overdue and now >= overdue_at:
            s.status.overdue = True
            run.vis.publish()
            await notify(run, f"{what}-overdue", "ops_alert", [], to_ops=True,
                         extra={**context, "reminders": reminders, "problem": False})
        if now >= next_reminder:
            reminders += 1
            key = f"{what}-reminder-{reminders}"
            if remind is not None:
                await remind(key, context)
            else:
                await notify(run, key, "reminder", to, extra=context)
    s.end_wait(what)
    run.vis.publish()


async def together(*steps: Awaitable[T]) -> list[T]:
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
