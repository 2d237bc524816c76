"""OpenTelemetry tracing, off unless CAREBRIDGE_OTLP_ENDPOINT is set: one trace per ADT
message, from the intake through the workflow start to the workflow's activities (Temporal's
TracingInterceptor carries the context in workflow and activity headers). Span attributes are
message types and ACK codes, never identifiers."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

from workers.runtime.settings import Settings


def configure_tracing(settings: Settings, service: str) -> None:
    """Export spans over OTLP/HTTP when an endpoint is configured (once per process)."""
    if not settings.otlp_endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": f"carebridge-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(settings.otlp_endpoint)))
    trace.set_tracer_provider(provider)


def tracing_interceptors(settings: Settings) -> Sequence[Interceptor]:
    """Temporal's tracing interceptor for every client (and so every worker) when tracing."""
    return [TracingInterceptor()] if settings.otlp_endpoint else []


def shutdown_tracing() -> None:
    """Export what is buffered before the process ends."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
