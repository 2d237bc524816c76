"""Load harness: realistic ADT traffic over MLLP against a running carebridge stack, and the
raw Temporal baseline (plain `start_workflow` of a no-op workflow) against the same server in
the same run; and a second raw figure, starts that a plain unsandboxed worker runs to a
timer (the least any workflow that waits for a deadline costs Temporal). Prints a table and
writes JSON under bench/results/.

    python -m bench.load --messages 2000 --connections 8            # starts its own stack
    python -m bench.load --rate 50 --seconds 300 --connections 4    # sustained rate
    python -m bench.load --messages 2000 --workers 2 --listeners 2  # scaled out
    python -m bench.load --messages 2000 --intake-only              # no worker, like raw

--workers N runs N worker processes (CAREBRIDGE_WORKER_PROCESSES); --listeners N adds N-1
`carebridge listener` processes beside the stack's own, on the same Temporal and PostgreSQL,
and spreads the connections across all of them. --intake-only measures what the raw baseline
does: starts no worker runs (the traffic goes to a listener whose task queue none polls).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench import cpu
from bench.results import save
from ingest import example_messages


@workflow.defn(name="BaselineNoop")
class BaselineNoop:
    @workflow.run
    async def run(self) -> None:
        return None


FIRST_TASKS_DONE = [0]  # BaselineTimer's first workflow tasks run in this process


@workflow.defn(name="BaselineTimer")
class BaselineTimer:
    """The least a durable deadline costs: one workflow task that starts one timer."""

    @workflow.run
    async def run(self) -> None:
        if not workflow.unsafe.is_replaying():
            FIRST_TASKS_DONE[0] += 1
        await workflow.sleep(timedelta(days=1))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


LOAD_PATIENT = example_messages.Person("LOAD", "TEST", "", "19500101", "F")


def message(
    trigger: str, facility: str, visit: str, mrn: str, control: str, when: datetime
) -> bytes:
    """A bare ADT (no phone, NK1 or DG1), admitted and for an A03 discharged at `when`."""
    adt = example_messages.Adt(
        trigger=trigger,
        facility=facility,
        visit=visit,
        mrn=mrn,
        control_id=control,
        sent_at=when,
        person=LOAD_PATIENT,
        admitted_at=when,
        discharged_at=when if trigger == "A03" else None,
        attending="",
        hospital_service="",
        disposition="01",
    )
    return example_messages.render(adt).encode()


def traffic(count: int, seed: int = 7) -> list[bytes]:
    """A03s across facilities and patients; ~10% A08 updates, ~3% A13 cancels, ~3% A01
    readmissions, ~5% retransmissions (same control id) and ~2% duplicate discharges."""
    rng = random.Random(seed)
    facilities = [f"HOSP{n:02d}" for n in range(12)]
    out: list[bytes] = []
    discharged: list[tuple[str, str, str]] = []
    run = uuid.uuid4().hex[:6]
    now = datetime.now(UTC) - timedelta(hours=2)
    while len(out) < count:
        roll = rng.random()
        when = now + timedelta(seconds=len(out))
        control = f"L{run}-{len(out)}"
        if discharged and roll < 0.10:
            facility, visit, mrn = rng.choice(discharged)
            out.append(message("A08", facility, visit, mrn, control, when))
        elif discharged and roll < 0.13:
            facility, visit, mrn = rng.choice(discharged)
            out.append(message("A13", facility, visit, mrn, control, when))
        elif discharged and roll < 0.16:
            facility, _, mrn = rng.choice(discharged)
            out.append(message("A01", facility, f"R{run}{len(out)}", mrn, control, when))
        elif out and roll < 0.21:
            out.append(rng.choice(out))  # a retransmission: same bytes, same control id
        elif discharged and roll < 0.23:
            facility, visit, mrn = rng.choice(discharged)
            out.append(message("A03", facility, visit, mrn, control, when))
        else:
            facility = rng.choice(facilities)
            visit, mrn = f"V{run}{len(out)}", f"M{rng.randrange(10**7)}"
            discharged.append((facility, visit, mrn))
            out.append(message("A03", facility, visit, mrn, control, when))
    return out


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    codes: dict[str, int] = field(default_factory=dict)
    errors: int = 0


async def sender(port: int, queue: asyncio.Queue[tuple[bytes, float] | None], tally: Tally) -> None:
    """Sends what the queue hands it; latency runs from the message's scheduled instant, so a
    backlog (the stack not keeping up with the rate) shows in the figures."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (item := await queue.get()) is not None:
            payload, scheduled = item
            try:
                writer.write(b"\x0b" + payload + b"\x1c\x0d")
                await writer.drain()
                reply = await asyncio.wait_for(reader.readuntil(b"\x1c\x0d"), 30)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                tally.errors += 1
                continue
            tally.latencies.append(time.perf_counter() - scheduled)
            msa = next((s for s in reply.split(b"\r") if s.startswith(b"MSA")), b"MSA|??")
            code = msa.split(b"|")[1].decode()
            tally.codes[code] = tally.codes.get(code, 0) + 1
    finally:
        writer.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


async def ingest(
    ports: list[int], messages: list[bytes], connections: int, rate: float
) -> dict[str, Any]:
    """As fast as possible (rate 0), or released on an absolute schedule of `rate` per second;
    connection n goes to listener n modulo their number."""
    queue: asyncio.Queue[tuple[bytes, float] | None] = asyncio.Queue(maxsize=connections)
    tally = Tally()
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(sender(ports[n % len(ports)], queue, tally)) for n in range(connections)
    ]
    for n, payload in enumerate(messages):
        if rate:
            release = started + n / rate
            await asyncio.sleep(max(0.0, release - time.perf_counter()))
            await queue.put((payload, release))
        else:
            await queue.put((payload, time.perf_counter()))
    for _ in tasks:
        await queue.put(None)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    ms = [x * 1000 for x in tally.latencies]
    return {
        "messages": len(messages),
        "connections": connections,
        "target_rate": rate or "max",
        "seconds": round(elapsed, 2),
        "messages_per_s": round(tally.codes.get("AA", 0) / elapsed, 1),
        "ack_codes": tally.codes,
        "errors": tally.errors,
        "ack_ms": {
            "p50": round(percentile(ms, 0.5), 1),
            "p95": round(percentile(ms, 0.95), 1),
            "p99": round(percentile(ms, 0.99), 1),
            "max": round(max(ms, default=0), 1),
            "mean": round(statistics.fmean(ms), 1) if ms else 0,
        },
    }


async def baseline(client: Client, count: int, concurrency: int) -> dict[str, Any]:
    """The raw Temporal figure: start `count` no-op workflows, `concurrency` at a time."""
    semaphore = asyncio.Semaphore(concurrency)
    queue = f"baseline-{uuid.uuid4()}"

    async def one(n: int) -> None:
        async with semaphore:
            await client.start_workflow(
                BaselineNoop.run, id=f"baseline-{queue}-{n}", task_queue=queue
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    elapsed = time.perf_counter() - started
    return {"starts": count, "concurrency": concurrency, "starts_per_s": round(count / elapsed, 1)}


async def baseline_with_worker(client: Client, count: int, concurrency: int) -> dict[str, Any]:
    """The second raw figure: start `count` BaselineTimer workflows, `concurrency` at a time,
    that one unsandboxed worker in this process runs to their timer; the rate is until the
    last first task is done."""
    queue = f"baseline-timer-{uuid.uuid4()}"
    semaphore = asyncio.Semaphore(concurrency)
    FIRST_TASKS_DONE[0] = 0

    async def one(n: int) -> None:
        async with semaphore:
            await client.start_workflow(BaselineTimer.run, id=f"{queue}-{n}", task_queue=queue)

    async with Worker(
        client,
        task_queue=queue,
        workflows=[BaselineTimer],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_cached_workflows=count,
    ):
        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(count)))
        deadline = time.monotonic() + 300
        # the count grows on the worker's workflow threads: polled, not an asyncio.Event
        while FIRST_TASKS_DONE[0] < count and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
    return {
        "starts": count,
        "concurrency": concurrency,
        "run_to_timer": FIRST_TASKS_DONE[0],
        "starts_per_s": round(FIRST_TASKS_DONE[0] / elapsed, 1),
    }


def start_stack(state: Path, workers: int) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env.update(
        CAREBRIDGE_STATE_DIR=str(state),
        CAREBRIDGE_WORKER_PROCESSES=str(workers),
        CAREBRIDGE_TEMPORAL_PORT=str(free_port()),
        CAREBRIDGE_TEMPORAL_UI_PORT=str(free_port()),
        CAREBRIDGE_API_PORT=str(free_port()),
        CAREBRIDGE_MLLP_PORT=str(free_port()),
        CAREBRIDGE_LOG_LEVEL="WARNING",
        CAREBRIDGE_LOG_FORMAT="json",
    )
    binary = Path(sys.executable).parent / "carebridge"
    log = (state / "stack.log").open("wb")
    process = subprocess.Popen([str(binary), "up"], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if b"Ctrl-C stops" in (state / "stack.log").read_bytes():
            return process, env
        if process.poll() is not None:
            break
        time.sleep(0.3)
    raise SystemExit(f"the stack did not start; see {state / 'stack.log'}")


def start_listeners(
    stack: subprocess.Popen[bytes], env: dict[str, str], count: int, task_queue: str | None
) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    """`count` more `carebridge listener` processes on the stack's Temporal and database (its
    worker's CAREBRIDGE_DATABASE_URL), each on a port of its own, ready; and their ports.
    `task_queue`: theirs instead of the stack's (one no worker polls, for --intake-only)."""
    worker = next(pid for pid in cpu.children(stack.pid) if "carebridge worker" in cpu.cmdline(pid))
    database_url = cpu.environment(worker)["CAREBRIDGE_DATABASE_URL"]
    binary = Path(sys.executable).parent / "carebridge"
    processes, ports = [], []
    for n in range(count):
        port = free_port()
        listener_env = {
            **env,
            "CAREBRIDGE_DATABASE_URL": database_url,
            "CAREBRIDGE_TEMPORAL_ADDRESS": f"127.0.0.1:{env['CAREBRIDGE_TEMPORAL_PORT']}",
            "CAREBRIDGE_MLLP_PORT": str(port),
            **({"CAREBRIDGE_TASK_QUEUE": task_queue} if task_queue else {}),
        }
        log = (Path(env["CAREBRIDGE_STATE_DIR"]) / f"listener-{n}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [str(binary), "listener"], env=listener_env, stdout=log, stderr=subprocess.STDOUT
            )
        )
        ports.append(port)
    for port, process in zip(ports, processes, strict=True):
        deadline = time.monotonic() + 60
        while not _accepts(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("a listener did not start; see listener-*.log in the state dir")
            time.sleep(0.3)
    return processes, ports


def _accepts(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    count = args.messages or int(args.rate * args.seconds)
    messages = traffic(count)
    state = Path(tempfile.mkdtemp(prefix="cb-load-"))
    process, env = start_stack(state, args.workers)
    listeners: list[subprocess.Popen[bytes]] = []
    try:
        if args.intake_only:  # one listener of its own, on a task queue no worker polls
            listeners, ports = start_listeners(process, env, 1, f"unpolled-{uuid.uuid4()}")
        else:
            listeners, ports = start_listeners(process, env, args.listeners - 1, None)
            ports = [int(env["CAREBRIDGE_MLLP_PORT"]), *ports]
        client = await Client.connect(f"127.0.0.1:{env['CAREBRIDGE_TEMPORAL_PORT']}")
        raw = await baseline(client, args.baseline, args.connections)
        raw_run = await baseline_with_worker(client, args.baseline, args.connections)
        before = cpu.snapshot(process.pid, state)
        ours = await ingest(ports, messages, args.connections, args.rate)
        ingested = cpu.snapshot(process.pid, state)
        drained = await cpu.after_drain(process.pid, state)
        used = cpu.per_message_ms(before, {**drained, "intake": ingested["intake"]}, len(messages))
        started = 0
        async for _ in client.list_workflows("WorkflowType = 'TransitionWorkflow'"):
            started += 1
    finally:
        for child in [*listeners, process]:
            child.send_signal(signal.SIGTERM)
        for child in [*listeners, process]:
            child.wait(timeout=60)
    return {
        "bench": "load",
        "at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "workers": args.workers,
        "listeners": args.listeners,
        "intake_only": args.intake_only,
        "baseline": raw,
        "baseline_with_worker": raw_run,
        "ingest": ours,
        "workflows_started": started,
        # CPU per message by process: the intake's over the ingest, the others' until the
        # worker has caught up with it (bench/cpu.py)
        "cpu_ms_per_message": used,
        "ratio_to_baseline": round(ours["messages_per_s"] / raw["starts_per_s"], 2),
        "ratio_to_baseline_with_worker": round(ours["messages_per_s"] / raw_run["starts_per_s"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=0, help="how many (0: rate x seconds)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rate", type=float, default=0, help="messages/s in all; 0 = max")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--baseline", type=int, default=1000, help="raw no-op starts")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--listeners", type=int, default=1, help="MLLP listener processes")
    parser.add_argument(
        "--intake-only",
        action="store_true",
        help="the intake alone, like the raw baseline: its transitions start on a task queue "
        "no worker polls, so none runs during the measurement",
    )
    args = parser.parse_args()
    if not args.messages and not args.rate:
        args.messages = 2000
    result = asyncio.run(run(args))
    ingest_ = result["ingest"]
    print(f"{'':28}{'value':>12}")
    print(f"{'raw Temporal starts/s':28}{result['baseline']['starts_per_s']:>12}")
    print(f"{'ingest messages/s to AA':28}{ingest_['messages_per_s']:>12}")
    print(f"{'ratio to baseline':28}{result['ratio_to_baseline']:>12}")
    print(f"{'raw starts run to a timer/s':28}{result['baseline_with_worker']['starts_per_s']:>12}")
    print(f"{'ratio to that':28}{result['ratio_to_baseline_with_worker']:>12}")
    for key in ("p50", "p95", "p99", "max"):
        print(f"{'ACK latency ' + key + ' (ms)':28}{ingest_['ack_ms'][key]:>12}")
    print(f"{'ACK codes':28}{json.dumps(ingest_['ack_codes']):>12}")
    print(f"{'transport errors':28}{ingest_['errors']:>12}")
    print(f"{'transitions started':28}{result['workflows_started']:>12}")
    for role, ms in result["cpu_ms_per_message"].items():
        print(f"{'CPU ms/message ' + role:28}{ms:>12}")
    save("load", result)


if __name__ == "__main__":
    main()
