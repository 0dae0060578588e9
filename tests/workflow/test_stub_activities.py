"""The workflow alone, on the time-skipping server, with its activities replaced by stubs
registered under the real activity names: the order of the steps and the handling of a
failure only ops can fix, in seconds of wall time for weeks of calendar.

The stubs stand in for SMTP, SCIM and the file system on purpose: what is tested here is
the workflow's own logic. The real activities are tested against real servers in
tests/integration."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from offboarding.client import workflow_id_for
from offboarding.models.records import (
    ArchiveReceipt,
    DataPackage,
    EmailReceipt,
    EmailRequest,
    ExportRequest,
    PurgeRequest,
    PurgeResult,
    RevokeRequest,
    SystemRevocation,
)
from offboarding.models.status import OffboardingInput, OffboardingResult, OffboardingStatus
from offboarding.worker import workflow_runner
from offboarding.workflows.offboarding import ClientOffboarding
from tests.helpers import client_file, wait_until, waiting_for

MANIFEST = "5" * 64


@dataclass
class Stubs:
    """What the workflow asked the world to do, in order."""

    calls: list[str] = field(default_factory=list)
    refuse_revoke: set[str] = field(default_factory=set)

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="send_email")
        async def send_email(req: EmailRequest) -> EmailReceipt:
            self.calls.append(f"email {req.key}")
            return EmailReceipt(key=req.key, message_id=f"<{req.key}@test>", to=req.to,
                                subject=req.template, sent_at=datetime.now(UTC))

        @activity.defn(name="revoke_access")
        async def revoke_access(req: RevokeRequest) -> SystemRevocation:
            self.calls.append(f"revoke {req.system}")
            if req.system in self.refuse_revoke:
                self.refuse_revoke.discard(req.system)
                raise ApplicationError("401 from the SCIM server", type="ScimUnauthorized",
                                       non_retryable=True)
            return SystemRevocation(system=req.system, mode=req.mode, accounts=[])

        @activity.defn(name="export_client_data")
        async def export_client_data(req: ExportRequest) -> DataPackage:
            self.calls.append(f"export {req.attempt}")
            return DataPackage(attempt=req.attempt, location=f"export-{req.attempt}", files=1,
                               bytes=10, manifest_sha256=MANIFEST)

        @activity.defn(name="purge_client_data")
        async def purge_client_data(req: PurgeRequest) -> PurgeResult:
            self.calls.append("purge")
            return PurgeResult(deleted=[p for _, p in req.data_sets])

        @activity.defn(name="archive_offboarding")
        async def archive_offboarding(record: OffboardingStatus) -> ArchiveReceipt:
            self.calls.append("archive")
            return ArchiveReceipt(location="archive", manifest_sha256=MANIFEST, files=["a"],
                                  report="closure-report.html")

        return [send_email, revoke_access, export_client_data, purge_client_data,
                archive_offboarding]


@pytest.fixture
async def stubs(ts_env: WorkflowEnvironment) -> AsyncIterator[tuple[Stubs, str]]:
    found, queue = Stubs(), f"stubs-{uuid.uuid4().hex[:8]}"
    async with Worker(ts_env.client, task_queue=queue, workflows=[ClientOffboarding],
                      activities=found.activities(), workflow_runner=workflow_runner()):
        yield found, queue


async def test_a_termination_revokes_first_and_waits_for_ops_on_a_refused_token(
    ts_env: WorkflowEnvironment, stubs: tuple[Stubs, str],
) -> None:
    calls, queue = stubs
    today = (await ts_env.get_current_time()).date()
    effective = today + timedelta(days=10)
    cf = client_file("termination", end_in_days=None,
                     termination={"cause": "Breach", "effective_date": effective.isoformat()})
    calls.refuse_revoke.add("crm")
    handle = await ts_env.client.start_workflow(
        ClientOffboarding.run, OffboardingInput(client=cf), id=workflow_id_for(cf.client_id),
        task_queue=queue)
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
                                        "checksum": MANIFEST})
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
