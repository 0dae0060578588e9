"""Tracing with OpenTelemetry: off unless the standard ``OTEL_*`` variables ask for it
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; and never with
``OTEL_SDK_DISABLED=true``). Spans go out over OTLP/HTTP, configured by the same variables.

The SDK's ``OpenTelemetryPlugin`` on the client (the worker inherits it) carries the trace
context through starts, updates, signals, workflows and activities across processes, with
a span for each; ours add the calls activities make to the world (SMTP, SCIM). Its tracer
provider must be the replay-safe one the SDK builds (``create_tracer_provider``), so that
a workflow's spans get the same ids when it is replayed and are exported once. The work a
person's decision releases is traced under that decision (``workflows/causes.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import trace
from temporalio.plugin import SimplePlugin

if TYPE_CHECKING:
    from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider

_on = False


def install(provider: ReplaySafeTracerProvider | None) -> None:
    """Trace to this provider (a test's in-memory exporter), made the global one as the
    SDK's plugin requires; None turns tracing off again. OpenTelemetry lets a process set
    its global provider once, so a process installs one provider at most."""
    global _on
    if provider is not None and trace.get_tracer_provider() is not provider:
        trace.set_tracer_provider(provider)
    _on = provider is not None


def wanted() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def setup(service: str) -> None:
    """Export over OTLP when the environment asks for it; otherwise nothing is sent."""
    if _on or not wanted():
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from temporalio.contrib.opentelemetry import create_tracer_provider

    provider = create_tracer_provider(resource=Resource.create({
        "service.name": os.environ.get("OTEL_SERVICE_NAME", service)}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    install(provider)


def flush() -> None:
    """Send what is buffered: the CLI ends with ``os._exit``, which skips exit handlers."""
    if _on:
        force_flush = getattr(trace.get_tracer_provider(), "force_flush", None)
        if force_flush is not None:
            force_flush()


def plugins() -> list[SimplePlugin]:
    """The SDK's OpenTelemetry plugin when tracing is on, with its own spans for each
    Temporal call (start, update, workflow, activity); else none."""
    if not _on:
        return []
    from temporalio.contrib.opentelemetry import OpenTelemetryPlugin

    return [OpenTelemetryPlugin(add_temporal_spans=True)]


@contextmanager
def span(name: str, attributes: dict[str, str],
         kind: trace.SpanKind = trace.SpanKind.CLIENT) -> Iterator[None]:
    """A span around a call to the outside world (from an activity), or around a request
    a person made (``SERVER``: the portal's decisions, where an approval's trace begins)."""
    if not _on:
        yield
        return
    with trace.get_tracer("offboarding").start_as_current_span(
            name, kind=kind, attributes=attributes):
        yield
