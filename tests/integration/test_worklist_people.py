"""Worklists that show people, on the real stack, every call with a person's token: an A03 with
a name, MRN, birth date, phone, PCP and a principal diagnosis arrives; GET /transitions,
GET /transitions/{id}, the worklist, transition and care plan pages, `carebridge list` and
`show` say who the patient is; a search by surname prefix, MRN, birth date or phone finds the
transition (blind indexes); each patient shown is in the audit log with the patient key; and
nothing of it is served without a token."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest_asyncio

from ingest import example_messages
from ingest.example_messages import Adt, Diagnosis, Person
from schemas import keys
from store import security
from tests.conftest import TEST_KEYS
from tests.helpers import assert_eventually, database_dsn, msa
from tests.integration.conftest import RunningStack, run_cli
from workers.runtime.services import Services
from workers.runtime.settings import Settings

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}
SITE_ZONE = ZoneInfo("America/New_York")  # the shipped site.yaml's; no facility of its own
NURSE = "cm.people"


@dataclass
class Strict:
    """The stack called without default credentials, and a token per person."""

    http: httpx.AsyncClient
    services: Services
    headers: dict[str, dict[str, str]]

    def as_(self, subject: str) -> dict[str, str]:
        return self.headers[subject]


@pytest_asyncio.fixture
async def strict(stack: RunningStack) -> AsyncIterator[Strict]:
    headers = {
        subject: await stack.as_person(subject, role)
        for subject, role in (("feed.people", "integration"), (NURSE, "care_manager"))
    }
    yield Strict(stack.anonymous, stack.services, headers)


def letters(n: int) -> str:
    """A made-up name nobody else in the session's database has."""
    return "".join(chr(ord("A") + int(c, 16)) for c in uuid.uuid4().hex[:n])


@dataclass(frozen=True)
class Discharge:
    message: Adt
    transition_id: str
    patient_key: str

    @property
    def person(self) -> Person:
        return self.message.person


def born_eighty_years_ago() -> date:
    """1 January, 80 years before this year (the site's): 80 on any day of this year."""
    return date(datetime.now(SITE_ZONE).year - 80, 1, 1)


async def discharge(strict: Strict) -> Discharge:
    person = Person(
        family="ZP" + letters(8),
        given="IR" + letters(4),
        middle="Q",
        birth_date=born_eighty_years_ago().strftime("%Y%m%d"),
        sex="F",
        phone=f"{200 + uuid.uuid4().int % 700}555{uuid.uuid4().int % 10_000:04d}",
    )
    message = replace(
        example_messages.build(
            "a03", facility=f"PPL{uuid.uuid4().hex[:6].upper()}", mrn=f"M{letters(9)}"
        ),
        person=person,
        next_of_kin=(),
        location="5E^512^B",
        diagnoses=(Diagnosis("I50.9", "CHF"),),
    )
    raw = example_messages.render(message) + "PD1|||RIVERSIDE FM|D77^WELBY^MARCUS\r"
    answer = await strict.http.post(
        "/adt", content=raw.encode(), headers={**ER7, **strict.as_("feed.people")}
    )
    assert msa(answer.text)[1] == "AA", answer.text
    secret = strict.services.settings.key_secret.get_secret_value()
    tid = keys.transition_id(keys.encounter_key(secret, message.facility, message.visit))
    return Discharge(message, tid, keys.patient_key(secret, message.facility, message.mrn))


async def rows(strict: Strict, **params: str) -> list[dict[str, Any]]:
    response = await strict.http.get("/transitions", params=params, headers=strict.as_(NURSE))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def shows_the_patient(patient: dict[str, Any], sent: Discharge) -> None:
    person = sent.person
    assert patient["name"] == f"{person.given} Q {person.family}"
    assert patient["age"] == 80 and patient["sex"] == "F"
    assert patient["birth_date"] == born_eighty_years_ago().isoformat()
    assert patient["mrn"] == sent.message.mrn
    assert patient["phone"] == person.phone
    assert patient["pcp"] == "MARCUS WELBY"
    assert (patient["diagnosis"], patient["diagnosis_text"]) == (
        "I50.9",
        "Heart failure, unspecified",  # its ICD-10-CM title, not the "CHF" sent
    )
    assert patient["unit"] == "5E" and patient["length_of_stay_days"] == 4
    assert patient["patient_key"] == sent.patient_key


async def test_worklist_rows_and_the_transition_say_who_the_patient_is(strict: Strict) -> None:
    sent = await discharge(strict)

    async def listed() -> dict[str, Any]:
        found = await rows(strict, facility=sent.message.facility)
        assert len(found) == 1 and found[0]["patient"] is not None
        return found[0]

    row = await assert_eventually(listed, within=30)
    shows_the_patient(row["patient"], sent)
    assert row["transition_id"] == sent.transition_id and row["risk_tier"] in ("standard", "high")
    assert row["due_steps"]  # the transition's own facts as before

    state = await strict.http.get(f"/transitions/{sent.transition_id}", headers=strict.as_(NURSE))
    assert state.status_code == 200, state.text
    shows_the_patient(state.json()["patient"], sent)
    assert state.json()["facility"] == sent.message.facility

    for page in ("/", f"/ui/transitions/{sent.transition_id}"):
        html = await strict.http.get(
            page, params={"facility": sent.message.facility}, headers=strict.as_(NURSE)
        )
        assert html.status_code == 200, html.text
        assert f"{sent.person.given} Q {sent.person.family}" in html.text
        assert sent.message.mrn in html.text and sent.person.phone in html.text
    plan = await strict.http.get(
        f"/ui/transitions/{sent.transition_id}/care-plan", headers=strict.as_(NURSE)
    )
    assert f"{sent.person.given} Q {sent.person.family}" in plan.text


async def test_search_by_surname_prefix_mrn_birth_date_or_phone_finds_the_transition(
    strict: Strict,
) -> None:
    sent = await discharge(strict)
    other = await discharge(strict)
    person = sent.person

    async def found(query: str) -> list[str]:
        return [r["transition_id"] for r in await rows(strict, q=query)]

    async def searchable() -> None:
        assert await found(person.family[:5].lower()) == [sent.transition_id]

    await assert_eventually(searchable, within=30)
    assert await found(sent.message.mrn) == [sent.transition_id]
    phone = person.phone
    assert await found(f"({phone[:3]}) {phone[3:6]}-{phone[6:]}") == [sent.transition_id]
    by_birth = await found(born_eighty_years_ago().isoformat())
    assert sent.transition_id in by_birth and other.transition_id in by_birth  # same day
    assert await found(f"{person.given} {person.family[:4]}") == [sent.transition_id]
    assert await found("ZZ" + letters(10)) == []

    page = await strict.http.get(
        "/", params={"q": person.family[:5], "view": "all"}, headers=strict.as_(NURSE)
    )
    assert f'data-transition="{sent.transition_id}"' in page.text
    assert f'data-transition="{other.transition_id}"' not in page.text


async def test_each_patient_shown_is_audited_with_the_patient_key(strict: Strict) -> None:
    sent = await discharge(strict)
    other = await discharge(strict)
    facility_rows = await assert_eventually(lambda: _both_listed(strict, sent, other), within=30)
    assert facility_rows == {sent.transition_id, other.transition_id}

    since = await strict.services.pool.fetchval("SELECT max(id) FROM audit_log")
    await rows(strict, q=sent.message.mrn)
    audited = await strict.services.pool.fetch(
        "SELECT actor, action, resource_id, patient_key, outcome FROM audit_log "
        "WHERE id > $1 AND actor = $2 ORDER BY id",
        since,
        NURSE,
    )
    assert [(r["action"], r["resource_id"], r["patient_key"], r["outcome"]) for r in audited] == [
        ("GET /transitions", sent.transition_id, sent.patient_key, "200")
    ]
    verified = await security.verify(strict.services.pool, strict.services.settings.audit_chain_key)
    assert verified.intact


async def _both_listed(strict: Strict, *sent: Discharge) -> set[str]:
    listed = set()
    for one in sent:
        found = await rows(strict, facility=one.message.facility)
        assert len(found) == 1 and found[0]["patient"] is not None
        listed.add(found[0]["transition_id"])
    return listed


async def test_nothing_about_the_patient_is_served_without_a_token(strict: Strict) -> None:
    sent = await discharge(strict)
    for path in (
        "/transitions",
        f"/transitions?q={sent.message.mrn}",
        f"/transitions/{sent.transition_id}",
        "/",
        f"/ui/transitions/{sent.transition_id}",
    ):
        response = await strict.http.get(path)
        assert response.status_code == 401, (path, response.status_code)
        assert sent.person.family not in response.text


async def test_cli_list_finds_the_patient_and_show_says_who_it_is(
    strict: Strict, stack: RunningStack, settings: Settings
) -> None:
    sent = await discharge(strict)
    await assert_eventually(lambda: _both_listed(strict, sent), within=30)
    env = {
        "CAREBRIDGE_DATABASE_URL": database_dsn(settings),
        "CAREBRIDGE_TEMPORAL_ADDRESS": stack.services.client.service_client.config.target_host,
        "CAREBRIDGE_TASK_QUEUE": settings.task_queue,
        "CAREBRIDGE_CODEC_KEYS": TEST_KEYS,
        "CAREBRIDGE_KEY_SECRET": settings.key_secret.get_secret_value(),
        "CAREBRIDGE_LOG_LEVEL": "WARNING",
    }
    since = await strict.services.pool.fetchval("SELECT max(id) FROM audit_log")
    listed = await run_cli(
        env, "list", "--patient", sent.person.family[:6], "--by", "cm.cli", "--json"
    )
    assert listed.exit_code == 0, listed.output
    [row] = [json.loads(line) for line in listed.output.splitlines() if line.strip()]
    assert row["transition_id"] == sent.transition_id
    shows_the_patient(row["patient"], sent)
    table = await run_cli(env, "list", "--patient", sent.message.mrn, "--by", "cm.cli")
    assert f"{sent.person.given} Q {sent.person.family}" in table.output
    assert f"MRN {sent.message.mrn}" in table.output and "I50.9" in table.output

    shown = await run_cli(env, "show", sent.transition_id)
    assert shown.exit_code == 0, shown.output
    assert f"{sent.person.given} Q {sent.person.family}, 80 F" in shown.output
    assert sent.person.phone in shown.output and "5E" in shown.output

    audited = await strict.services.pool.fetch(
        "SELECT action, resource_id, patient_key FROM audit_log "
        "WHERE id > $1 AND action = 'cli list' ORDER BY id",
        since,
    )
    assert [(r["resource_id"], r["patient_key"]) for r in audited] == [
        (sent.transition_id, sent.patient_key)
    ] * 2
