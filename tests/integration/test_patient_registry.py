"""The protected patient registry on the real stack (issue 17 item 1): ADT sent over HTTP
with an integration token lands in `patients` sealed (no name, MRN, birth date or phone in
the bytes), reads back whole, is found through the blind indexes by surname prefix, MRN,
birth date and phone, is updated by a newer A08 and only gap-filled by a late one, merged
by an A40 (keeping who was merged into whom), resealed by `reencrypt`; and a registry that
cannot be written fails the message (AR, row kept) instead of answering AA."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pytest
import pytest_asyncio

from ingest import example_messages
from ingest.example_messages import Adt, Diagnosis, Person
from ingest.intake import AdtIntake
from schemas import keys
from store import registry, security
from store.encryption import FieldCipher, SealError
from tests.conftest import TEST_KEYRING
from tests.helpers import msa
from tests.integration.conftest import RunningStack

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}


@dataclass
class Feed:
    """The stack, and an integration token to send ADT with (auth on or off)."""

    stack: RunningStack
    headers: dict[str, str]

    @property
    def secret(self) -> str:
        return self.stack.services.settings.key_secret.get_secret_value()

    async def send(self, message: Adt | bytes) -> str:
        raw = example_messages.render(message).encode() if isinstance(message, Adt) else message
        answer = await self.stack.http.post("/adt", content=raw, headers={**ER7, **self.headers})
        assert msa(answer.text)[1] == "AA", answer.text
        return answer.text

    def patient_key(self, message: Adt) -> str:
        return keys.patient_key(self.secret, message.facility, message.mrn)

    def transition_id(self, message: Adt) -> str:
        return keys.transition_id(keys.encounter_key(self.secret, message.facility, message.visit))

    async def patient(self, key: str) -> registry.PatientRecord:
        services = self.stack.services
        found = await registry.get_patient(services.pool, services.field_cipher, key)
        assert found is not None
        return found

    async def search(self, query: str) -> list[str]:
        services = self.stack.services
        return await registry.search(services.pool, services.blind_index, query)


@pytest_asyncio.fixture
async def feed(stack: RunningStack) -> AsyncIterator[Feed]:
    _, token = await security.create_token(
        stack.services.pool, name="registry test feed", subject="feed.registry", role="integration"
    )
    yield Feed(stack, {"Authorization": f"Bearer {token}"})


def letters(n: int) -> str:
    """A made-up name nobody else in the session's database has."""
    return "".join(chr(ord("A") + int(c, 16)) for c in uuid.uuid4().hex[:n])


def someone(**fields: str) -> Person:
    born = date(1930, 1, 1) + timedelta(days=secrets.randbelow(11_000))
    values = {
        "family": "ZQ" + letters(8),
        "given": "JO" + letters(5),
        "middle": "Q",
        "birth_date": born.strftime("%Y%m%d"),
        "sex": "F",
        # 555-0100..0189 (fiction's numbers); the tests change numbers to 0190..0199
        "phone": f"{200 + secrets.randbelow(700)}55501{secrets.randbelow(90):02d}",
        "address": "12 ELM ST^^SPRINGFIELD^MA^01101",
        **fields,
    }
    return Person(**values)


def discharge(person: Person, *, now: datetime | None = None, **fields: object) -> Adt:
    """An A03 of a fresh facility, visit and MRN for this person, discharged 2 h before
    `now` after 4 days in 5E, principal diagnosis heart failure, the spouse as NK1."""
    spouse = Person(person.family, "SAM", phone="4135550143", relationship="SPO^Spouse")
    message = example_messages.build(
        "a03", now=now, facility=f"REG{uuid.uuid4().hex[:8].upper()}", mrn=f"M{letters(9)}"
    )
    return replace(
        message,
        person=person,
        next_of_kin=(spouse,),
        location="5E^512^B",
        diagnoses=(
            Diagnosis("I50.9", "Heart failure, unspecified"),
            Diagnosis("E11.22", "Type 2 diabetes with diabetic chronic kidney disease"),
        ),
        **fields,
    )


def update(of: Adt, person: Person, sent_at: datetime) -> Adt:
    """An A08 of the same visit, sent at `sent_at`."""
    return replace(
        of, trigger="A08", control_id=uuid.uuid4().hex[:20], sent_at=sent_at, person=person
    )


def merge(survivor: Adt, merged: Adt, person: Person) -> bytes:
    """An A40 of the survivor's facility: PID (the survivor, as `person`), MRG (the other)."""
    sent = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    lines = [
        f"MSH|^~\\&|EPIC|{survivor.facility}|CAREBRIDGE|CB|{sent}||ADT^A40^ADT_A39|"
        f"{uuid.uuid4().hex[:20]}|P|2.5.1",
        f"EVN|A40|{sent}",
        f"PID|1||{survivor.mrn}^^^{survivor.facility}^MR||{person.name}",
        f"MRG|{merged.mrn}^^^{survivor.facility}^MR",
    ]
    return ("\r".join(lines) + "\r").encode()


async def test_a_discharge_is_kept_whole_and_sealed_with_no_plaintext_phi(feed: Feed) -> None:
    person = someone()
    message = discharge(person)
    await feed.send(message)
    key, tid = feed.patient_key(message), feed.transition_id(message)

    record = await feed.patient(key)
    assert record.display_name == f"{person.given} Q {person.family}"
    assert record.mrn == message.mrn
    assert record.birth_date == datetime.strptime(person.birth_date, "%Y%m%d").date()
    assert (record.sex, record.phones) == ("F", (person.phone,))
    assert record.address == "12 ELM ST, SPRINGFIELD, MA 01101"
    assert [(k.name, k.relationship, k.phone) for k in record.caregivers] == [
        (f"SAM {person.family}", "SPO", "4135550143")
    ]
    pool, cipher = feed.stack.services.pool, feed.stack.services.field_cipher
    details = (await registry.get_encounters(pool, cipher, [tid]))[tid]
    assert details.patient_key == key
    assert (details.principal_diagnosis, details.principal_diagnosis_text) == (
        "I50.9",
        "Heart failure, unspecified",
    )
    assert (details.unit, details.disposition, details.length_of_stay_days) == ("5E", "01", 4)

    phi = [person.family, person.given, message.mrn, person.phone, person.birth_date, "ELM ST"]
    patient_row = await pool.fetchrow(
        "SELECT p.*, p::text AS whole FROM patients p WHERE patient_key = $1", key
    )
    encounter_row = await pool.fetchrow(
        "SELECT e.*, e::text AS whole FROM encounter_details e WHERE transition_id = $1", tid
    )
    assert patient_row is not None and encounter_row is not None
    for row in (patient_row, encounter_row):
        sealed = bytes(row["sealed"])
        assert row["key_id"] == cipher.current
        assert not [value for value in phi if value.encode() in sealed]
        assert not [value for value in phi if value in row["whole"]]
    assert b"Heart failure" not in bytes(encounter_row["sealed"])
    indexed = await pool.fetch(
        "SELECT kind, digest FROM patient_search WHERE patient_key = $1", key
    )
    kinds = {row["kind"] for row in indexed}
    assert kinds == {"mrn", "birth_date", "phone", "phone_local", "name"}
    assert not [v for v in phi for row in indexed if v.encode() in bytes(row["digest"])]


async def test_search_finds_the_patient_by_surname_prefix_mrn_birth_date_and_phone(
    feed: Feed,
) -> None:
    person = someone()
    message = discharge(person)
    await feed.send(message)
    key = feed.patient_key(message)
    born = datetime.strptime(person.birth_date, "%Y%m%d").date()
    phone = person.phone

    assert await feed.search(person.family[:6].lower()) == [key]
    assert await feed.search(f"{person.family} {person.given[:3]}") == [key]
    assert await feed.search(message.mrn.lower()) == [key]
    assert key in await feed.search(born.isoformat())
    assert key in await feed.search(born.strftime("%m/%d/%Y"))
    assert key in await feed.search(f"({phone[:3]}) {phone[3:6]}-{phone[6:]}")
    assert key in await feed.search(f"{phone[3:6]}-{phone[6:]}")  # without the area code
    assert await feed.search(f"{person.family} NOBODY") == []  # every word must match
    assert await feed.search(person.family[:1]) == []  # one letter is no prefix searched


async def test_a_newer_a08_replaces_the_phone_and_a_late_older_one_only_fills_gaps(
    feed: Feed,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    person = someone(address="")
    message = discharge(person, now=now - timedelta(hours=1))
    await feed.send(message)
    key = feed.patient_key(message)

    new_phone = f"{person.phone[:3]}5550198"
    await feed.send(update(message, replace(person, phone=new_phone), now))
    assert (await feed.patient(key)).phones == (new_phone,)

    late = replace(person, phone=f"{person.phone[:3]}5550199", family="ZQLATE" + letters(4))
    late = replace(late, address="9 OLD RD^^WARE^MA^01082")
    await feed.send(update(message, late, now - timedelta(days=7)))  # a week late
    record = await feed.patient(key)
    assert record.phones == (new_phone,)
    assert record.family_name == person.family
    assert record.address == "9 OLD RD, WARE, MA 01082"  # the gap it could fill

    assert await feed.search(new_phone) == [key]
    assert await feed.search(person.phone) == []  # the replaced number is no longer indexed
    assert await feed.search(late.family) == []


async def test_an_a40_merge_keeps_who_was_merged_into_whom_and_search_finds_the_survivor(
    feed: Feed,
) -> None:
    survivor_person, merged_person = someone(), someone()
    survivor = replace(discharge(survivor_person), next_of_kin=())
    merged = replace(
        discharge(merged_person),
        facility=survivor.facility,
        visit=f"V{letters(8)}",
        mrn=f"M{letters(9)}",
    )
    await feed.send(survivor)
    await feed.send(merged)
    surviving_key, merged_key = feed.patient_key(survivor), feed.patient_key(merged)
    assert (await feed.patient(surviving_key)).caregivers == ()

    await feed.send(merge(survivor, merged, survivor_person))
    record = await feed.patient(surviving_key)
    assert record.merged_from == (merged_key,) and record.merged_into is None
    assert record.family_name == survivor_person.family  # the survivor keeps its values
    assert record.phones == (survivor_person.phone,)
    assert [k.name for k in record.caregivers] == [f"SAM {merged_person.family}"]  # a gap filled
    assert (await feed.patient(merged_key)).patient_key == surviving_key
    pool = feed.stack.services.pool
    merged_into = await pool.fetchval(
        "SELECT merged_into FROM patients WHERE patient_key = $1", merged_key
    )
    assert merged_into == surviving_key
    assert await feed.search(merged_person.family) == [surviving_key]
    assert await feed.search(merged.mrn) == [surviving_key]
    assert await feed.search(survivor_person.family) == [surviving_key]
    details = await registry.get_encounters(
        pool, feed.stack.services.field_cipher, [feed.transition_id(merged)]
    )
    assert details[feed.transition_id(merged)].patient_key == surviving_key

    await feed.send(merge(survivor, merged, survivor_person))  # repeated: nothing changes
    assert (await feed.patient(surviving_key)).merged_from == (merged_key,)


async def test_reencrypt_moves_rows_to_the_new_current_key_and_they_still_read(
    feed: Feed,
) -> None:
    person = someone()
    message = discharge(person)
    await feed.send(message)
    key, tid = feed.patient_key(message), feed.transition_id(message)
    pool = feed.stack.services.pool
    keyring = {**TEST_KEYRING.keys, "test-2": os.urandom(32)}
    rotated = FieldCipher(keyring, "test-2")
    try:
        assert await registry.reencrypt(pool, rotated) >= 2
        assert await pool.fetchval("SELECT key_id FROM patients WHERE patient_key = $1", key) == (
            "test-2"
        )
        assert (
            await pool.fetchval(
                "SELECT key_id FROM encounter_details WHERE transition_id = $1", tid
            )
            == "test-2"
        )
        record = await registry.get_patient(pool, rotated, key)
        assert record is not None and record.family_name == person.family
        assert (await registry.get_encounters(pool, rotated, [tid]))[tid].unit == "5E"
        with pytest.raises(SealError):
            await registry.get_patient(pool, FieldCipher(TEST_KEYRING.keys, "test-1"), key)
        assert await registry.reencrypt(pool, rotated) == 0  # nothing left to move
    finally:  # the session's other tests read the registry under test-1
        await registry.reencrypt(pool, FieldCipher(keyring, "test-1"))


async def test_a_registry_that_cannot_be_written_fails_the_message_until_it_can(
    feed: Feed,
) -> None:
    person = someone()
    message = discharge(person)
    await feed.send(message)
    services = feed.stack.services
    settings = services.settings
    keyless = AdtIntake(  # its keyring cannot open the row the discharge wrote
        services.pool,
        services.client,
        task_queue=settings.task_queue,
        key_secret=settings.key_secret.get_secret_value(),
        library=services.library,
        timeout_seconds=5,
        field_cipher=FieldCipher({"other": os.urandom(32)}, "other"),
        blind_index=services.blind_index,
    )
    new_phone = f"{person.phone[:3]}5550197"
    changed = update(message, replace(person, phone=new_phone), datetime.now(UTC))
    raw = example_messages.render(changed).encode()

    refused = await keyless.handle(raw)
    assert msa(refused.ack)[1] == "AR"
    assert person.family not in refused.ack and new_phone not in refused.ack
    row = await services.pool.fetchrow(
        "SELECT status, ack FROM adt_inbox WHERE sending_facility = $1 AND control_id = $2",
        message.facility,
        changed.control_id,
    )
    assert row is not None and (row["status"], row["ack"]) == ("received", None)

    await feed.send(raw)  # the sender resends; this intake can write the registry
    assert (await feed.patient(feed.patient_key(message))).phones == (new_phone,)
