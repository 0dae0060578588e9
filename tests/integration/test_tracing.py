"""Tracing (issue 14), with the SDK's OpenTelemetry plugin and an in-memory exporter: one
trace runs from the CLI's update (an approval) through the workflow to the activity the
approval released and its SMTP span; the start's own trace holds the work before it. Then
the same across processes, exported over OTLP/HTTP to a real receiver."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.contrib.opentelemetry import create_tracer_provider
from temporalio.testing import WorkflowEnvironment

from devtools.mailcapture import MailCapture
from devtools.procs import start_logged, stop
from devtools.scim import ScimServer
from offboarding import tracing
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import ApproveSettlement, Cancel
from offboarding.portal.app import build_app
from offboarding.temporal import connect
from offboarding.worker import build_worker
from tests.conftest import ROOT
from tests.helpers import (
    client_file,
    eventually,
    links_to,
    reply,
    wait_until,
    waiting_for,
    worker_env,
)
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


def chains(finished: Sequence[ReadableSpan]) -> Callable[[ReadableSpan], list[str]]:
    by_id = {s.context.span_id: s for s in finished}

    def chain(span: ReadableSpan) -> list[str]:
        """The span's name and its ancestors', up to the trace's root."""
        names = [span.name]
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names
    return chain


def confirmation(finished: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """The SMTP span of the mail an approval releases."""
    return [s for s in finished if s.name == "smtp send"
            and (s.attributes or {}).get("email.key") == "settlement-confirmed"]


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
    chain = chains(finished)
    [confirmed] = confirmation(finished)
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


async def test_an_approval_through_the_portal_is_traced_from_the_approvers_request(
        dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture,
        scim: ScimServer, spans: InMemorySpanExporter) -> None:
    client = await connect(dev_env.client.service_client.config.target_host)
    cli = OffboardingClient(client, settings.task_queue)
    portal = str(settings.portal_url).rstrip("/")
    async with build_worker(client, settings), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(settings, client)),
            base_url=portal) as http:
        cf = client_file("termination", scim=scim)
        wid = await cli.start(cf, PATIENT)
        handle = client.get_workflow_handle(wid)
        await wait_until(handle, waiting_for("settlement-approval"))
        [link] = links_to(mail, cf.approvers.finance[0], "final settlement v1")
        page, token = link.removeprefix(portal).rsplit("/", 1)
        decided = await http.post(page + "/decide", data={"token": token,
                                                          "decision": "approve"})
        assert decided.status_code == 303
        await wait_until(handle, lambda s: "settlement-confirmed" in [e.key for e in s.emails])
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await cli.result(wid)
    finished = spans.get_finished_spans()
    [confirmed] = confirmation(finished)
    assert chains(finished)(confirmed)[-3:] == [
        "HandleUpdate:approve-settlement", "StartWorkflowUpdate:approve-settlement",
        "portal decide"]


class OtlpReceiver:
    """A real OTLP/HTTP endpoint (what a collector listens on): it decodes each
    ``POST /v1/traces`` and keeps the spans with the service that sent them."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Span]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                for batch in request.resource_spans:
                    service = next(a.value.string_value for a in batch.resource.attributes
                                   if a.key == "service.name")
                    receiver.spans += [(service, span) for scoped in batch.scope_spans
                                       for span in scoped.spans]
                reply(self, 200, "application/x-protobuf",
                      ExportTraceServiceResponse().SerializeToString())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def named(self, name: str, **attributes: str) -> list[tuple[str, Span]]:
        return [(service, s) for service, s in self.spans if s.name == name and all(
            any(a.key == k and a.value.string_value == v for a in s.attributes)
            for k, v in attributes.items())]


async def test_the_worker_and_the_cli_export_one_trace_over_otlp(
        dev_env: WorkflowEnvironment, settings: Settings, scim: ScimServer,
        tmp_path: Path) -> None:
    """The processes as ops run them, configured by the standard OTEL_* variables only: the
    CLI's approval and the worker's SMTP call reach a collector as one trace."""
    otlp = OtlpReceiver()
    address = dev_env.client.service_client.config.target_host
    env = {**worker_env(settings, address), "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
           "OTEL_BSP_SCHEDULE_DELAY": "100"}
    worker = await asyncio.to_thread(start_logged, [sys.executable, "worker.py"],
                                     tmp_path / "worker.log", "worker polling", cwd=ROOT,
                                     env=env)
    try:
        cli = OffboardingClient(dev_env.client, settings.task_queue)
        wid = await cli.start(client_file("termination", scim=scim), PATIENT)
        handle = dev_env.client.get_workflow_handle(wid)
        st = await wait_until(handle, waiting_for("settlement-approval"))
        approve = await asyncio.to_thread(subprocess.run, [
            sys.executable, "starter.py", "approve-settlement", wid, "--by",
            "finance.lead@example.com", "--statement", st.statements[-1].short_hash],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert approve.returncode == 0, approve.stderr

        async def smtp_span() -> list[tuple[str, Span]]:
            return otlp.named("smtp send", **{"email.key": "settlement-confirmed"})

        # The worker exports in batches: wait for the span the approval released.
        await eventually(smtp_span, what="the settlement-confirmed smtp span at the collector",
                         show=lambda _: "spans exported: "
                         + ", ".join(sorted({s.name for _, s in otlp.spans})))
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await cli.result(wid)  # ended before its worker stops
    finally:
        stop(worker)
        otlp.server.shutdown()
    [(cli_service, update)] = otlp.named("StartWorkflowUpdate:approve-settlement")
    [(worker_service, smtp)] = otlp.named("smtp send", **{"email.key": "settlement-confirmed"})
    assert (cli_service, worker_service) == ("offboarding-cli", "offboarding-worker")
    assert smtp.trace_id == update.trace_id and not update.parent_span_id
