"""Tracing with OpenTelemetry: off unless the standard ``OTEL_*`` variables ask for it
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; and never with
``OTEL_SDK_DISABLED=true``). Spans go out over OTLP/HTTP, configured by the same variables.

The SDK's ``TracingInterceptor`` on the client (the worker inherits it) traces starts,
updates, signals, workflow tasks and activities across processes; ours add the calls
activities make to the world (SMTP, SCIM). Temporal's model: a workflow's spans belong to
the trace of the call that started it, and a later update is a *link* on its
``HandleUpdate`` span, since a workflow outlives every request made to it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from temporalio.client import Interceptor

_configured = False
_provider: Any = None
"""A tracer provider given by the embedding process (``use``); else the global one."""


def use(provider: Any) -> None:
    """Trace to this provider instead of the global one (a test's in-memory exporter);
    None to go back."""
    global _provider
    _provider = provider


def wanted() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def setup(service: str) -> None:
    """Export over OTLP when the environment asks for it; otherwise nothing is sent."""
    global _configured
    if _configured or not wanted():
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({
        "service.name": os.environ.get("OTEL_SERVICE_NAME", service)}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True


def flush() -> None:
    """Send what is buffered: the CLI ends with ``os._exit``, which skips exit handlers."""
    if _configured:
        provider = trace.get_tracer_provider()
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is not None:
            force_flush()


def interceptors() -> list[Interceptor]:
    """The SDK's tracing interceptor when tracing is on (``setup`` or ``use``), else none."""
    if _provider is None and not _configured:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(trace.get_tracer("temporalio", tracer_provider=_provider))]


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[None]:
    """A span around a call to the outside world, from an activity."""
    with trace.get_tracer("offboarding", tracer_provider=_provider).start_as_current_span(
            name, kind=trace.SpanKind.CLIENT, attributes=attributes):
        yield
