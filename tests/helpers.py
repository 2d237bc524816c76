"""Small helpers shared by the tests (after sdk-python's tests/helpers)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from temporalio.client import Client, WorkflowHandle

from ingest import example_messages
from ingest.example_messages import Stamp
from schemas import keys
from schemas.protocol import Protocol
from schemas.transition import TransitionInput, TransitionState
from store import inbox
from store.encryption import FieldCipher, SealError
from workers.runtime.settings import Settings
from workflows.transition import TransitionWorkflow

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BARE_PATIENT = example_messages.Person("DOE", "JANE", "Q", "19480312", "F")
T = TypeVar("T")


def transition_of(settings: Settings, facility: str, visit: str) -> str:
    """The transition id the stack gives a facility's visit (under the settings' key)."""
    secret = settings.key_secret.get_secret_value()
    return keys.transition_id(keys.encounter_key(secret, facility, visit))


def database_dsn(settings: Settings) -> str:
    """The settings' PostgreSQL DSN in clear (a SecretStr prints as stars)."""
    assert settings.database_url is not None
    return settings.database_url.get_secret_value()


def find_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def assert_eventually(
    check: Callable[[], Awaitable[T]], *, within: float = 15.0, interval: float = 0.1
) -> T:
    """Retry an async assertion until it passes or the timeout ends (then re-raise it)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(interval)


def a03(
    *,
    facility: str | None = None,
    visit: str | None = None,
    control_id: str | None = None,
    discharged: Stamp | None = None,
    admitted: Stamp | None = None,
    disposition: str = "01",
    mrn: str = "100234",
    separator: str = "\r",
    now: datetime | None = None,
) -> bytes:
    """A bare ADT^A03 (no phone, PV1-4 or attending: PID ends at PID-8 sex, which tests
    extend) from ingest.example_messages, sent at `now` (default: the current time),
    discharged 2 hours before and admitted 4 days before that unless given. A string time is
    written as is. Fresh facility, visit and control id unless given."""
    message = example_messages.build(
        "a03",
        now=now,
        facility=facility or f"FAC{uuid.uuid4().hex[:8].upper()}",
        visit=visit or f"V{uuid.uuid4().hex[:10]}",
        mrn=mrn,
        control_id=control_id or uuid.uuid4().hex[:20],
    )
    if discharged is not None:
        message = replace(message, discharged_at=discharged)
        message = replace(message, admitted_at=_days_before(discharged, 4, message.admitted_at))
    message = replace(
        message,
        person=BARE_PATIENT,
        next_of_kin=(),
        admission_type="",
        attending="",
        hospital_service="",
        disposition=disposition,
        admitted_at=message.admitted_at if admitted is None else admitted,
    )
    return example_messages.render(message, separator).encode()


def _days_before(stamp: Stamp, days: int, otherwise: Stamp | None) -> Stamp | None:
    """`days` before a time, or before ER7 text that reads as one (same format); else
    `otherwise` (the text is empty or broken on purpose)."""
    if isinstance(stamp, datetime):
        return stamp - timedelta(days=days)
    try:
        parsed = datetime.strptime(stamp[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return otherwise
    return (parsed - timedelta(days=days)).strftime("%Y%m%d%H%M%S") + stamp[14:]


def msa(ack: str) -> list[str]:
    """The MSA segment's fields (MSA-1 at index 1)."""
    segment = next(s for s in ack.split("\r") if s.startswith("MSA"))
    return segment.split("|")


def segment(ack: str, name: str) -> str | None:
    return next((s for s in ack.split("\r") if s.startswith(name)), None)


class MllpClient:
    """A plain TCP MLLP client for tests: send frames, read reply frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> MllpClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self) -> str:
        data = await asyncio.wait_for(self.reader.readuntil(b"\x1c\x0d"), 20)
        return data.strip(b"\x0b\x1c\r").decode()

    async def exchange(self, payload: bytes) -> str:
        await self.send_raw(b"\x0b" + payload + b"\x1c\x0d")
        return await self.reply()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def with_event(raw: bytes, trigger: str, structure: str = "ADT_A01") -> bytes:
    """The same message as another trigger event (MSH-9 and EVN-1)."""
    return raw.replace(b"ADT^A03^ADT_A03", f"ADT^{trigger}^{structure}".encode()).replace(
        b"EVN|A03", f"EVN|{trigger}".encode()
    )


def with_field(raw: bytes, segment: str, number: int, value: str) -> bytes:
    """The message with SEG-number set to `value` as written (MSH-1 is the separator, so
    MSH-n is the n-1th piece); the segment is padded with empty fields as needed."""
    lines = raw.split(b"\r")
    for index, line in enumerate(lines):
        if line[:3] == segment.encode():
            fields = line.split(b"|")
            position = number - 1 if segment == "MSH" else number
            fields += [b""] * (position + 1 - len(fields))
            fields[position] = value.encode("latin-1")
            lines[index] = b"|".join(fields)
            return b"\r".join(lines)
    raise AssertionError(f"no {segment} segment")


def with_person_fields(raw: bytes) -> bytes:
    """An A03 with PID-15 language and two NK1 next of kin (one with no name)."""
    text = raw.decode().rstrip("\r")
    lines = [
        line + "|||||||SPA^Spanish" if line.startswith("PID") else line for line in text.split("\r")
    ]
    lines += [
        "NK1|1|DOE^JOHN|SPO^Spouse|1 MAIN ST^^BOSTON^MA|(617)555-0142",
        "NK1|2||EMC^Emergency contact",
    ]
    return ("\r".join(lines) + "\r").encode()


async def start_direct(
    client: Client,
    task_queue: str,
    protocol: Protocol,
    *,
    facility: str,
    discharged_at: datetime,
    tid: str | None = None,
) -> WorkflowHandle[TransitionWorkflow, TransitionState]:
    """A transition started straight on Temporal (no ADT), e.g. with a test protocol."""
    tid = tid or uuid.uuid4().hex[:24]
    return await client.start_workflow(
        TransitionWorkflow.run,
        TransitionInput(
            transition_id=tid,
            encounter_key=tid.ljust(64, "0"),
            facility=facility,
            discharged_at=discharged_at,
            protocol=protocol,
        ),
        id=keys.workflow_id(tid),
        task_queue=task_queue,
    )


async def inbox_rows_with_raw(
    pool: asyncpg.Pool, cipher: FieldCipher, raw: bytes
) -> list[dict[str, Any]]:
    """The inbox rows whose stored message is exactly `raw`, oldest first (the bytes are
    sealed: found by their content key, then compared opened)."""
    rows = await pool.fetch(
        "SELECT * FROM adt_inbox WHERE content_hash = $1 ORDER BY id", inbox.content_key(raw)
    )
    return [dict(row) for row in rows if inbox.open_raw(cipher, row) == raw]


async def inbox_rows_containing(
    pool: asyncpg.Pool, cipher: FieldCipher, needle: bytes
) -> list[dict[str, Any]]:
    """The inbox rows whose stored message contains `needle`, oldest first (a scan: sealed
    bytes cannot be searched in SQL; rows sealed under another test's key are passed over)."""
    rows = await pool.fetch("SELECT * FROM adt_inbox WHERE raw_removed_at IS NULL ORDER BY id")
    return [dict(row) for row in rows if needle in _opened(cipher, row)]


def _opened(cipher: FieldCipher, row: asyncpg.Record) -> bytes:
    try:
        return inbox.open_raw(cipher, row) or b""
    except SealError:
        return b""


def files_holding(folder: Path, needles: list[bytes]) -> dict[str, list[str]]:
    """Which files under `folder` contain which of the needles (files that vanish while
    read, a recycled WAL segment say, are skipped)."""
    found: dict[str, list[str]] = {}
    for path in folder.rglob("*"):
        try:
            data = path.read_bytes() if path.is_file() else b""
        except (FileNotFoundError, PermissionError):
            continue
        hits = [needle.decode() for needle in needles if needle in data]
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


def postgres_files_holding(data: Path, needles: list[bytes]) -> dict[str, list[str]] | None:
    """Which of PostgreSQL's table and WAL files hold which needles (after a CHECKPOINT);
    None when the data directory is not on this machine (CAREBRIDGE_DATABASE_URL elsewhere)."""
    if not data.is_dir():
        return None
    wal = files_holding(data / "pg_wal", needles)
    return {**files_holding(data / "base", needles), **{f"pg_wal/{k}": v for k, v in wal.items()}}
