"""The waiting-approval gauges (issue 14) come from visibility counts, not from listing
every workflow: two offboardings waiting on the dev server are counted by kind, the
oldest wait is found to the minute, and an approval takes one away."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from devtools.procs import free_port
from devtools.scim import ScimServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import ApproveSettlement, Cancel
from offboarding.telemetry import ApprovalGauges, prometheus_runtime
from tests.helpers import client_file, eventually, new_worker, wait_until, waiting_for
from tests.integration.test_portal import PATIENT
from tests.integration.test_servers import _metrics, _sum


async def _settled(gauges: ApprovalGauges, port: int,
                   holds: Callable[[dict[str, float]], bool]) -> dict[str, float]:
    """Visibility is eventually consistent: refresh until the gauges agree."""
    async def samples() -> dict[str, float]:
        await gauges.refresh()
        return _metrics(port)

    return await eventually(samples, holds, every=0.1, what="the gauges to agree",
                            show=lambda m: repr({k: v for k, v in m.items()
                                                 if "approval" in k}))


def _pending(samples: dict[str, float], kind: str) -> float:
    return _sum(samples, "offboarding_approvals_pending", f'kind="{kind}"')


def _oldest(samples: dict[str, float]) -> float:
    return _sum(samples, "offboarding_approval_oldest_age_seconds",
                'kind="settlement-approval"')


async def test_pending_approvals_are_counted_by_kind_with_the_oldest_wait(
        dev_env: WorkflowEnvironment, settings: Settings, scim: ScimServer) -> None:
    port = free_port()
    runtime = prometheus_runtime(f"127.0.0.1:{port}")
    # Only this test's task queue: the session's server holds other tests' offboardings.
    gauges = ApprovalGauges(dev_env.client, runtime.metric_meter, settings.task_queue)
    gauges.RESOLUTION = timedelta(seconds=1)  # a minute cannot be waited for here
    started = datetime.now(UTC)
    async with new_worker(dev_env.client, settings):
        cli = OffboardingClient(dev_env.client, settings.task_queue)
        handles = []
        for _ in range(2):
            cf = client_file("termination", scim=scim)
            handles.append(dev_env.client.get_workflow_handle(await cli.start(cf, PATIENT)))
        for handle in handles:
            await wait_until(handle, lambda s: {"settlement-approval", "data-verification"}
                             <= set(s.waits))
        # Both counted, and the oldest wait's age grows with it (to the second here).
        samples = await _settled(gauges, port, lambda m: _pending(m, "settlement-approval")
                                 == 2 and _pending(m, "data-verification") == 2
                                 and _oldest(m) >= 2)
        waited = (datetime.now(UTC) - started).total_seconds()
        assert 2 <= _oldest(samples) <= waited + 1, (_oldest(samples), waited)

        st = await wait_until(handles[0], waiting_for("settlement-approval"))
        await cli.send(handles[0].id, "approve-settlement", ApproveSettlement(
            by="finance.lead@example.com",
            statement_hash=st.statements[-1].hash))
        await _settled(gauges, port, lambda m: _pending(m, "settlement-approval") == 1)
        for handle in handles:
            await cli.send(handle.id, "cancel", Cancel(by="ops", reason="test over"))
        await _settled(gauges, port, lambda m: _pending(m, "settlement-approval") == 0
                       and _pending(m, "data-verification") == 0)
