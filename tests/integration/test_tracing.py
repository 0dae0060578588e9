"""Tracing (issue 14), with the SDK's OpenTelemetry plugin and an in-memory exporter: one
trace runs from the CLI's update (an approval) through the workflow to the activity the
approval released and its SMTP span; the start's own trace holds the work before it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.contrib.opentelemetry import create_tracer_provider
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

# OpenTelemetry takes one global tracer provider per process, and the plugin wants it.
EXPORTER = InMemorySpanExporter()
PROVIDER = create_tracer_provider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    EXPORTER.clear()
    tracing.install(PROVIDER)
    yield EXPORTER
    tracing.install(None)


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
    by_id = {s.context.span_id: s for s in finished}

    def chain(span: ReadableSpan) -> list[str]:
        """The span's name and its ancestors', up to the trace's root."""
        names = [span.name]
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names

    [confirmed] = [s for s in finished if s.name == "smtp send"
                   and (s.attributes or {}).get("email.key") == "settlement-confirmed"]
    assert chain(confirmed) == [
        "smtp send", "RunActivity:send_email", "StartActivity:send_email",
        "HandleUpdate:approve-settlement", "StartWorkflowUpdate:approve-settlement"]
    [update] = [s for s in finished if s.name == "StartWorkflowUpdate:approve-settlement"]
    assert update.parent is None, "the CLI's update is the root of its trace"
    # Before the approval, the work belongs to the start's trace: the statement and the
    # SCIM calls of the revocation that a termination runs at once.
    [start] = [s for s in finished if s.name == "StartWorkflow:ClientOffboarding"]
    in_start = [s for s in finished if s.context.trace_id == start.context.trace_id]
    statement = [s for s in in_start if s.name == "smtp send"
                 and (s.attributes or {}).get("email.key") == "statement-v1"]
    assert len(statement) == 1
    assert chain(statement[0])[-1] == "StartWorkflow:ClientOffboarding"
    assert any(s.name == "scim GET Users" for s in in_start), "SCIM calls are traced too"
