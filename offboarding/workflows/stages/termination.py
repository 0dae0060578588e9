"""An early termination: from the start (the client file says so) or switched to by ops
(terminate-early). No review meeting and no feedback; on the effective date access ends
at once, then settlement and data transfer run side by side."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from offboarding.models.stages import Stage, StepKey
from offboarding.workflows.context import Run
from offboarding.workflows.playbook_steps import then
from offboarding.workflows.stages.access import access_revocation
from offboarding.workflows.stages.contract_end import contract_review
from offboarding.workflows.stages.data import data_transfer
from offboarding.workflows.stages.settlement import settlement
from offboarding.workflows.waits import sleep_until, together

SKIPPED = (StepKey.NOTICE, StepKey.NOTICE_PERIOD, StepKey.REVIEW_MEETING, StepKey.FEEDBACK)


async def termination(run: Run) -> None:
    s, clock = run.s, run.clock
    ordered, planned = s.pending.terminate, run.client.termination
    effective = (ordered.effective_date if ordered else
                 planned.effective_date if planned else None)
    s.status.effective_date = effective
    now = clock.now()
    for key in SKIPPED:
        if s.status.step(key).state in ("pending", "active", "waiting"):
            s.mark(key, "skipped", now, "not part of a termination")
    if s.status.step("contract-review").state == "pending":
        await contract_review(run)
    if effective and clock.at(effective) > clock.now():
        run.enter(Stage.AWAITING_TERMINATION)
        run.vis.publish()
        await sleep_until(run, clock.at(effective), f"termination effective {effective}",
                          lambda: s.pending.cancel is not None)
        run.check_interrupts()
    s.status.contract_end = effective or clock.today()
    run.enter(Stage.TERMINATION)
    await access_revocation(run)
    await then(run, StepKey.ACCESS_REVOCATION)
    await together(_and_then(run, settlement, StepKey.SETTLEMENT),
                   _and_then(run, data_transfer, StepKey.DATA_TRANSFER))


async def _and_then(run: Run, step: Callable[[Run], Awaitable[None]], key: StepKey) -> None:
    await step(run)
    await then(run, key)
