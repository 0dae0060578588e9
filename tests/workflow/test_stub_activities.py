"""The workflow alone, on the time-skipping server, with its activities replaced by stubs
registered under the real activity names: the order of the steps and the handling of a
failure only ops can fix, in seconds of wall time for weeks of calendar.

The stubs (tests/workflow/stubs.py) stand in for SMTP, SCIM and the file system on
purpose: what is tested here is the workflow's own logic. The real activities are tested
against real servers in tests/integration; every branch of the process is in
test_branches.py."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from offboarding.models.status import OffboardingResult
from tests.helpers import client_file, wait_until, waiting_for
from tests.workflow.stubs import StubWorld, manifest


async def test_a_termination_revokes_first_and_waits_for_ops_on_a_refused_token(
    ts_env: WorkflowEnvironment, world: StubWorld,
) -> None:
    calls = world.stubs
    today = (await ts_env.get_current_time()).date()
    effective = today + timedelta(days=10)
    cf = client_file("termination", end_in_days=None,
                     termination={"cause": "Breach", "effective_date": effective.isoformat()})
    calls.refuse_revoke.add("crm")
    handle = await world.start(cf)
    st = await wait_until(handle, lambda s: s.stage == "awaiting-termination")
    assert calls.calls == [], "nothing happens before the effective date"

    await ts_env.sleep(timedelta(days=10, hours=1))
    st = await wait_until(handle, waiting_for("ops-action"), what="the refused token")
    assert [p.key for p in st.problems if p.resolution is None] == ["access-crm"]
    assert calls.calls[:2] == ["revoke crm", "email problem-access-crm-1"]
    await handle.signal("retry-step", {"by": "ops", "problem": "access-crm"})

    st = await wait_until(handle, lambda s: {"settlement-approval", "data-verification"}
                          <= set(s.waits), what="both approvals at once")
    await handle.signal("approve-settlement", {"by": cf.approvers.finance[0],
                                               "statement_hash": st.statements[-1].short_hash})
    await handle.signal("verify-data", {"by": cf.approvers.data_verification[0],
                                        "checksum": manifest(1)})
    await wait_until(handle, lambda s: s.stage == "keep-in-touch", what="the check-in wait")
    # The check-in is 60 days on; waiting on result() alone does not make this server skip.
    await ts_env.sleep(timedelta(days=cf.follow_up_days + 1))
    result = await ts_env.client.get_workflow_handle(
        handle.id, result_type=OffboardingResult).result()

    assert result.outcome == "completed"
    order = calls.calls
    assert order.index("revoke crm", 1) < order.index("email statement-v1"), \
        "access ends before the settlement starts"
    assert order.index("email access-revoked") < order.index("archive") \
        < order.index("email farewell") < order.index("email check-in")
    assert order.index("purge") < order.index("email check-in"), "retention is 14 days"
    states = {s.key: s.state for s in result.status.steps}
    assert {k for k, v in states.items() if v == "skipped"} == {
        "notice", "notice-period", "review-meeting", "feedback"}
    assert result.status.problems[0].resolved_by == "ops"
