"""The printed care plan on the real stack (GET the care plan page's print view): written for
the patient, in Spanish for a Spanish speaker (PID-15 SPA), with the practice's phone and no
23:59, no "AHC HRSN", no staff warning and no social-needs domain before it screened positive
and the patient agreed to share it; a SNF discharge names where the patient is now. Every
call carries an API token (a care manager's, an integration's for the ADT)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest_asyncio

from schemas import keys
from schemas.social_needs import HrsnDomain
from store import security
from tests.helpers import a03, assert_eventually, msa, with_field, with_person_fields
from tests.integration.conftest import RunningStack
from tests.unit.test_patient_plan import ANSWERS

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}
HOME_PHONE = "(617)555-0123"
STAFF_ONLY = ("23:59", "AHC HRSN", "outside the preferred hours", "Resource referral")


@dataclass
class Tokens:
    care_manager: dict[str, str]
    integration: dict[str, str]


@pytest_asyncio.fixture
async def tokens(stack: RunningStack) -> Tokens:
    made = {}
    for role in ("care_manager", "integration"):
        _, token = await security.create_token(
            stack.services.pool, name=f"plan test {role}", subject=f"plan.{role}", role=role
        )
        made[role] = {"Authorization": f"Bearer {token}"}
    return Tokens(made["care_manager"], made["integration"])


async def discharged(stack: RunningStack, tokens: Tokens, raw: bytes, facility: str) -> str:
    """POST the A03 (visit V1 of `facility`) and wait until its transition is planned."""
    answer = await stack.http.post("/adt", content=raw, headers={**ER7, **tokens.integration})
    assert msa(answer.text)[1] == "AA", answer.text
    secret = stack.services.settings.key_secret.get_secret_value()
    tid = keys.transition_id(keys.encounter_key(secret, facility, "V1"))

    async def planned() -> None:
        state = await stack.http.get(f"/transitions/{tid}", headers=tokens.care_manager)
        assert state.status_code == 200 and state.json()["period_ends_at"]

    await assert_eventually(planned, within=60)
    return tid


def spanish_speaker(facility: str, disposition: str = "01") -> bytes:
    """An A03 (visit V1) with PID-15 SPA, a spouse in NK1, a home phone and a DG1 diagnosis."""
    raw = with_person_fields(a03(facility=facility, visit="V1", disposition=disposition))
    return with_field(raw, "PID", 13, HOME_PHONE) + b"DG1|1||I50.9^CHF^I10\r"


async def printed(stack: RunningStack, tokens: Tokens, tid: str, lang: str = "") -> str:
    query = f"?lang={lang}" if lang else ""
    page = await stack.http.get(
        f"/ui/transitions/{tid}/care-plan/print{query}", headers=tokens.care_manager
    )
    assert page.status_code == 200, page.text
    return page.text


async def update_profile(stack: RunningStack, tokens: Tokens, tid: str, **fields: object) -> None:
    plan = await stack.http.get(f"/transitions/{tid}/care-plan", headers=tokens.care_manager)
    profile = plan.json()["profile"] | fields
    saved = await stack.http.put(
        f"/transitions/{tid}/profile",
        json={"by": "plan.care_manager", "profile": profile},
        headers=tokens.care_manager,
    )
    assert saved.status_code == 200, saved.text


def window_away_from_now() -> dict[str, str]:
    """A one-hour contact window that does not hold the current hour (site zone)."""
    hour = datetime.now(ZoneInfo("America/New_York")).hour
    start = 20 if hour < 12 else 6
    return {"start": f"{start:02d}:00", "end": f"{start + 1:02d}:00"}


async def test_the_printed_plan_is_the_patients_in_spanish_without_staff_words(
    stack: RunningStack, tokens: Tokens
) -> None:
    facility = f"PP{uuid.uuid4().hex[:4].upper()}"
    tid = await discharged(stack, tokens, spanish_speaker(facility), facility)
    await update_profile(stack, tokens, tid, contact_window=window_away_from_now())
    attempt = await stack.http.post(
        f"/transitions/{tid}/steps/interactive_contact/attempts",
        json={"by": "plan.care_manager", "result": "no_answer"},
        headers=tokens.care_manager,
    )
    assert attempt.status_code == 200, attempt.text

    # The staff's page has what the patient's must not: the warning, the safety referral.
    staff = await stack.http.get(f"/ui/transitions/{tid}/care-plan", headers=tokens.care_manager)
    assert "outside the preferred hours" in staff.text
    assert "Resource referral: interpersonal safety" in staff.text

    spanish = await printed(stack, tokens, tid)
    assert '<html lang="es">' in spanish
    assert "Su plan de cuidado después del hospital" in spanish
    # the name and birth date from the registry (PID-5, PID-7 of tests.helpers.a03)
    assert "<strong>JANE Q DOE</strong>" in spanish and "12 de marzo de 1948" in spanish
    assert "Le llamaremos a más tardar el" in spanish
    practice = stack.services.library.site.practice
    assert f"¿Preguntas? Llame a {practice.name} al {practice.phone}." in spanish
    assert f"Su teléfono: {HOME_PHONE}" in spanish
    assert "Idioma: español" in spanish and "JOHN DOE (cónyuge)" in spanish
    english = await printed(stack, tokens, tid, lang="en")
    assert "We will call you by" in english and "Language: Spanish" in english
    for page in (spanish, english):
        for staff_words in STAFF_ONLY:
            assert staff_words not in page, staff_words
        assert "safe" not in page.lower() and "salvo" not in page.lower()
        assert 'id="needs"' not in page

    # Staff pages show the diagnosis by its ICD-10-CM title, not only the code.
    page = await stack.http.get(f"/ui/transitions/{tid}", headers=tokens.care_manager)
    assert "Heart failure, unspecified <small>(I50.9)</small>" in page.text
    assert "Heart failure" not in spanish  # the paper plan lists no diagnosis

    unknown = await stack.http.get(
        f"/ui/transitions/{tid}/care-plan/print?lang=fr", headers=tokens.care_manager
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == "The plan is printed in en or es, not in fr."


async def test_a_need_prints_only_once_screened_positive_and_shared(
    stack: RunningStack, tokens: Tokens
) -> None:
    facility = f"PN{uuid.uuid4().hex[:4].upper()}"
    tid = await discharged(stack, tokens, spanish_speaker(facility), facility)
    screened = await stack.http.post(
        f"/transitions/{tid}/steps/social_needs_screening/screening",
        json={"by": "plan.care_manager", "answers": ANSWERS.model_dump(mode="json")},
        headers=tokens.care_manager,
    )
    assert screened.status_code == 200, screened.text
    assert HrsnDomain.SAFETY.value in screened.json()["positive"]

    not_shared = await printed(stack, tokens, tid, lang="en")
    assert 'id="needs"' not in not_shared and "Feeling safe" not in not_shared

    await update_profile(stack, tokens, tid, needs_shared_on_plan=["food_insecurity"])
    food = await printed(stack, tokens, tid, lang="en")
    assert "Having enough food" in food
    assert "Feeling safe at home" not in food and "Rides to appointments" not in food

    await update_profile(
        stack, tokens, tid, needs_shared_on_plan=["food_insecurity", "interpersonal_safety"]
    )
    assert "Sentirse a salvo en casa" in await printed(stack, tokens, tid)


async def test_a_snf_discharge_prints_the_receiving_facility_not_the_home_phone(
    stack: RunningStack, tokens: Tokens
) -> None:
    facility = f"PS{uuid.uuid4().hex[:4].upper()}"
    raw = with_field(spanish_speaker(facility, disposition="03"), "PV1", 37, "SUNNY ACRES SNF")
    tid = await discharged(stack, tokens, raw, facility)
    plan = await stack.http.get(f"/transitions/{tid}/care-plan", headers=tokens.care_manager)
    assert plan.json()["profile"]["discharged_to"] == "SUNNY ACRES SNF"
    page = await printed(stack, tokens, tid, lang="en")
    assert "Where you are staying now: SUNNY ACRES SNF. We will reach you there." in page
    assert HOME_PHONE not in page
