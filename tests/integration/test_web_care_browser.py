"""A care manager's claim and call outcome in headless Chromium, signed in with a token (so
it holds whether or not development requires a login): claim the transition, record a call
that reached the patient with a booked appointment and a red flag, add a note, and see them
on the page. Screenshots go to docs/ with CAREBRIDGE_UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas import keys
from store import security
from tests.helpers import a03, assert_eventually, with_person_fields
from tests.integration.conftest import RunningStack
from tests.integration.test_web_browser import browser, save  # noqa: F401 (the fixture)
from workers.runtime.settings import Settings

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}


async def test_claim_and_record_a_call_in_the_browser(
    browser: Any,  # noqa: F811
    stack: RunningStack,
    settings: Settings,
    tmp_path: Path,
) -> None:
    pool = stack.services.pool
    _, nurse = await security.create_token(
        pool, name="browser rn", subject="rn.browser", role="care_manager"
    )
    _, feed = await security.create_token(
        pool, name="browser feed", subject="f", role="integration"
    )
    facility, visit = f"WEBC{uuid.uuid4().hex[:5].upper()}", "V1"
    sent = await stack.http.post(
        "/adt",
        content=with_person_fields(a03(facility=facility, visit=visit)),
        headers={**ER7, "Authorization": f"Bearer {feed}"},
    )
    assert "|AA|" in sent.text, sent.text
    secret = settings.key_secret.get_secret_value()
    tid = keys.transition_id(keys.encounter_key(secret, facility, visit))
    reader = {"Authorization": f"Bearer {nurse}"}

    async def planned() -> None:
        state = await stack.http.get(f"/transitions/{tid}", headers=reader)
        assert state.status_code == 200 and state.json()["period_ends_at"]

    await assert_eventually(planned)
    base = str(stack.http.base_url).rstrip("/")
    page = await browser.new_page(viewport={"width": 1280, "height": 1400})
    await page.goto(f"{base}/login")
    await page.fill('input[name="token"]', nurse)
    async with page.expect_navigation():
        await page.click('#login button[type="submit"]')
    assert page.url == f"{base}/", await page.locator("main").inner_text()

    await page.goto(f"{base}/ui/transitions/{tid}")
    async with page.expect_navigation():  # saved, then the page reloads
        await page.click("#claim")
    await page.locator("#owner", has_text="rn.browser").wait_for()
    save(tmp_path, "claim.png", await page.screenshot(full_page=True))

    appointment = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT10:30")
    form = page.locator("#call-form")
    await form.locator('input[name="medication_problems"][value="yes"]').check()
    await form.locator('input[name="medication_notes"]').fill("not taking the new inhaler")
    await form.locator('input[name="appointment_at"]').fill(appointment)
    await form.locator('input[name="red_flags"][value="shortness_of_breath"]').check()
    await form.locator('input[name="note"]').fill("spoke with the patient")
    save(tmp_path, "call-outcome.png", await page.screenshot(full_page=True))
    async with page.expect_navigation():
        await form.locator('button[type="submit"]').click()
    calls = page.locator("#calls li.call")
    await calls.first.wait_for()
    text = await calls.first.inner_text()
    assert "reached patient; medication problems found; appointment booked" in text
    assert "not taking the new inhaler" in text
    contact = page.locator('#steps tr[data-step="interactive_contact"] .status')
    assert "completed" in await contact.inner_text()
    assert await page.locator('#steps tr[data-step="follow_up_visit"] .appointment').count() == 1

    await page.fill('#note-form input[name="text"]', "daughter visits on Sundays")
    async with page.expect_navigation():
        await page.click('#note-form button[type="submit"]')
    await page.locator("#notes li.note", has_text="daughter visits on Sundays").wait_for()

    async def paged() -> None:
        role = await pool.fetchval(
            "SELECT role FROM notifications WHERE transition_id = $1 AND level = 0", tid
        )
        assert role == "clinician"

    await assert_eventually(paged)
