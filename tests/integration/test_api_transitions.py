"""The transition API on the real stack: worklist filters over the projection, timeline, and
every step action through the workflow's Updates (accepted, refused 409, invalid 422)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from tests.helpers import a03, assert_eventually, transition_of
from tests.integration.conftest import RunningStack
from workers.runtime.settings import Settings


async def discharge(
    stack: RunningStack, settings: Settings, facility: str, days_ago: int = 0, **kw: Any
) -> str:
    when = (datetime.now() - timedelta(days=days_ago)).strftime("%Y%m%d%H%M%S")
    visit = f"V{uuid.uuid4().hex[:8]}"
    response = await stack.post_adt(a03(facility=facility, visit=visit, discharged=when, **kw))
    assert "|AA|" in response.text, response.text
    tid = transition_of(settings, facility, visit)

    async def projected() -> None:
        row = await stack.services.pool.fetchrow(
            "SELECT steps FROM transitions WHERE transition_id = $1", tid
        )
        assert row is not None and row["steps"] != "[]"

    await assert_eventually(projected)
    return tid


async def test_worklist_filters_sort_and_page(stack: RunningStack, settings: Settings) -> None:
    facility = f"WL{uuid.uuid4().hex[:6].upper()}"
    fresh = await discharge(stack, settings, facility)
    old = await discharge(stack, settings, facility, days_ago=8)  # contact overdue, escalated
    home_health = await discharge(stack, settings, facility, disposition="06")

    async def overdue_listed() -> None:
        r = await stack.http.get("/transitions", params={"facility": facility, "overdue": "true"})
        assert [t["transition_id"] for t in r.json()] == [old]

    await assert_eventually(overdue_listed)
    everything = await stack.http.get("/transitions", params={"facility": facility})
    assert everything.headers["X-Total-Count"] == "3"
    assert {t["transition_id"] for t in everything.json()} == {fresh, old, home_health}
    not_overdue = await stack.http.get(
        "/transitions", params={"facility": facility, "overdue": "false"}
    )
    assert {t["transition_id"] for t in not_overdue.json()} == {fresh, home_health}
    by_protocol = await stack.http.get(
        "/transitions", params={"facility": facility, "protocol": "discharge-home-health"}
    )
    assert [t["transition_id"] for t in by_protocol.json()] == [home_health]
    escalated_first = await stack.http.get(
        "/transitions", params={"facility": facility, "sort": "escalation", "page_size": 1}
    )
    assert [t["transition_id"] for t in escalated_first.json()] == [old]
    assert escalated_first.headers["X-Total-Count"] == "3"
    page_two = await stack.http.get(
        "/transitions",
        params={"facility": facility, "sort": "escalation", "page_size": 1, "page": 2},
    )
    assert len(page_two.json()) == 1 and page_two.json()[0]["transition_id"] != old
    recent = await stack.http.get(
        "/transitions",
        params={
            "facility": facility,
            "discharged_from": (datetime.now() - timedelta(days=1)).date().isoformat(),
        },
    )
    assert {t["transition_id"] for t in recent.json()} == {fresh, home_health}
    bad = await stack.http.get("/transitions", params={"sort": "random"})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


async def test_every_step_action_and_the_timeline(stack: RunningStack, settings: Settings) -> None:
    tid = await discharge(stack, settings, f"ACT{uuid.uuid4().hex[:6].upper()}")
    base = f"/transitions/{tid}"
    state = (await stack.http.get(base)).json()
    steps = {s["step_id"]: s for s in state["steps"]}
    rn_a, sup_k = await stack.as_person("rn.a"), await stack.as_person("sup.k")

    attempt = await stack.http.post(
        f"{base}/steps/interactive_contact/attempts", headers=rn_a, json={"result": "no_answer"}
    )
    assert attempt.status_code == 200 and attempt.json()["attempts"][0]["result"] == "no_answer"
    moved = await stack.http.post(
        f"{base}/steps/follow_up_visit/reassign", headers=sup_k, json={"to": "rn.b"}
    )
    assert moved.json()["assignee"] == "rn.b"
    limit = datetime.fromisoformat(steps["medication_reconciliation"]["limit_at"])
    due = datetime.fromisoformat(steps["medication_reconciliation"]["due_at"])
    snoozed = await stack.http.post(
        f"{base}/steps/medication_reconciliation/snooze",
        headers=rn_a,
        json={"until": (due + timedelta(days=2)).isoformat(), "reason": "pharmacy"},
    )
    assert snoozed.status_code == 200, snoozed.text
    too_far = await stack.http.post(
        f"{base}/steps/medication_reconciliation/snooze",
        headers=rn_a,
        json={"until": (limit + timedelta(days=1)).isoformat(), "reason": "x"},
    )
    assert too_far.status_code == 409 and "past its deadline" in too_far.json()["detail"]
    cancelled = await stack.http.post(
        f"{base}/steps/follow_up_visit/cancel", headers=sup_k, json={"reason": "seen at home"}
    )
    assert cancelled.json()["status"] == "cancelled"
    note = await stack.http.post(f"{base}/notes", headers=rn_a, json={"text": "call after 5"})
    assert note.status_code == 200 and note.json()["text"] == "call after 5"
    reached = await stack.http.post(
        f"{base}/steps/interactive_contact/attempts", headers=rn_a, json={"result": "reached"}
    )
    assert reached.json()["status"] == "completed"
    unknown = await stack.http.post(f"{base}/steps/dance/complete", headers=rn_a, json={})
    assert unknown.status_code == 409 and "Unknown step 'dance'" in unknown.json()["detail"]
    impostor = await stack.http.post(f"{base}/notes", headers=rn_a, json={"by": "x", "text": "y"})
    assert impostor.json()["by"] == "rn.a"  # the credential's subject, not the body's
    blank = await stack.http.post(f"{base}/notes", headers=rn_a, json={"text": ""})
    assert blank.status_code == 422
    bad_result = await stack.http.post(
        f"{base}/steps/interactive_contact/attempts", headers=rn_a, json={"result": "maybe"}
    )
    assert bad_result.status_code == 422
    gone = await stack.http.post(
        "/transitions/ffffffffffffffffffffffff/notes", headers=rn_a, json={"text": "x"}
    )
    assert gone.status_code == 404

    async def timeline_complete() -> None:
        events = (await stack.http.get(f"{base}/timeline")).json()
        kinds = [e["kind"] for e in events]
        for expected in ("started", "attempt", "reassigned", "snoozed", "cancelled", "note"):
            assert expected in kinds
        assert kinds.count("completed") == 1
        assert {"rn.a", "sup.k"} <= {e["actor"] for e in events}  # who called, each time

    await assert_eventually(timeline_complete)
    mine = await stack.http.get("/transitions", params={"assignee": "rn.b"})
    assert tid not in [t["transition_id"] for t in mine.json()]  # that step was cancelled


async def test_protocols_endpoint(stack: RunningStack) -> None:
    protocols = (await stack.http.get("/protocols")).json()
    assert {p["id"] for p in protocols} >= {"discharge-home", "facility-handoff", "expired"}
    openapi = (await stack.http.get("/openapi.json")).json()
    assert "/transitions/{transition_id}/steps/{step_id}/snooze" in openapi["paths"]


async def test_a_retried_action_with_the_same_idempotency_key_acts_once(
    stack: RunningStack, settings: Settings
) -> None:
    tid = await discharge(stack, settings, f"IDEM{uuid.uuid4().hex[:5].upper()}")
    url = f"/transitions/{tid}/steps/interactive_contact/attempts"
    body = {"result": "no_answer"}
    headers = {"Idempotency-Key": f"call-{uuid.uuid4().hex}"}
    first = await stack.http.post(url, json=body, headers=headers)
    again = await stack.http.post(url, json=body, headers=headers)  # the client's retry
    assert first.status_code == again.status_code == 200, first.text
    assert again.json() == first.json()
    state = (await stack.http.get(f"/transitions/{tid}")).json()
    [contact] = [s for s in state["steps"] if s["step_id"] == "interactive_contact"]
    assert len(contact["attempts"]) == 1  # one real call: one attempt, not two

    other = await stack.http.post(url, json=body, headers={"Idempotency-Key": "call-2"})
    assert other.status_code == 200
    unkeyed = await stack.http.post(url, json=body)
    assert unkeyed.status_code == 200
    state = (await stack.http.get(f"/transitions/{tid}")).json()
    [contact] = [s for s in state["steps"] if s["step_id"] == "interactive_contact"]
    assert len(contact["attempts"]) == 3

    refused = await stack.http.post(url, json=body, headers={"Idempotency-Key": "no spaces"})
    assert refused.status_code == 422
