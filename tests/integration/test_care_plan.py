"""The person behind the discharge on the real stack: language and caregiver from the ADT in
the care plan, a screening with two positive domains opening two referral steps that escalate
while open and close with a resource from the directory, and the social-needs report."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.protocol import DueRule, DueUnit, EscalationLevel, Protocol, StepKind, StepRule
from schemas.social_needs import HrsnDomain
from tests.helpers import a03, assert_eventually, msa, start_direct, with_person_fields
from tests.integration.conftest import RunningStack, assert_projected
from tests.workflow.support import FOOD_AND_TRANSPORT

LADDER = (EscalationLevel(level=1, role="care_manager", channel="worklist"),)


def referral(domain: HrsnDomain, short: str) -> StepRule:
    return StepRule(
        id=f"referral_{short}",
        title=f"referral {short}",
        kind=StepKind.REFERRAL,
        referral_for=domain,
        due=DueRule(unit=DueUnit.HOURS, amount=0, after="social_needs_screening"),
        escalation=LADDER,
    )


# Referrals due the moment the screening is recorded, so escalation needs no waiting.
NEEDS_AT_ONCE = Protocol(
    id="needs-at-once",
    version=1,
    title="screening, referrals due at once",
    tcm=False,
    steps=(
        StepRule(
            id="social_needs_screening",
            title="screening",
            kind=StepKind.SCREENING,
            due=DueRule(unit=DueUnit.HOURS, amount=48),
        ),
        referral(HrsnDomain.FOOD, "food"),
        referral(HrsnDomain.TRANSPORTATION, "transportation"),
        referral(HrsnDomain.HOUSING, "housing"),
    ),
)
SCREENING = {"answers": FOOD_AND_TRANSPORT.model_dump(mode="json")}


async def test_language_and_caregiver_from_the_adt_reach_the_care_plan(
    stack: RunningStack,
) -> None:
    facility = f"CP{uuid.uuid4().hex[:4].upper()}"
    response = await stack.post_adt(with_person_fields(a03(facility=facility)))
    assert msa(response.text)[1] == "AA"
    await assert_projected(stack.services.pool, facility, 1, within=60)
    tid = await stack.services.pool.fetchval(
        "SELECT transition_id FROM transitions WHERE facility = $1", facility
    )
    plan = (await stack.http.get(f"/transitions/{tid}/care-plan")).json()
    assert plan["profile"]["language"] == "SPA"
    assert [(c["name"], c["relationship"], c["phone"]) for c in plan["caregivers"]] == [
        ("JOHN DOE", "SPO", "(617)555-0142")
    ]
    assert not plan["screened"]
    outreach = {s["step_id"]: s for s in plan["steps"]}["interactive_contact"]
    assert outreach["owner"] == "care manager" and outreach["due_at"]
    assert outreach["reach"]["language"] == "SPA"
    assert outreach["reach"]["caregivers"] == []  # no consent from the ADT

    # The care manager records what the ADT cannot say: consent, window, what matters.
    profile = plan["profile"] | {
        "caregivers": [plan["caregivers"][0] | {"consent_to_contact": True}],
        "contact_window": {"start": "09:00", "end": "10:00"},
        "goals_of_care": "be home for my granddaughter's wedding",
        "interpreter_needed": True,
    }
    saved = await stack.http.put(f"/transitions/{tid}/profile", json={"profile": profile})
    assert saved.status_code == 200, saved.text
    bad = await stack.http.put(
        f"/transitions/{tid}/profile",
        json={
            "profile": {"contact_window": {"start": "10:00", "end": "09:00"}},
        },
    )
    assert bad.status_code == 422 and "must end after it starts" in bad.json()["detail"]
    plan = (await stack.http.get(f"/transitions/{tid}/care-plan")).json()
    assert plan["what_matters"] == "be home for my granddaughter's wedding"
    assert plan["caregivers"][0]["consent_to_contact"] is True
    reach = {s["step_id"]: s for s in plan["steps"]}["interactive_contact"]["reach"]
    assert [(c["name"], c["phone"]) for c in reach["caregivers"]] == [("JOHN DOE", "(617)555-0142")]
    assert reach["window"] == "09:00-10:00"
    assert {s["step_id"]: s for s in plan["steps"]}["medication_reconciliation"]["reach"] is None

    # An attempt outside the preferred hours is recorded, and flagged on the plan.
    attempt = await stack.http.post(
        f"/transitions/{tid}/steps/interactive_contact/attempts",
        json={"result": "no_answer"},
    )
    assert attempt.status_code == 200
    plan = (await stack.http.get(f"/transitions/{tid}/care-plan")).json()
    [made] = {s["step_id"]: s for s in plan["steps"]}["interactive_contact"]["attempts"]
    local_hour = datetime.fromisoformat(made["at"]).hour
    assert made["outside_contact_window"] is (local_hour != 9)


async def test_two_positive_domains_open_two_referrals_that_escalate_and_close_with_a_resource(
    stack: RunningStack,
) -> None:
    tid = f"needs{uuid.uuid4().hex[:19]}"
    facility = f"ND{uuid.uuid4().hex[:4].upper()}"
    await start_direct(
        stack.services.client,
        stack.services.settings.task_queue,
        NEEDS_AT_ONCE,
        facility=facility,
        discharged_at=datetime.now(UTC),
        tid=tid,
    )
    await assert_projected(stack.services.pool, facility, 1, within=60)
    base = f"/transitions/{tid}"
    screened = await stack.http.post(
        f"{base}/steps/social_needs_screening/screening", json=SCREENING
    )
    assert screened.status_code == 200, screened.text
    assert screened.json()["positive"] == ["food_insecurity", "transportation"]

    async def escalated() -> None:
        rows = await stack.services.pool.fetch(
            "SELECT step_id, level FROM notifications WHERE transition_id = $1 ORDER BY step_id",
            tid,
        )
        assert [(r["step_id"], r["level"]) for r in rows] == [
            ("referral_food", 1),
            ("referral_transportation", 1),
        ]

    await assert_eventually(escalated, within=60, interval=0.5)
    steps = {s["step_id"]: s for s in (await stack.http.get(base)).json()["steps"]}
    assert steps["referral_housing"]["status"] == "not_needed"
    assert steps["referral_food"]["escalation_level"] == 1

    wrong = await stack.http.post(
        f"{base}/steps/referral_transportation/referral",
        json={"resource_id": "food-bank-home-delivery", "outcome": "connected"},
    )
    assert wrong.status_code == 409 and "serves food_insecurity" in wrong.json()["detail"]
    unknown = await stack.http.post(
        f"{base}/steps/referral_food/referral",
        json={"resource_id": "no-such-place", "outcome": "connected"},
    )
    assert unknown.status_code == 422
    closed = await stack.http.post(
        f"{base}/steps/referral_food/referral",
        json={"resource_id": "food-bank-home-delivery", "outcome": "connected"},
    )
    assert closed.status_code == 200, closed.text
    plan = (await stack.http.get(f"{base}/care-plan")).json()
    assert [(b["domain"], b["referral_status"]) for b in plan["barriers"]] == [
        ("food_insecurity", "completed"),
        ("transportation", "open"),
    ]
    assert [r["resource"]["name"] for r in plan["resources_connected"]] == [
        "Regional Food Bank home delivery"
    ]


async def test_social_needs_report_counts_found_and_connected_by_domain(
    stack: RunningStack,
) -> None:
    facility = f"SN{uuid.uuid4().hex[:4].upper()}"
    discharged = datetime.now(UTC) - timedelta(hours=2)
    discharged_on = discharged.astimezone(ZoneInfo("America/New_York")).date()  # site zone
    response = await stack.post_adt(a03(facility=facility, discharged=discharged))
    assert msa(response.text)[1] == "AA"
    await assert_projected(stack.services.pool, facility, 1, within=60)
    tid = await stack.services.pool.fetchval(
        "SELECT transition_id FROM transitions WHERE facility = $1", facility
    )
    base = f"/transitions/{tid}"
    assert (
        await stack.http.post(f"{base}/steps/social_needs_screening/screening", json=SCREENING)
    ).status_code == 200
    assert (
        await stack.http.post(
            f"{base}/steps/referral_food/referral",
            json={"resource_id": "food-bank-home-delivery", "outcome": "connected"},
        )
    ).status_code == 200

    async def reported() -> dict[str, object]:
        body = (
            await stack.http.get(
                "/reports/social-needs",
                params={
                    "from": (discharged_on - timedelta(days=1)).isoformat(),
                    "to": (discharged_on + timedelta(days=1)).isoformat(),
                    "facility": facility,
                },
            )
        ).json()
        assert body["summary"]["by_domain"].get("food_insecurity", {}).get("connected") == 1
        return dict(body)

    body = await assert_eventually(reported, within=30, interval=0.5)
    summary = body["summary"]
    assert summary["screened"] == 1 and summary["positive_screens"] == 1
    assert summary["by_domain"] == {
        "food_insecurity": {"found": 1, "connected": 1},
        "transportation": {"found": 1, "connected": 0},
    }
    assert summary["positive_with_resource_connected_within_14_days_pct"] == 100.0
    assert body["rows"][0]["positive_domains"] == "food_insecurity;transportation"
    assert date.fromisoformat(body["rows"][0]["discharged_on"]) == discharged_on
