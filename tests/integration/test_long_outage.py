"""Failure that lasts, on the time-skipping server with the real PostgreSQL and the production
worker in a process of its own: the webhook answers 410 for a simulated day, then PostgreSQL
is unreachable for 48 simulated hours while deadlines pass, and the worker is killed with
SIGKILL once in the middle of it. At the end every transition has closed at its period end
with its outcome, no history grew past 2,000 events, nothing was delivered twice, every
notice that did not go out is in the undelivered list (and only those), and the projection
equals Temporal's state."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import TaskQueueKind, WorkflowTaskFailedCause
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.api.workflowservice.v1 import (
    PollWorkflowTaskQueueRequest,
    RespondWorkflowTaskFailedRequest,
)
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from schemas import keys
from schemas.protocol import RiskTier
from schemas.protocol_library import ProtocolLibrary, load_library
from schemas.risk import RiskAssessment
from schemas.transition import StepStatus, TransitionInput, TransitionState, TransitionStatus
from store import notifications
from tests.conftest import TEST_KEYRING, TEST_KEYS
from tests.helpers import assert_eventually
from tests.integration.conftest import Hooks, Mailbox, channel_receivers, copy_protocols
from tests.integration.tcp_proxy import TcpProxy
from tests.workflow.support import advance_to, next_weekday
from workers.runtime.embedded import find_binary
from workers.runtime.settings import Settings
from workers.runtime.temporal import data_converter, ensure_search_attributes
from workflows.transition import TransitionWorkflow

ROOT = Path(__file__).resolve().parents[2]
KINDS = [
    (protocol, tier)
    for protocol in ("discharge-home", "discharge-home-health")
    for tier in (RiskTier.STANDARD, RiskTier.HIGH)
]
PER_KIND = 3
STEP = timedelta(hours=4)  # how far each env.sleep skips: the test server answers in time
MAX_HISTORY = 2000
Handle = WorkflowHandle[TransitionWorkflow, TransitionState]


@pytest_asyncio.fixture
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of its own, with the session's encryption key (the worker process
    decrypts what the test starts)."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(TEST_KEYRING),
        test_server_existing_path=find_binary("temporal-test-server"),
    )
    await ensure_search_attributes(env.client, "default")
    yield env
    await env.shutdown()


@pytest_asyncio.fixture
async def database_proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy.for_url(database_url)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest_asyncio.fixture
async def temporal_proxy(skipping_env: WorkflowEnvironment) -> AsyncIterator[TcpProxy]:
    """The worker reaches the test server through this, so the test can learn its sticky
    queue (see release_sticky_tasks)."""
    host, port = skipping_env.client.service_client.config.target_host.rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    yield proxy
    await proxy.close()


@dataclass
class WorkerProcess:
    """The production worker in a process: started, SIGKILLed, started again."""

    environment: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def spawn(self) -> Path:
        self.starts += 1
        log = self.log.with_suffix(f".{self.starts}.log")
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.worker_process"],
                cwd=ROOT,
                env=self.environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        return log

    async def start(self) -> None:
        log = self.spawn()

        async def polling() -> None:
            assert self.process is not None and self.process.poll() is None, log.read_text()
            assert "worker polling" in log.read_text()

        await assert_eventually(polling, within=60)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


def worker_environment(settings: Settings, temporal: str, database_url: str) -> dict[str, str]:
    assert settings.webhook_url and settings.webhook_secret
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    environment.update(
        CAREBRIDGE_TEMPORAL_ADDRESS=temporal,
        CAREBRIDGE_DATABASE_URL=database_url,
        CAREBRIDGE_TASK_QUEUE=settings.task_queue,
        CAREBRIDGE_CODEC_KEYS=TEST_KEYS,
        CAREBRIDGE_PROTOCOLS_DIR=str(settings.protocols_dir),
        CAREBRIDGE_SMTP_HOST=str(settings.smtp_host),
        CAREBRIDGE_SMTP_PORT=str(settings.smtp_port),
        CAREBRIDGE_WEBHOOK_URL=settings.webhook_url,
        CAREBRIDGE_WEBHOOK_SECRET=settings.webhook_secret.get_secret_value(),
        CAREBRIDGE_LOG_LEVEL="WARNING",
    )
    return environment


def recipients_for_every_role(site: dict[str, Any]) -> None:
    site["notifications"]["recipients"] = {
        role: [f"{role}@example.test"]
        for role in ("care_manager", "supervisor", "medical_director", "pharmacist", "nurse")
    }


async def start_transitions(
    env: WorkflowEnvironment, library: ProtocolLibrary, queue: str, discharged: datetime
) -> list[Handle]:
    site = library.site
    handles = []
    for protocol, tier in KINDS:
        for _ in range(PER_KIND):
            tid = uuid.uuid4().hex[:24]
            handle = await env.client.start_workflow(
                TransitionWorkflow.run,
                TransitionInput(
                    transition_id=tid,
                    encounter_key=tid.ljust(64, "0"),
                    facility="GENHOSP",
                    discharged_at=discharged,
                    received_at=discharged + timedelta(hours=2),
                    protocol=library.latest(protocol),
                    risk=RiskAssessment(lace=14 if tier == RiskTier.HIGH else 5, tier=tier),
                    calendar=site.calendar_for("GENHOSP"),
                    policy=site.policy,
                    channel_transports=dict(site.notifications.channels),
                ),
                id=keys.workflow_id(tid),
                task_queue=queue,
            )
            handles.append(handle)
    return handles


async def sleep_until(env: WorkflowEnvironment, instant: datetime) -> None:
    """Skip the server's clock to `instant`, a step at a time. Each step returns once the
    workers have done what fell due in it; after the kill that includes waiting for the dead
    worker's workflow tasks to time out, so the call may take longer than the RPC default."""
    while (now := await env.get_current_time()) < instant:
        request = SleepRequest()
        request.duration.FromTimedelta(min(STEP, instant - now))
        await env.client.test_service.unlock_time_skipping_with_sleep(
            request, timeout=timedelta(minutes=5)
        )


async def quiet(handles: list[Handle]) -> None:
    """Wait for a moment when no workflow task or activity is out to the worker: the
    time-skipping server cannot time out a task whose worker died (its clock is locked while
    the task is out), so the kill comes between tasks. test_faults kills a worker in the
    middle of its tasks, on the dev server."""
    seen: list[list[int]] = []
    for _ in range(120):
        described = [await h.describe() for h in handles]
        lengths = [d.raw_description.workflow_execution_info.history_length for d in described]
        if any(d.raw_description.pending_activities for d in described):
            seen = []
        else:
            seen.append(lengths)
        # Unchanged for 4 s: longer than a local activity retries inside one workflow task
        # (backoffs under 2 s) before its next retry waits on a timer.
        if len(seen) >= 5 and all(s == lengths for s in seen[-5:]):
            return
        await asyncio.sleep(1)
    raise AssertionError("the worker never went quiet")


def watch_for_sticky_queue(proxy: TcpProxy, worker: WorkerProcess) -> None:
    """A worker's sticky queue is named `<identity>-<uuid>` (identity `pid@host`); it is
    in the worker's polls and in every workflow task it completes."""
    assert worker.process is not None
    identity = f"{worker.process.pid}@{socket.gethostname()}"
    proxy.watch = re.compile(re.escape(identity.encode()) + rb"-[0-9a-f]{32}")


async def release_sticky_tasks(env: WorkflowEnvironment, sticky: str, queue: str) -> None:
    """Do what a real server does when a dead worker's sticky queue is not polled (its
    schedule-to-start timeout): send each of its workflows' tasks to the shared queue. The
    time-skipping server never does, so the test takes them from the dead queue and fails
    them with RESET_STICKY_TASK_QUEUE, which moves the next attempt to the shared queue."""
    service = env.client.workflow_service
    poll = PollWorkflowTaskQueueRequest(
        namespace=env.client.namespace,
        task_queue=TaskQueue(
            name=sticky, kind=TaskQueueKind.TASK_QUEUE_KIND_STICKY, normal_name=queue
        ),
        identity="dead-worker-sticky-release",
    )
    while True:
        task = await service.poll_workflow_task_queue(poll, timeout=timedelta(seconds=70))
        if task.task_token:
            await service.respond_workflow_task_failed(
                RespondWorkflowTaskFailedRequest(
                    namespace=env.client.namespace,
                    task_token=task.task_token,
                    cause=WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_STICKY_TASK_QUEUE,
                    identity=poll.identity,
                )
            )


def instants(states: list[TransitionState]) -> Iterator[tuple[str, datetime]]:
    """Every planned deadline: (channel, instant) of each escalation level."""
    for state in states:
        for step in state.steps:
            for escalation in step.escalations:
                yield escalation.channel, escalation.at


@pytest.mark.timeout(900)
async def test_a_long_outage_closes_every_transition_with_nothing_lost_or_doubled(
    skipping_env: WorkflowEnvironment,
    database_proxy: TcpProxy,
    temporal_proxy: TcpProxy,
    database_url: str,
    pool: asyncpg.Pool,
    settings: Settings,
    tmp_path: Path,
) -> None:
    env = skipping_env
    protocols = copy_protocols(tmp_path, recipients_for_every_role)
    library = load_library(protocols)
    monday = next_weekday(await env.get_current_time(), 0, time(7, 0))
    await advance_to(env, monday + timedelta(hours=2))
    async with channel_receivers(settings.model_copy(update={"protocols_dir": protocols})) as (
        mine,
        mailbox,
        hooks,
    ):
        hooks.fail_first = False
        worker = WorkerProcess(
            worker_environment(
                mine, f"127.0.0.1:{temporal_proxy.port}", database_proxy.url_through(database_url)
            ),
            tmp_path / "worker",
        )
        await worker.start()
        watch_for_sticky_queue(temporal_proxy, worker)
        releasing: asyncio.Task[None] | None = None
        try:
            handles = await start_transitions(env, library, mine.task_queue, monday)
            ids = [h.id.removeprefix(keys.workflow_id("")) for h in handles]

            async def all_projected() -> None:
                count = await pool.fetchval(
                    "SELECT count(*) FROM transitions WHERE transition_id = ANY($1::text[])", ids
                )
                assert count == len(ids)

            await assert_eventually(all_projected, within=60)
            planned = [await h.query(TransitionWorkflow.get_state) for h in handles]
            first_page = min(at for channel, at in instants(planned) if channel == "page")
            gone_from, gone_until = (
                first_page - timedelta(hours=12),
                first_page + timedelta(hours=12),
            )
            outage_until = gone_until + timedelta(hours=48)
            due_in_outage = [at for _, at in instants(planned) if gone_until <= at < outage_until]
            assert due_in_outage, "the outage must cover deadlines"

            await sleep_until(env, gone_from)
            hooks.status = 410  # the paging service is gone for a day
            await sleep_until(env, gone_until)
            hooks.status = 204
            database_proxy.cut()  # PostgreSQL unreachable for 48 hours
            await sleep_until(env, gone_until + timedelta(hours=20))
            await quiet(handles)
            [sticky] = temporal_proxy.seen
            worker.kill()
            await worker.start()  # comes up while the database is still away
            releasing = asyncio.create_task(release_sticky_tasks(env, sticky, mine.task_queue))
            await sleep_until(env, outage_until)
            database_proxy.restore()
            period_end = max(state.period_ends_at for state in planned if state.period_ends_at)
            await sleep_until(env, period_end + timedelta(hours=1))
            finals = [await h.result() for h in handles]
            histories = [await h.fetch_history() for h in handles]
        finally:
            worker.stop()
            if releasing is not None:
                releasing.cancel()
        assert database_proxy.refused > 0  # the worker did try the database while it was away
        longest = check_closed_at_period_end(finals, histories)
        check_nothing_delivered_twice(mailbox, hooks)
        listed, in_outage = await check_undelivered_listed(pool, ids, gone_until, outage_until)
        await check_projection_equals_temporal(pool, finals)
        print(  # the figures behind the note
            f"long outage: {len(ids)} transitions closed; longest history {longest} events; "
            f"{listed} undelivered listed ({hooks.answers.count(410)} pages refused with 410, "
            f"{in_outage} notices failed while PostgreSQL was away); "
            f"{database_proxy.refused} database connections refused"
        )


def check_closed_at_period_end(
    finals: list[TransitionState], histories: list[WorkflowHistory]
) -> int:
    for final, history in zip(finals, histories, strict=True):
        assert final.status == TransitionStatus.COMPLETED, final.transition_id
        assert final.outcome is not None and final.outcome.reason == "transition period ended"
        closed = history.events[-1]
        assert closed.HasField("workflow_execution_completed_event_attributes")
        assert final.period_ends_at is not None
        late = closed.event_time.ToDatetime(tzinfo=UTC) - final.period_ends_at
        assert timedelta(0) <= late < timedelta(minutes=5), late
    lengths = [len(history.events) for history in histories]
    assert max(lengths) < MAX_HISTORY, lengths
    return max(lengths)


def check_nothing_delivered_twice(mailbox: Mailbox, hooks: Hooks) -> None:
    mails = Counter(message["Message-ID"] for message in mailbox.messages)
    assert mails and max(mails.values()) == 1, mails.most_common(3)
    accepted = Counter(
        headers["idempotency-key"]
        for (headers, _), status in zip(hooks.calls, hooks.answers, strict=True)
        if status < 300
    )
    assert accepted and max(accepted.values()) == 1, accepted.most_common(3)
    assert 410 in hooks.answers


async def check_undelivered_listed(
    pool: asyncpg.Pool, ids: list[str], outage_from: datetime, outage_until: datetime
) -> tuple[int, int]:
    """Every e-mail or page with notification_failed on its timeline is an undelivered row
    with its reason, and every undelivered row of these transitions has one; a worklist
    notice that could not be recorded while the database was away is in the outbox now.
    Some failed on the 410, some because the database was away."""
    failed = await pool.fetch(
        "SELECT transition_id, step_id, at, detail FROM transition_events "
        "WHERE transition_id = ANY($1::text[]) AND kind = 'notification_failed'",
        ids,
    )
    on_timeline = set()
    for row in failed:
        match = re.match(r"level (\d+) via (\w+)", row["detail"])
        assert match, row["detail"]
        on_timeline.add((row["transition_id"], row["step_id"], int(match[1]), match[2]))
    listed = [n for n in await notifications.undelivered(pool, 500) if n["transition_id"] in ids]
    in_list = {(n["transition_id"], n["step_id"], n["level"], n["channel"]) for n in listed}
    in_app = {key for key in on_timeline if key[3] == "worklist"}
    assert in_list and in_list == on_timeline - in_app
    assert all(n["failure"] for n in listed)
    assert "webhook answered 410" in {n["failure"] for n in listed}
    during_outage = [r for r in failed if outage_from <= r["at"] < outage_until]
    assert during_outage and all("410" not in r["detail"] for r in during_outage)
    recorded = {
        (r["transition_id"], r["step_id"], r["level"], r["channel"])
        for r in await pool.fetch(
            "SELECT transition_id, step_id, level, channel FROM notifications "
            "WHERE transition_id = ANY($1::text[]) AND delivered_at IS NOT NULL",
            ids,
        )
    }
    assert in_app and in_app <= recorded  # on the worklist after all
    return len(listed), len(during_outage)


async def check_projection_equals_temporal(
    pool: asyncpg.Pool, finals: list[TransitionState]
) -> None:
    for final in finals:
        row = await pool.fetchrow(
            "SELECT status, version, steps, outcome, current_step, next_due_at FROM transitions "
            "WHERE transition_id = $1",
            final.transition_id,
        )
        assert row is not None
        assert (row["status"], row["version"]) == (final.status.value, final.version)
        assert row["current_step"] is None and row["next_due_at"] is None
        steps = {s["step_id"]: s["status"] for s in _json(row["steps"])}
        assert steps == {s.step_id: s.status.value for s in final.steps}
        assert final.outcome is not None
        assert _json(row["outcome"]) == final.outcome.model_dump(mode="json")
        closed = await pool.fetchval(
            "SELECT count(*) FROM transition_events WHERE transition_id = $1 AND kind = 'closed'",
            final.transition_id,
        )
        assert closed == 1
        assert StepStatus.PENDING.value not in steps.values()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
