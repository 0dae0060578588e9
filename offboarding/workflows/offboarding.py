"""The client-offboarding workflow: one durable run per departing client.

It follows the checklist (``state.STEPS``) through the stages in ``stages/``: durable
timers for the notice, the notice period, reminders, retention and the later check-in;
human decisions as signals (Web UI, ``temporal workflow signal``) or validated updates
(the CLI), declared from one table (``handlers.py``); activities for everything that
touches the world. Nothing here does I/O or reads a clock but Temporal's.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import workflow
from temporalio.common import RawValue

# Imported once for the worker, not again for every workflow run: only this module is
# reloaded per run by the sandbox, and everything below (with what it imports in turn) is
# passed through from here, so no other workflow module needs a block of its own. The
# modules below are deterministic (no I/O, no clock but workflow.now, no randomness, no
# mutable module state; tests/unit/test_layers.py checks what they import), and
# re-executing them per run made the replay of a contract end about a third slower.
with workflow.unsafe.imports_passed_through():
    # Loaded lazily by pydantic's EmailStr; passed through so the sandbox doesn't reload them.
    import email_validator  # noqa: F401
    import idna  # noqa: F401

    from offboarding.models.messages import Cancel
    from offboarding.models.stages import Stage, StepKey
    from offboarding.models.status import (
        OffboardingInput,
        OffboardingResult,
        OffboardingStatus,
        Outcome,
    )
    from offboarding.workflows import handlers, patches
    from offboarding.workflows.clock import Clock
    from offboarding.workflows.context import Interrupted, Run, SwitchToTermination
    from offboarding.workflows.mail import email
    from offboarding.workflows.playbook_steps import stop_tasks, tasks_done, then
    from offboarding.workflows.stages.access import access_revocation
    from offboarding.workflows.stages.closing import (
        archive_and_farewell,
        feedback,
        keep_in_touch,
        knowledge_transfer,
    )
    from offboarding.workflows.stages.contract_end import contract_end
    from offboarding.workflows.stages.data import data_transfer, end_exports
    from offboarding.workflows.stages.settlement import settlement
    from offboarding.workflows.stages.termination import termination
    from offboarding.workflows.state import OffboardingState
    from offboarding.workflows.visibility import Visibility


@workflow.defn(name="ClientOffboarding")
@handlers.declare_actions
class ClientOffboarding:
    @workflow.init
    def __init__(self, inp: OffboardingInput) -> None:
        state = OffboardingState(workflow.info().workflow_id, inp.client,
                                 second_ops=inp.second_ops, require_links=inp.require_links,
                                 playbook=inp.playbook)
        self.run_state = Run(inp=inp, s=state, clock=Clock(workflow.now, inp.timings.day_length),
                             vis=Visibility(state))

    @workflow.run
    async def run(self, inp: OffboardingInput) -> OffboardingResult:
        run = self.run_state
        status = run.s.status
        if workflow.patched(patches.RUN_RECORDS):
            # The run the offboarding started as: it would stay the same across a
            # continue-as-new, so its records and links would too.
            status.run_id = workflow.info().first_execution_run_id
        run.vis.publish()
        _count("offboarding_started", "Offboardings started", reason=status.reason)
        outcome: Outcome = "completed"
        try:
            if status.reason == "contract_end":
                try:
                    await contract_end(run)
                except SwitchToTermination:
                    status.reason = "termination"
                    run.s.end_all_waits()
            if status.reason == "termination":
                await termination(run)
            await _closing(run)
        except Interrupted:
            await stop_tasks(run)
            if run.s.pending.cancel:
                outcome = "cancelled"
                await _cancelled(run, run.s.pending.cancel)
            else:
                outcome = "renewed"
                await _renewed(run)
        status.outcome = outcome
        status.stage = Stage(outcome)
        run.vis.publish()
        if outcome == "cancelled":
            _count("offboarding_cancelled", "Offboardings cancelled", reason=status.reason)
        else:
            _count("offboarding_completed", "Offboardings completed or renewed",
                   reason=status.reason, outcome=outcome)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return OffboardingResult(outcome=outcome, summary=_summary(status), status=status)

    @workflow.query
    def status(self) -> OffboardingStatus:
        return self.run_state.s.status

    @workflow.signal(dynamic=True)
    def any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Every signal, known or not, with any number of arguments (``handlers.py``)."""
        handlers.receive_signal(self.run_state, name, args)


async def _closing(run: Run) -> None:
    """After the notice (a contract end) or the effective date (a termination, which has
    done its settlement, data transfer and access revocation by now)."""
    contract_ended = run.s.status.reason == "contract_end"
    if contract_ended:
        await settlement(run)
        await then(run, StepKey.SETTLEMENT)
        await data_transfer(run)
        await then(run, StepKey.DATA_TRANSFER)
        await access_revocation(run)
        await then(run, StepKey.ACCESS_REVOCATION)
    await knowledge_transfer(run)
    await then(run, StepKey.KNOWLEDGE_TRANSFER)
    if contract_ended:
        await feedback(run)
    await tasks_done(run)
    await archive_and_farewell(run)
    await keep_in_touch(run)


async def _renewed(run: Run) -> None:
    renew = run.s.pending.renew
    assert renew is not None
    await email(run, "renewal-confirmation", template="renewal_confirmation", step=StepKey.NOTICE,
                to=[run.client.contacts.primary.email], extra={"note": renew.note})
    run.s.skip_remaining(run.clock.now(), "contract renewed")


async def _cancelled(run: Run, cancel: Cancel) -> None:
    retention_counting = run.retention is not None and not run.retention.done()
    if run.retention is not None and not run.retention.done():
        run.retention.cancel()
    exporting = run.s.status.step("data-transfer").state in ("active", "waiting")
    if (run.s.status.data_packages or exporting) and workflow.patched(
            patches.CANCEL_ENDS_EXPORTS):
        await end_exports(run, purge_data=retention_counting)
    run.s.skip_remaining(run.clock.now(), f"cancelled by {cancel.by}: {cancel.reason}",
                         state="cancelled")


def _count(name: str, description: str, **attributes: str) -> None:
    """A counter on the worker's Prometheus endpoint; not counted again on replay."""
    workflow.metric_meter().create_counter(name, description).add(1, attributes)


def _summary(status: OffboardingStatus) -> str:
    done = sum(1 for s in status.steps if s.state == "done")
    return (f"{status.client_name}: {status.outcome}; {done}/{len(status.steps)} steps "
            f"done, {len(status.emails)} emails sent, "
            f"{sum(len(r.accounts) for r in status.revocations)} accounts revoked")
