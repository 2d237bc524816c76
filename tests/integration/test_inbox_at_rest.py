"""The ADT inbox encrypted at rest (issue 17 item 2): a message reaches PostgreSQL only sealed
(not in the table, not in the data directory's files), still reads in the message browser and
reprocesses; rows stored in plaintext before are sealed by `migrate`; retention removes the
raw bytes of closed transitions' messages and keeps open ones, and a retransmission still gets
its stored ACK; a key rotation moves every row to the new key."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from schemas import keys
from schemas.maintenance import SweepReport
from store import inbox, security
from store.encryption import FieldCipher, SealError
from store.migrate import migrate
from tests.conftest import TEST_KEYS
from tests.helpers import a03, assert_eventually, msa, with_event, with_field
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


def transition_of(settings: Settings, facility: str, visit: str) -> str:
    secret = settings.key_secret.get_secret_value()
    return keys.transition_id(keys.encounter_key(secret, facility, visit))


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
    if not data.is_dir():
        pytest.skip("the PostgreSQL data directory is not on this machine")
    # the scan reads what is there: the row's metadata (not PHI) is in clear
    assert files_holding(data / "base", [patient.facility.encode()])
    leaks = {
        **files_holding(data / "base", patient.identifying),
        **{f"pg_wal/{k}": v for k, v in files_holding(data / "pg_wal", patient.identifying).items()},
    }
    assert leaks == {}, leaks
