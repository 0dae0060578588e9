"""Tracing (issue 14), with an in-memory exporter: one trace runs from the CLI's start of
an offboarding through its workflow to the activities it scheduled and their SMTP spans;
the CLI's later update is linked into that trace where the workflow handled it (a
workflow's spans belong to the call that started it, as Temporal's interceptor draws it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.testing import WorkflowEnvironment

from devtools.scim import ScimServer
from offboarding import tracing
from offboarding.cli.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import ApproveSettlement, Cancel
from offboarding.temporal import connect
from offboarding.worker import build_worker
from tests.helpers import client_file, wait_until, waiting_for
from tests.integration.test_portal import PATIENT


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.use(None)


async def test_one_trace_from_the_cli_to_the_smtp_call(
        dev_env: WorkflowEnvironment, settings: Settings, scim: ScimServer,
        spans: InMemorySpanExporter) -> None:
    address = dev_env.client.service_client.config.target_host
    client = await connect(address)  # with the tracing interceptor, as the CLI and worker
    cli = OffboardingClient(client, settings.task_queue)
    async with build_worker(client, settings):
        wid = await cli.start(client_file("termination", scim=scim), PATIENT)
        handle = client.get_workflow_handle(wid)
        st = await wait_until(handle, waiting_for("settlement-approval"))
        await cli.send(wid, "approve-settlement", ApproveSettlement(
            by="finance.lead@example.com", statement_hash=st.statements[-1].hash))
        await wait_until(handle, lambda s: "settlement-confirmed" in [e.key for e in s.emails])
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await cli.result(wid)

    finished = spans.get_finished_spans()
    by_name: dict[str, list[ReadableSpan]] = {}
    for s in finished:
        by_name.setdefault(s.name, []).append(s)
    [start] = by_name["StartWorkflow:ClientOffboarding"]
    trace_id = start.context.trace_id
    in_trace = [s for s in finished if s.context.trace_id == trace_id]
    names = {s.name for s in in_trace}
    assert {"RunWorkflow:ClientOffboarding", "StartActivity:send_email",
            "RunActivity:send_email", "smtp send"} <= names, names
    confirmed = [s for s in in_trace if s.name == "smtp send"
                 and (s.attributes or {}).get("email.key") == "settlement-confirmed"]
    assert len(confirmed) == 1
    parent = next(s for s in in_trace if confirmed[0].parent
                  and s.context.span_id == confirmed[0].parent.span_id)
    assert parent.name == "RunActivity:send_email"
    assert any(s.name == "scim GET Users" for s in in_trace), "SCIM calls are traced too"
    # The update: its own client span, linked from where the workflow handled it.
    [update] = by_name["StartWorkflowUpdate:approve-settlement"]
    [handled] = [s for s in in_trace if s.name == "HandleUpdate:approve-settlement"]
    assert [link.context.span_id for link in handled.links] == [update.context.span_id]
