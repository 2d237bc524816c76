"""The web worklist in a real headless browser (Debian's chromium driven by playwright):
sign in with a one-time URL, load the worklist, open a transition, complete a step as the
signed-in person, see it move; and the dashboard.

Screenshots are written to the test's temp folder, and to docs/ when
CAREBRIDGE_UPDATE_SCREENSHOTS=1 (the README shows those)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from schemas import keys
from tests.helpers import a03, assert_eventually, with_person_fields
from tests.integration.conftest import RunningStack
from tests.integration.test_care_plan import SCREENING
from workers.runtime.settings import Settings

CHROMIUM = "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parents[2] / "docs"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (a stat, once)
        pytest.skip("chromium is not installed: run 'apt-get install chromium' (Debian) to run it")
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


def save(path: Path, name: str, shot: bytes) -> None:
    path.joinpath(name).write_bytes(shot)
    if os.environ.get("CAREBRIDGE_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copy(path / name, DOCS / name)


async def test_worklist_open_complete_and_see_it_move(
    browser: Any, stack: RunningStack, settings: Settings, tmp_path: Path
) -> None:
    facility = f"WEB{uuid.uuid4().hex[:5].upper()}"
    for n in range(3):
        await stack.post_adt(a03(facility=facility, visit=f"V{n}"))
    for days_ago in (1, 4, 9):  # discharges that arrive late: steps missed before arrival
        when = datetime.now(UTC) - timedelta(days=days_ago)
        await stack.post_adt(a03(facility=facility, visit=f"OLD{days_ago}", discharged=when))
    # Home health, 3 s before its 24-hour referral deadline: it escalates (a coloured row).
    when = datetime.now(UTC) - timedelta(hours=24) + timedelta(seconds=3)
    await stack.post_adt(a03(facility=facility, visit="HH", disposition="06", discharged=when))

    def transition_of(visit: str) -> str:
        secret = settings.key_secret.get_secret_value()
        return keys.transition_id(keys.encounter_key(secret, facility, visit))

    tid = transition_of("V0")
    base = str(stack.http.base_url).rstrip("/")

    async def listed() -> None:
        rows = (await stack.http.get("/transitions", params={"facility": facility})).json()
        assert len(rows) == 7 and all(r["current_step"] for r in rows)
        assert max(r["escalation_level"] for r in rows) == 1

    await assert_eventually(listed)
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(f"{base}/?facility={facility}")
    assert await page.locator("form#login").count() == 1  # no session: the login page
    assert tid not in await page.content()
    await page.goto(await stack.login_url("rn.alvarez", "care_manager"))
    await page.wait_for_url(f"{base}/")
    assert "rn.alvarez" in await page.locator("#signed-in-as").inner_text()
    await page.goto(f"{base}/?facility={facility}")
    row = page.locator(f'tr[data-transition="{tid}"]')
    assert await row.locator(".current-step").inner_text() == "interactive_contact"
    late = page.locator(f'tr[data-transition="{transition_of("OLD9")}"]')
    assert "interactive_contact (missed before arrival)" in await late.inner_text()
    save(tmp_path, "worklist.png", await page.screenshot(full_page=True))
    await page.goto(f"{base}/ui/transitions/{transition_of('OLD9')}")
    assert "arrived late" in await page.locator("main, body").first.inner_text()
    contact = page.locator('#steps tr[data-step="interactive_contact"] .status')
    assert "missed before arrival" in await contact.inner_text()
    await page.goto(f"{base}/?facility={facility}")

    await row.click()
    await page.wait_for_url(f"**/ui/transitions/{tid}")
    assert await page.locator("#actor").count() == 0  # no "Acting as": the session says who
    step = page.locator('#steps tr[data-step="interactive_contact"]')
    await step.locator("button.complete").click()
    await page.locator("#message.ok").wait_for()
    await page.wait_for_load_state("load")

    async def completed() -> None:
        await page.reload()
        status = await page.locator(
            '#steps tr[data-step="interactive_contact"] .status'
        ).inner_text()
        assert "completed" in status

    await assert_eventually(completed)
    assert "rn.alvarez" in await step.inner_text()  # completed by the signed-in person
    assert "completed" in await page.locator("#timeline").inner_text()
    save(tmp_path, "transition.png", await page.screenshot(full_page=True))

    async def moved() -> None:
        await page.goto(f"{base}/?facility={facility}")
        current = await page.locator(f'tr[data-transition="{tid}"] .current-step').inner_text()
        assert current == "social_needs_screening"  # the next one due

    await assert_eventually(moved)

    # A refused action shows the workflow's message, not a crash: here the step was completed
    # elsewhere after the page was loaded.
    await page.goto(f"{base}/ui/transitions/{tid}")
    done = await stack.http.post(
        f"/transitions/{tid}/steps/medication_reconciliation/complete", json={}
    )
    assert done.status_code == 200, done.text
    await page.locator('#steps tr[data-step="medication_reconciliation"] button.complete').click()
    message = page.locator("#message.error")
    await message.wait_for()
    assert "already completed" in await message.inner_text()

    await page.goto(f"{base}/dashboard")
    assert await page.locator("svg.chart").count() == 5
    assert "Discharges per day" in await page.content()
    save(tmp_path, "dashboard.png", await page.screenshot(full_page=True))


async def test_care_plan_page_reads_as_a_plan_and_prints_without_the_chrome(
    browser: Any, stack: RunningStack, settings: Settings, tmp_path: Path
) -> None:
    facility = f"PLAN{uuid.uuid4().hex[:4].upper()}"
    await stack.post_adt(with_person_fields(a03(facility=facility, visit="V1")))
    tid = keys.transition_id(
        keys.encounter_key(settings.key_secret.get_secret_value(), facility, "V1")
    )
    api = f"/transitions/{tid}"

    async def planned() -> None:
        assert (await stack.http.get(f"{api}/care-plan")).status_code == 200

    await assert_eventually(planned)
    plan = (await stack.http.get(f"{api}/care-plan")).json()
    caregiver = plan["caregivers"][0] | {"consent_to_contact": True, "manages_medications": True}
    profile = plan["profile"] | {
        "caregivers": [caregiver],
        "interpreter_needed": True,
        "preferred_channel": "phone",
        "contact_window": {"start": "09:00", "end": "11:00"},
        "goals_of_care": "Get back to gardening and see my grandchildren",
    }
    saved = await stack.http.put(f"{api}/profile", json={"profile": profile})
    assert saved.status_code == 200, saved.text

    base = str(stack.http.base_url).rstrip("/")
    page = await browser.new_page(viewport={"width": 1100, "height": 900})
    await page.goto(await stack.login_url("rn.alvarez", "care_manager"))
    await page.goto(f"{base}/ui/transitions/{tid}")
    reach = await page.locator('#steps tr[data-step="interactive_contact"] .reach').inner_text()
    assert "Spanish (interpreter)" in reach and "caregiver JOHN DOE (spouse) (617)555-0142" in reach
    await page.click("#care-plan-link")
    await page.wait_for_url(f"**/ui/transitions/{tid}/care-plan")
    assert "Social needs screening not done yet" in await page.locator("#barriers").inner_text()

    # The care manager records the screening in the form: food and transportation positive.
    for name, value in SCREENING["answers"].items():
        if isinstance(value, list):
            continue  # housing problems: none ticked
        option = ("yes" if value else "no") if isinstance(value, bool) else value
        await page.select_option(f'#screening-form select[name="{name}"]', option)
    await page.click('#screening-form button[type="submit"]')
    referral = page.locator('.referral[data-step="referral_food"]')
    await referral.wait_for()
    assert await page.locator(".referral").count() == 2  # food and transportation only
    await referral.locator(".resource").select_option("food-bank-home-delivery")
    await referral.locator("button").click()
    await page.locator('.referral[data-step="referral_food"]').wait_for(state="detached")
    text = await page.locator("#care-plan").inner_text()
    assert "Get back to gardening" in text
    assert "Food insecurity — referral completed" in text
    assert "Transportation problems — referral open" in text
    assert "Regional Food Bank home delivery (connected)" in text
    assert "JOHN DOE (spouse)" in text and "manages medicines" in text
    assert "Language: Spanish (an interpreter will join)" in text
    goals = await page.locator("#goals li").all_inner_texts()
    assert any(goal.startswith("Interactive contact") for goal in goals)
    save(tmp_path, "care-plan.png", await page.screenshot(full_page=True))

    await page.emulate_media(media="print")
    assert not await page.locator("header").is_visible()
    assert not await page.locator("button").first.is_visible()
    assert not await page.locator("#care-plan").is_visible()  # the staff's view: not printed
    assert await page.locator("#print-hint").is_visible()
    assert not await page.locator("#record").is_visible()

    # The patient's printable plan: in Spanish (PID-15 SPA), without the chrome when printed.
    await page.emulate_media(media="screen")
    await page.click("#print-link")
    await page.wait_for_url(f"**/ui/transitions/{tid}/care-plan/print")
    printed = await page.locator("#patient-plan").inner_text()
    assert "Su plan de cuidado después del hospital" in printed
    assert "JOHN DOE (cónyuge)" in printed
    save(tmp_path, "printable-plan-es.png", await page.screenshot(full_page=True))
    await page.emulate_media(media="print")
    assert not await page.locator("#print").is_visible()
