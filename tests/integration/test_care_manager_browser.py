"""A care manager's morning in headless Chromium (issue 17's walk-through): an A03 with the
patient's name, MRN, birth date, phone and next of kin arrives; signed in with a one-time
URL (as `carebridge up` prints), the care manager sees the patient on the worklist, finds
her by surname prefix, MRN and birth date, sees an A08's new phone and an A40's merged
identity on the transition page, claims the transition, records a call that reached her
with a booked appointment, a medication problem and a red flag, adds a note, and prints a
plan with her name on it.

Screenshots go to the test's folder, and to docs/ with CAREBRIDGE_UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas import keys
from tests.helpers import a03, assert_eventually, msa, with_event, with_field
from tests.integration.conftest import RunningStack
from tests.integration.test_web_browser import browser, save  # noqa: F401 (the fixture)
from workers.runtime.settings import Settings

NURSE = "rn.morning"


def years_before(day: date, years: int) -> date:
    """The same day `years` earlier (28 February for a 29th without its leap year)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


@dataclass(frozen=True)
class Patient:
    """A fictitious patient of this run only (phone numbers in the 555-01xx range)."""

    family: str
    mrn: str
    duplicate_mrn: str  # an earlier registration of the same person, merged by the A40
    born: date
    phone: str
    new_phone: str
    facility: str

    @classmethod
    def fresh(cls) -> Patient:
        tag = uuid.uuid4().hex[:6].upper()
        letters = "".join(chr(ord("A") + int(c, 16) % 26) for c in tag)
        # 72 years and 40 days ago: 72 on every clock, whatever the zone
        born = years_before(datetime.now(UTC).date() - timedelta(days=40), 72)
        first, second = secrets.randbelow(50), 50 + secrets.randbelow(50)
        return cls(
            family=f"ALMEIDA{letters}",
            mrn=f"M{tag}",
            duplicate_mrn=f"D{tag}",
            born=born,
            phone=f"(413)555-01{first:02d}",
            new_phone=f"(413)555-01{second:02d}",
            facility=f"DAY{tag}",
        )

    def message(self, mrn: str, visit: str) -> bytes:
        raw = a03(facility=self.facility, visit=visit, mrn=mrn)
        raw = with_field(raw, "PID", 5, f"{self.family}^LUCIA^M")
        raw = with_field(raw, "PID", 7, self.born.strftime("%Y%m%d"))
        raw = with_field(raw, "PID", 13, f"{self.phone}^PRN^PH")
        return raw + f"NK1|1|{self.family}^SOFIA|DAU^Daughter||(413)555-0177\r".encode()

    def merge(self) -> bytes:
        """ADT^A40: the duplicate record merged into the discharged patient's."""
        sent = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        return (
            f"MSH|^~\\&|EPIC|{self.facility}|CAREBRIDGE|CB|{sent}||ADT^A40^ADT_A39|"
            f"M40{uuid.uuid4().hex[:12]}|P|2.5.1\r"
            f"EVN|A40|{sent}\r"
            f"PID|1||{self.mrn}^^^{self.facility}^MR||{self.family}^LUCIA^M\r"
            f"MRG|{self.duplicate_mrn}^^^{self.facility}^MR\r"
        ).encode()


async def accepted(stack: RunningStack, raw: bytes) -> None:
    answer = await stack.post_adt(raw)
    assert msa(answer.text)[1] == "AA", answer.text


async def test_a_care_manager_finds_claims_calls_and_prints_for_a_named_patient(
    browser: Any,  # noqa: F811
    stack: RunningStack,
    settings: Settings,
    tmp_path: Path,
) -> None:
    patient = Patient.fresh()
    # registered twice: a visit under a duplicate MRN, then the stay that is discharged
    await accepted(stack, with_event(patient.message(patient.duplicate_mrn, "V-EARLIER"), "A08"))
    await accepted(stack, patient.message(patient.mrn, "V-STAY"))
    secret = settings.key_secret.get_secret_value()
    tid = keys.transition_id(keys.encounter_key(secret, patient.facility, "V-STAY"))

    async def planned() -> None:
        state = await stack.http.get(f"/transitions/{tid}")
        assert state.status_code == 200 and state.json()["period_ends_at"]

    await assert_eventually(planned)
    base = str(stack.http.base_url).rstrip("/")
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    async with page.expect_navigation():  # the code is exchanged for a session, then /
        await page.goto(await stack.login_url(NURSE, "care_manager"))
    assert page.url == f"{base}/", await page.locator("main").inner_text()

    # The worklist says who the patient is.
    await page.goto(f"{base}/?facility={patient.facility}&view=all")
    row = page.locator(f'#worklist tr[data-transition="{tid}"]')
    text = await row.inner_text()
    assert f"LUCIA M {patient.family}" in text and "72 F" in text
    assert patient.mrn in text and patient.phone in text
    save(tmp_path, "worklist-patients.png", await page.screenshot(full_page=True))

    # Found by surname prefix, MRN and birth date (blind indexes, nothing decrypted).
    for query in (patient.family[:9].lower(), patient.mrn, patient.born.strftime("%m/%d/%Y")):
        await page.goto(f"{base}/")
        await page.fill("#patient-search", query)
        async with page.expect_navigation():
            await page.press("#patient-search", "Enter")
        assert await page.locator(f'#worklist tr[data-transition="{tid}"]').count() == 1, query
    save(tmp_path, "search.png", await page.screenshot(full_page=True))

    # An A08 with a new phone and an A40 merging the duplicate record show on the page.
    update = patient.message(patient.mrn, "V-STAY").replace(
        patient.phone.encode(), patient.new_phone.encode()
    )
    await accepted(stack, with_event(update, "A08"))
    await accepted(stack, patient.merge())

    async def shown_updated() -> None:
        await page.goto(f"{base}/ui/transitions/{tid}")
        header = await page.locator("#patient").inner_text()
        assert patient.new_phone in header and patient.phone not in header
        assert f"merged from MRN {patient.duplicate_mrn}" in header

    await assert_eventually(shown_updated)

    async with page.expect_navigation():  # claimed, then the page reloads
        await page.click("#claim")
    await page.locator("#owner", has_text=NURSE).wait_for()
    save(tmp_path, "claim.png", await page.screenshot(full_page=True))

    visit = datetime.now(UTC) + timedelta(days=3)
    form = page.locator("#call-form")
    await form.locator('input[name="medication_problems"][value="yes"]').check()
    await form.locator('input[name="medication_notes"]').fill("not taking the new inhaler")
    await form.locator('input[name="appointment_at"]').fill(visit.strftime("%Y-%m-%dT10:30"))
    await form.locator('input[name="red_flags"][value="shortness_of_breath"]').check()
    await form.locator('input[name="note"]').fill("spoke with the patient")
    save(tmp_path, "call-outcome.png", await page.screenshot(full_page=True))
    async with page.expect_navigation():
        await form.locator('button[type="submit"]').click()
    call = await page.locator("#calls li.call").first.inner_text()
    assert "reached patient; medication problems found; appointment booked" in call
    assert "not taking the new inhaler" in call
    contact = page.locator('#steps tr[data-step="interactive_contact"] .status')
    assert "completed" in await contact.inner_text()
    assert await page.locator('#steps tr[data-step="follow_up_visit"] .appointment').count() == 1

    await page.fill('#note-form input[name="text"]', "daughter visits on Sundays")
    async with page.expect_navigation():
        await page.click('#note-form button[type="submit"]')
    await page.locator("#notes li.note", has_text="daughter visits on Sundays").wait_for()

    async def clinician_paged() -> None:  # the red flag, at once, naming no symptom
        role = await stack.services.pool.fetchval(
            "SELECT role FROM notifications WHERE transition_id = $1 AND level = 0", tid
        )
        assert role == "clinician"

    await assert_eventually(clinician_paged)

    # The plan the patient takes home: her name and birth date, the visit with its time.
    await page.goto(f"{base}/ui/transitions/{tid}/care-plan/print")
    plan = await page.locator("body").inner_text()
    assert f"LUCIA M {patient.family}" in plan
    assert "10:30" in plan and "23:59" not in plan
    assert patient.born.strftime("%B") in plan  # the birth date, in words
    save(tmp_path, "printable-plan.png", await page.screenshot(full_page=True))
