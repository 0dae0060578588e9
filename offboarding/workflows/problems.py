"""Problems: an activity that failed for a reason only people can fix (a refused token,
a bounced address, a file that cannot be deleted). The step waits, ops are alerted, and
``retry-step`` or ``skip-step`` (rules.py) decide what happens next. Transient faults
never get here: the activities' retry policy retries them."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

from offboarding.models.status import Problem
from offboarding.workflows import causes
from offboarding.workflows.context import Run
from offboarding.workflows.sending import cancelled, cause, notify

T = TypeVar("T")


async def until_done(run: Run, key: str, step: str,
                     call: Callable[[], Awaitable[T]]) -> T | None:
    """Run an activity until it succeeds or ops skip it (then None). ``key`` names the
    problem for ops (``retry-step --problem KEY``), so it is stored: never rename one."""
    while True:
        try:
            return await call()
        except ActivityError as err:
            if cancelled(err):
                raise
            why = cause(err)
        if await ask_ops(run, key, step, why, "Fix the cause, then") == "skip":
            return None


async def ask_ops(run: Run, key: str, step: str, why: str,
                  then: str) -> Literal["retry", "skip"]:
    """Hold ``step`` for ops: alert them and wait for their ``retry-step`` or
    ``skip-step`` on the problem ``key``."""
    s, now = run.s, run.clock.now()
    problem = s.raise_problem(key, step, why, now)
    run.mark(step, s.status.step(step).state, f"NEEDS OPS ({key}): {why}")
    run.vis.publish()
    await notify(run, f"problem-{key}-{len(s.status.problems)}", "ops_alert", [],
                 to_ops=True, extra={
                     "what": key, "reminders": 0, "problem": True,
                     "since": run.clock.as_date(problem.since),
                     "how": f"{why}. {then}: offboarding retry-step "
                            f"{run.workflow_id} --problem {key} --by <you> (or skip-step "
                            "... --reason ...)"})
    await workflow.wait_condition(functools.partial(_settled_or_interrupted, run, problem))
    causes.follow(run)  # the retry goes on in the trace of ops' retry-step
    run.check_interrupts()
    s.end_ops_wait_if_clear()
    run.vis.publish()
    assert problem.resolution is not None
    return problem.resolution


def _settled_or_interrupted(run: Run, problem: Problem) -> bool:
    return problem.resolution is not None or run.interrupted()
