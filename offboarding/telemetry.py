"""What the worker tells operators: Prometheus metrics and structured logs.

Metrics: the SDK's own (task latencies, failures, pollers...) through the runtime's
Prometheus exporter, and ours on the same endpoint: offboardings started and ended by
reason and outcome (from the workflow, replay-safe), emails sent and failed and accounts
revoked (from activities), and pending approvals with the age of the oldest (from
visibility, refreshed by the worker).

Logs: one JSON object per line with the workflow id, run id, activity and step when there
are some; message bodies and credentials are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from offboarding.client import WORKFLOW_TYPE
from offboarding.models import search_attributes as sa
from offboarding.models.gates import BUILT_IN

APPROVAL_KINDS = tuple(gate.wait for gate in BUILT_IN.values())
"""The built-in gates' waits. A playbook's gates wait under their own ids, which differ
from one company to the next, and a label per id would grow the metric without bound:
they are not counted here."""


def prometheus_runtime(bind_address: str) -> Runtime:
    return Runtime(telemetry=TelemetryConfig(
        metrics=PrometheusConfig(bind_address=bind_address, durations_as_seconds=True)))


class ApprovalGauges:
    """Counts offboardings waiting on people, and for how long the oldest has waited.

    A gauge across all workflows cannot come from any one workflow, so the worker asks
    visibility every ``every`` seconds, with counts only, never a listing: one count per
    kind of decision (visibility groups by ExecutionStatus alone), and the oldest wait
    found by halving a time window with counts (about 20 per kind, to the minute over
    two years), whatever the number of offboardings. With several workers each reports
    the same value.
    """

    RESOLUTION = timedelta(minutes=1)
    HORIZON = timedelta(days=730)

    def __init__(self, client: Client, meter: MetricMeter, task_queue: str,
                 every: float = 15.0) -> None:
        self.client = client
        self.every = every
        self.scope = (f'WorkflowType = "{WORKFLOW_TYPE}" AND ExecutionStatus = "Running" '
                      f'AND TaskQueue = "{task_queue}"')
        self.pending = meter.create_gauge(
            "offboarding_approvals_pending", "Offboardings waiting for a decision")
        self.oldest = meter.create_gauge(
            "offboarding_approval_oldest_age_seconds",
            "How long the longest-waiting decision has waited", "s")

    async def _count(self, query: str) -> int:
        return (await self.client.count_workflows(query)).count

    async def refresh(self) -> None:
        now = datetime.now(UTC)
        for kind in APPROVAL_KINDS:
            waiting = f'{self.scope} AND {sa.WAITING_FOR.name} = "{kind}"'
            count = await self._count(waiting)
            oldest = await self._oldest(waiting, now) if count else timedelta(0)
            self.pending.with_additional_attributes({"kind": kind}).set(count)
            self.oldest.with_additional_attributes({"kind": kind}).set(
                int(oldest.total_seconds()))

    async def _oldest(self, waiting: str, now: datetime) -> timedelta:
        """The longest wait: the largest age A such that someone has waited since before
        ``now - A``, by halving [0, HORIZON]."""
        def since_before(age: timedelta) -> str:
            at = (now - age).isoformat(timespec="microseconds").replace("+00:00", "Z")
            return f'{waiting} AND {sa.WAITING_SINCE.name} <= "{at}"'

        low, high = timedelta(0), self.HORIZON
        if await self._count(since_before(high)):
            return high
        while high - low > self.RESOLUTION:
            middle = low + (high - low) / 2
            if await self._count(since_before(middle)):
                low = middle
            else:
                high = middle
        return low

    async def run(self) -> None:
        log = logging.getLogger("offboarding.metrics")
        while True:
            try:
                await self.refresh()
            except Exception as err:  # visibility hiccups must not stop the worker
                log.warning("could not refresh approval gauges: %s", type(err).__name__)
            await asyncio.sleep(self.every)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with Temporal's context lifted to top-level fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        wf = getattr(record, "temporal_workflow", None)
        if isinstance(wf, dict):
            entry["workflow_id"] = wf.get("workflow_id")
            entry["run_id"] = wf.get("run_id")
        act = getattr(record, "temporal_activity", None)
        if isinstance(act, dict):
            entry["workflow_id"] = act.get("workflow_id")
            entry["activity"] = act.get("activity_type")
            entry["attempt"] = act.get("attempt")
        step = getattr(record, "step", None)
        if step:
            entry["step"] = step
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry)


def configure_logging(fmt: str) -> None:
    # The SDK appends its whole context dict to every message by default; the JSON lines
    # carry the same as fields (workflow_id, run_id, activity, attempt), once.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # The HTTP clients log every request URL at INFO, and a SCIM lookup's URL holds the
    # client's account name (?filter=userName eq ...): warnings only.
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)
