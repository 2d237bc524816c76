"""The ADT inbox encrypted at rest (issue 17 item 2): a message reaches PostgreSQL only sealed
(not in the table, not in the data directory's files), still reads in the message browser and
reprocesses; rows stored in plaintext before are sealed by `migrate`; retention removes the
raw bytes of closed transitions' messages and keeps open ones, and a retransmission still gets
its stored ACK; a key rotation moves every row to the new key."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from schemas.maintenance import SweepReport
from store import inbox, security
from store.encryption import FieldCipher, SealError
from store.migrate import migrate
from tests.conftest import TEST_KEYS
from tests.helpers import (
    a03,
    assert_eventually,
    files_holding,
    inbox_rows_containing,
    msa,
    transition_of,
    with_event,
    with_field,
)
from tests.integration.conftest import RunningStack, run_cli
from workers.api.auth import Role
from workers.runtime.services import field_cipher_for
from workers.runtime.settings import Settings
from workflows.sweep import SweepWorkflow

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}
Bearer = Callable[[Role], Awaitable[dict[str, str]]]


class Patient:
    """A patient whose name, MRN, birth date and phone appear nowhere else in the run."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex
        letters = "".join(chr(ord("A") + int(c, 16) % 26) for c in tag[:8])
        digits = str(int(tag[8:16], 16) % 10**7).zfill(7)
        self.family = f"QUILLFEATHER{letters}"
        self.mrn = f"MRN{tag[16:26].upper()}"
        self.birth_date = "19230817"
        self.phone = f"(413){digits[:3]}-{digits[3:]}"
        self.facility = f"SEAL{tag[26:32].upper()}"

    def a03(self, visit: str = "V-SEALED") -> bytes:
        raw = a03(facility=self.facility, visit=visit, mrn=self.mrn)
        raw = with_field(raw, "PID", 5, f"{self.family}^THEODORA^M")
        raw = with_field(raw, "PID", 7, self.birth_date)
        return with_field(raw, "PID", 13, f"{self.phone}^PRN^PH")

    @property
    def identifying(self) -> list[bytes]:
        """What the data directory must not hold in clear: name, MRN, phone."""
        return [self.family.encode(), self.mrn.encode(), self.phone.encode()]


@pytest_asyncio.fixture
async def bearer(stack: RunningStack) -> Bearer:
    """Authorization headers of a fresh API token of a role (sent explicitly, so the tests
    hold whether or not development requires authentication)."""

    async def headers(role: Role) -> dict[str, str]:
        _, token = await security.create_token(
            stack.services.pool, name=f"at-rest {role}", subject=f"rest.{role}", role=role.value
        )
        return {"Authorization": f"Bearer {token}"}

    return headers


async def send(stack: RunningStack, bearer: Bearer, raw: bytes) -> str:
    answer = await stack.http.post(
        "/adt", content=raw, headers={**ER7, **await bearer(Role.INTEGRATION)}
    )
    assert answer.status_code == 200, answer.text
    return answer.text


async def planned(stack: RunningStack, bearer: Bearer, tid: str) -> None:
    headers = await bearer(Role.OPERATOR)

    async def ready() -> None:
        state = await stack.http.get(f"/transitions/{tid}", headers=headers)
        assert state.status_code == 200 and state.json()["period_ends_at"]

    await assert_eventually(ready)


async def row_of(pool: asyncpg.Pool, control_id: str) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT * FROM adt_inbox WHERE control_id = $1 AND reprocessed_from IS NULL", control_id
    )
    assert row is not None, control_id
    return row


def control_id_of(raw: bytes) -> str:
    return raw.split(b"\r")[0].split(b"|")[9].decode()


def scan_data_directory(data: Path, patient: Patient) -> tuple[bool, dict[str, list[str]]]:
    """Whether the tables hold the patient's facility code (metadata, in clear: proof the scan
    reads them), and which files of the tables and the WAL hold the patient's PHI."""
    if not data.is_dir():
        pytest.skip("the PostgreSQL data directory is not on this machine")
    tables = files_holding(data / "base", [*patient.identifying, patient.facility.encode()])
    metadata = any(patient.facility in hits for hits in tables.values())
    leaks = {
        name: phi
        for name, hits in tables.items()
        if (phi := [hit for hit in hits if hit != patient.facility])
    }
    wal = files_holding(data / "pg_wal", patient.identifying)
    return metadata, {**leaks, **{f"pg_wal/{name}": hits for name, hits in wal.items()}}


async def test_an_a03_reaches_postgresql_only_sealed_and_still_reads_and_reprocesses(
    stack: RunningStack, bearer: Bearer, settings: Settings
) -> None:
    patient = Patient()
    message = patient.a03()
    assert msa(await send(stack, bearer, message))[1] == "AA"
    await planned(stack, bearer, transition_of(settings, patient.facility, "V-SEALED"))
    pool = stack.services.pool
    row = await row_of(pool, control_id_of(message))

    assert row["raw"] is None and row["raw_key_id"] == stack.services.field_cipher.current
    for needle in [*patient.identifying, patient.birth_date.encode()]:
        assert needle in message and needle not in bytes(row["raw_sealed"])

    operator = await bearer(Role.OPERATOR)
    shown = await stack.http.get(f"/messages/{row['id']}", headers=operator)
    assert shown.status_code == 200
    assert f"PID|1||{patient.mrn}^^^{patient.facility}^MR||{patient.family}^" in shown.json()["raw"]
    assert shown.json()["parsed"]["event_type"] == "A03"
    audited = await pool.fetchval(
        "SELECT outcome FROM audit_log WHERE action = 'GET /messages/{message_id}' "
        "AND resource_id = $1 AND actor = 'rest.operator'",
        str(row["id"]),
    )
    assert audited == "200"
    supervisor = await stack.http.get(
        f"/messages/{row['id']}", headers=await bearer(Role.SUPERVISOR)
    )
    assert patient.family in supervisor.json()["raw"]
    for refused in (Role.CARE_MANAGER, Role.INTEGRATION, Role.AUDITOR):
        answer = await stack.http.get(f"/messages/{row['id']}", headers=await bearer(refused))
        assert answer.status_code == 403, refused

    again = await stack.http.post(f"/messages/{row['id']}/reprocess", headers=operator)
    assert again.status_code == 200, again.text
    copy = await pool.fetchrow("SELECT * FROM adt_inbox WHERE id = $1", again.json()["inbox_id"])
    assert copy["reprocessed_from"] == row["id"] and copy["raw"] is None
    assert await inbox.read_raw(pool, stack.services.field_cipher, copy["id"]) == message
    reshown = await stack.http.get(f"/messages/{copy['id']}", headers=operator)
    assert patient.family in reshown.json()["raw"]

    # Everything PostgreSQL wrote for this patient, on disk: the tables and the WAL.
    await pool.execute("CHECKPOINT")
    data = Path(await pool.fetchval("SHOW data_directory"))
    metadata, leaks = await asyncio.to_thread(scan_data_directory, data, patient)
    assert metadata, "the scan found not even the row's metadata (not PHI), in clear"
    assert leaks == {}, leaks


async def test_a_plaintext_row_written_before_sealing_is_sealed_by_migrate_and_still_reads(
    own_pool: asyncpg.Pool, settings: Settings
) -> None:
    patient = Patient()
    message = patient.a03()
    ack = "MSH|^~\\&|CAREBRIDGE|CB|EPIC|X|20260101||ACK|1|P|2.5\rMSA|AA|LEGACY-1\r"
    legacy = await own_pool.fetchval(  # the old way: plaintext raw, no content key
        "INSERT INTO adt_inbox (raw, sending_facility, control_id, message_type, status, "
        "ack_code, ack) VALUES ($1, $2, 'LEGACY-1', 'ADT^A03', 'processed', 'AA', $3) "
        "RETURNING id",
        message,
        patient.facility,
        ack,
    )
    cipher = field_cipher_for(settings)

    assert await migrate(own_pool, cipher) == ["inbox: 1 plaintext message(s) sealed"]
    assert await migrate(own_pool, cipher) == []  # idempotent: nothing left to seal
    row = await own_pool.fetchrow("SELECT * FROM adt_inbox WHERE id = $1", legacy)
    assert row["raw"] is None and row["raw_key_id"] == cipher.current
    assert row["content_hash"] == inbox.content_key(message)
    for needle in patient.identifying:
        assert not await own_pool.fetchval(
            "SELECT count(*) FROM adt_inbox WHERE position($1 in coalesce(raw, '')) > 0 "
            "OR position($1 in coalesce(raw_sealed, '')) > 0",
            needle,
        )
    assert await inbox.read_raw(own_pool, cipher, legacy) == message
    resent = await inbox.receive(
        own_pool,
        cipher,
        raw=message,
        sending_facility=patient.facility,
        control_id="LEGACY-1",
        message_type="ADT^A03",
    )
    assert (resent.id, resent.is_new, resent.ack) == (legacy, False, ack)


async def test_a_row_sealed_under_key_a_reads_under_b_alone_after_reencrypt(
    own_pool: asyncpg.Pool,
) -> None:
    key_a, key_b = os.urandom(32), os.urandom(32)
    under_a = FieldCipher({"a": key_a}, "a")
    message = Patient().a03()
    entry = await inbox.receive(
        own_pool,
        under_a,
        raw=message,
        sending_facility="ROTATE",
        control_id=f"ROT-{uuid.uuid4().hex[:8]}",
        message_type="ADT^A03",
    )
    only_b = FieldCipher({"b": key_b}, "b")
    with pytest.raises(
        SealError, match=f"adt_inbox row {entry.id} is sealed with key .a., which does not open"
    ):
        await inbox.reencrypt(own_pool, only_b)  # refused: key a is not in that keyring

    a_and_b = FieldCipher({"a": key_a, "b": key_b}, "b")
    assert await inbox.read_raw(own_pool, a_and_b, entry.id) == message
    assert await inbox.reencrypt(own_pool, a_and_b) == 1
    assert await inbox.reencrypt(own_pool, a_and_b) == 0  # idempotent
    assert await inbox.read_raw(own_pool, a_and_b, entry.id) == message
    assert await inbox.read_raw(own_pool, only_b, entry.id) == message
    assert (
        await own_pool.fetchval("SELECT raw_key_id FROM adt_inbox WHERE id = $1", entry.id) == "b"
    )
    with pytest.raises(SealError):
        await inbox.read_raw(own_pool, under_a, entry.id)  # key a no longer opens it


async def closed(stack: RunningStack, tid: str, status: str) -> None:
    async def projected() -> None:
        assert (
            await stack.services.pool.fetchval(
                "SELECT status FROM transitions WHERE transition_id = $1", tid
            )
            == status
        )

    await assert_eventually(projected)


async def test_retention_removes_a_closed_transitions_raw_and_keeps_an_open_ones(
    stack: RunningStack,
    bearer: Bearer,
    settings: Settings,
    temporal_env: WorkflowEnvironment,
    database_url: str,
) -> None:
    patient, pool = Patient(), stack.services.pool
    now = datetime.now(UTC).replace(microsecond=0)
    closing = patient.a03("V-CLOSED")
    cancel = with_event(
        a03(facility=patient.facility, visit="V-CLOSED", mrn=patient.mrn, now=now), "A13"
    )
    open_one = patient.a03("V-OPEN")
    waiting = with_event(patient.a03("V-NO-DISCHARGE-YET"), "A08")  # kept for its A03
    garbage = b"not HL7 at all " + patient.mrn.encode()
    first_ack = await send(stack, bearer, closing)
    cancelled = transition_of(settings, patient.facility, "V-CLOSED")
    await planned(stack, bearer, cancelled)
    for raw in (cancel, open_one, waiting, garbage):
        await send(stack, bearer, raw)
    await closed(stack, cancelled, "cancelled")
    await planned(stack, bearer, transition_of(settings, patient.facility, "V-OPEN"))
    # The clock is ours: the cancelled transition closed, and the garbage and the waiting A08
    # arrived, 91 days ago (retention: 90).
    await pool.execute(
        "UPDATE transitions SET updated_at = now() - interval '91 days' WHERE transition_id = $1",
        cancelled,
    )
    rows = {
        name: await row_of(pool, control_id_of(raw))
        for name, raw in (("closed", closing), ("cancel", cancel), ("open", open_one))
    }
    rows["waiting"] = await row_of(pool, control_id_of(waiting))
    [rows["garbage"]] = await inbox_rows_containing(pool, stack.services.field_cipher, garbage)
    assert (rows["waiting"]["status"], rows["garbage"]["status"]) == ("pending", "rejected")
    await pool.execute(
        "UPDATE adt_inbox SET received_at = now() - interval '91 days' WHERE id = ANY($1)",
        [rows["waiting"]["id"], rows["garbage"]["id"]],
    )
    env = {
        "CAREBRIDGE_DATABASE_URL": database_url,
        "CAREBRIDGE_CODEC_KEYS": TEST_KEYS,
        "CAREBRIDGE_LOG_LEVEL": "WARNING",
    }

    counted = await run_cli(env, "messages", "purge", "--dry-run")
    assert counted.exit_code == 0, counted.output
    counts = re.search(r"(\d+) raw message\(s\) past retention \(90 days\)", counted.output)
    assert counts is not None, counted.output
    due = int(counts[1])
    assert due >= 3  # the closed transition's A03 and A13, and the garbage
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM adt_inbox WHERE id = ANY($1) AND raw_sealed IS NOT NULL",
            [row["id"] for row in rows.values()],
        )
        == 5
    )  # a dry run removes nothing

    sweep = await temporal_env.client.start_workflow(
        SweepWorkflow.run, id=f"sweep-{uuid.uuid4()}", task_queue=settings.task_queue
    )
    report: SweepReport = await sweep.result()
    assert report.inbox_raw_removed >= 3 and not report.inbox_raw_due
    after = {
        name: await pool.fetchrow("SELECT * FROM adt_inbox WHERE id = $1", row["id"])
        for name, row in rows.items()
    }
    removed = {name for name, row in after.items() if row["raw_sealed"] is None}
    assert removed == {"closed", "cancel", "garbage"}
    for name in removed:  # the row keeps what it was and what it caused
        row, before = after[name], rows[name]
        assert row["raw_removed_at"] is not None and row["raw_key_id"] is None
        for kept in ("content_hash", "ack", "decision", "status", "control_id"):
            assert row[kept] == before[kept], (name, kept)

    operator = await bearer(Role.OPERATOR)
    shown = (await stack.http.get(f"/messages/{rows['closed']['id']}", headers=operator)).json()
    day = after["closed"]["raw_removed_at"].astimezone(stack.services.library.site.calendar_zone())
    assert shown["raw"] is None and shown["parsed"] is None
    assert shown["raw_removed"] == f"raw message removed on {day.date().isoformat()} (retention)"
    redo = await stack.http.post(f"/messages/{rows['closed']['id']}/reprocess", headers=operator)
    assert redo.status_code == 410
    assert "cannot be reprocessed: raw message removed on" in redo.json()["detail"]
    kept = (await stack.http.get(f"/messages/{rows['open']['id']}", headers=operator)).json()
    assert patient.family in kept["raw"]
    on_the_cli = await run_cli(env, "messages", "show", str(rows["closed"]["id"]))
    assert on_the_cli.exit_code == 0, on_the_cli.output
    assert f"raw message removed on {day.date().isoformat()} (retention)" in on_the_cli.output
    assert (
        patient.family in (await run_cli(env, "messages", "show", str(rows["open"]["id"]))).output
    )

    # A retransmission of the removed message is still recognised (by its content key).
    assert await send(stack, bearer, closing) == first_ack
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM adt_inbox WHERE control_id = $1", control_id_of(closing)
        )
        == 1
    )


async def test_a_message_under_a_key_the_keyring_lacks_shows_why_and_is_not_reprocessed(
    stack: RunningStack, bearer: Bearer
) -> None:
    elsewhere = FieldCipher({"retired": os.urandom(32)}, "retired")
    entry = await inbox.receive(
        stack.services.pool,
        elsewhere,
        raw=Patient().a03(),
        sending_facility="RETIRED",
        control_id=uuid.uuid4().hex[:20],
        message_type="ADT^A03",
    )
    operator = await bearer(Role.OPERATOR)
    shown = await stack.http.get(f"/messages/{entry.id}", headers=operator)
    assert shown.status_code == 200
    reason = "the raw message does not open: sealed with unknown key 'retired'"
    assert (shown.json()["raw"], shown.json()["raw_unreadable"]) == (None, reason)
    assert shown.json()["sending_facility"] == "RETIRED"  # the metadata still shows
    redo = await stack.http.post(f"/messages/{entry.id}/reprocess", headers=operator)
    assert redo.status_code == 409
    assert redo.json()["detail"] == f"message {entry.id} cannot be reprocessed: {reason}"
