"""CPU seconds a running stack's processes used, by role, read from /proc (Linux): what a
message costs on each busy process, a figure other load on the machine changes far less
than a rate (bench.load divides the ingest's share by the messages sent).

The worker's and the others' share is read once the worker is idle again (`after_drain`).

Roles: `intake` (the `carebridge up` process: listener, intake, API; and any `carebridge
listener` this process started beside it), `worker` (its
`carebridge worker` children), `temporal` (the dev server) and `postgres` (the embedded
server whose data folder is under the stack's state folder, and its backends).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a live process, None once it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def environment(pid: int) -> dict[str, str]:
    """A process's environment (one of this user's)."""
    raw = (PROC / str(pid) / "environ").read_bytes()
    return dict(entry.decode().partition("=")[::2] for entry in raw.split(b"\0") if entry)


def children(pid: int) -> list[int]:
    """The live processes whose parent is `pid`."""
    stats = {int(p.name): _stat(int(p.name)) for p in PROC.iterdir() if p.name.isdigit()}
    return [child for child, stat in stats.items() if stat is not None and stat[0] == pid]


def _role(pid: int, root: int, parents: dict[int, int], state: str) -> str | None:
    command = cmdline(pid)
    if pid == root:
        return "intake"
    if "postgres" in command and state in command:
        return "postgres"
    parent = parents.get(pid)
    if parent is not None and parent != root and "postgres" in cmdline(parent):
        return "postgres" if state in cmdline(parent) else None
    if parent == os.getpid() and "carebridge listener" in command:
        return "intake"  # a listener bench.load added beside the stack's own
    if parent != root:
        return None
    if "carebridge worker" in command:
        return "worker"
    if "temporal" in command:
        return "temporal"
    return None


def snapshot(root: int, state: Path) -> dict[str, float]:
    """CPU seconds so far of the stack rooted at process `root` with state folder `state`."""
    stats = {int(p.name): _stat(int(p.name)) for p in PROC.iterdir() if p.name.isdigit()}
    live = {pid: stat for pid, stat in stats.items() if stat is not None}
    parents = {pid: parent for pid, (parent, _) in live.items()}
    used: dict[str, float] = {}
    for pid, (_, seconds) in live.items():
        role = _role(pid, root, parents, str(state))
        if role is not None:
            used[role] = used.get(role, 0.0) + seconds
    return used


def per_message_ms(
    before: dict[str, float], after: dict[str, float], messages: int
) -> dict[str, float]:
    """Milliseconds of CPU per message by role between two snapshots."""
    return {
        role: round((after.get(role, 0.0) - before.get(role, 0.0)) * 1000 / max(messages, 1), 2)
        for role in sorted(set(before) | set(after))
    }


async def after_drain(
    root: int, state: Path, *, idle_cores: float = 0.1, limit_seconds: float = 180
) -> dict[str, float]:
    """A snapshot once the worker has done the work it was given: its CPU grew by less
    than `idle_cores` of a core over a second (or `limit_seconds` passed). A saturated
    worker lags the ingest, so its CPU up to the ingest's end would only measure the window."""
    deadline = time.monotonic() + limit_seconds
    last = snapshot(root, state)
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        now = snapshot(root, state)
        if now.get("worker", 0.0) - last.get("worker", 0.0) < idle_cores:
            return now
        last = now
    return last
