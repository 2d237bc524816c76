"""OpenTelemetry: one ADT message is one trace, from the intake's span through the workflow
start to the workflow run and its activities, on the real dev server and PostgreSQL."""

from __future__ import annotations

import uuid

import asyncpg
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.testing import WorkflowEnvironment

from tests.helpers import a03, assert_eventually
from tests.integration.conftest import assert_projected
from workers.runtime.services import Services
from workers.runtime.settings import Settings
from workers.runtime.temporal import connect
from workers.worker import build_worker


async def test_one_adt_message_is_one_trace_through_workflow_and_activities(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process: only this test sets it
    traced = settings.model_copy(
        update={
            "temporal_address": temporal_env.client.service_client.config.target_host,
            "otlp_endpoint": "http://127.0.0.1:4318/v1/traces",  # enables the interceptor
        }
    )
    client = await connect(traced)
    services = Services.build(traced, pool, client)
    facility = f"TRC{uuid.uuid4().hex[:4].upper()}"
    async with build_worker(client, pool, traced):
        result = await services.intake.handle(a03(facility=facility))
        assert result.code.value == "AA", result.ack
        await assert_projected(pool, facility, 1, within=60)

        def spans_of_the_message() -> list[ReadableSpan]:
            finished = exporter.get_finished_spans()
            root = next(s for s in finished if s.name == "adt.message")
            assert root.context is not None
            return [
                s for s in finished if s.context and s.context.trace_id == root.context.trace_id
            ]

        async def traced_through() -> None:
            names = {span.name for span in spans_of_the_message()}
            expected = {
                "adt.message",
                "StartWorkflow:TransitionWorkflow",
                "RunWorkflow:TransitionWorkflow",
                "RunActivity:plan_transition",
                "RunActivity:record_transition",
            }
            assert expected <= names, names

        await assert_eventually(traced_through, within=30, interval=0.5)
    root = next(s for s in spans_of_the_message() if s.name == "adt.message")
    assert root.attributes is not None
    assert dict(root.attributes) == {"hl7.event": "A03", "hl7.ack": "AA"}  # no identifiers
