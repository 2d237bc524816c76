"""What staff type stays out of the plain-text projection (issue 18 item 13): a completion's
outcome and a cancel reason may name the patient; the projection (timeline and step
summaries) keeps a placeholder, the workflow keeps the text and the transition page shows it."""

from __future__ import annotations

import uuid

from tests.helpers import assert_eventually
from tests.integration.conftest import RunningStack, discharged_and_planned

NAME = "ZELDAQUIXOTE"


async def test_typed_outcomes_and_reasons_reach_the_page_but_not_the_projection(
    stack: RunningStack,
) -> None:
    facility = f"TXT{uuid.uuid4().hex[:5].upper()}"
    tid = await discharged_and_planned(stack.http, stack.services.settings, facility)
    steps = f"/transitions/{tid}/steps"
    done = await stack.http.post(
        f"{steps}/interactive_contact/complete",
        json={"outcome": f"spoke with {NAME}"},
    )
    cancelled = await stack.http.post(
        f"{steps}/follow_up_visit/cancel", json={"reason": f"{NAME} seen elsewhere"}
    )
    assert (done.status_code, cancelled.status_code) == (200, 200), (done.text, cancelled.text)
    pool = stack.services.pool

    async def projected() -> None:
        kinds = await pool.fetch("SELECT kind FROM transition_events WHERE transition_id = $1", tid)
        assert {"completed", "cancelled"} <= {r["kind"] for r in kinds}

    await assert_eventually(projected)
    leaked = await pool.fetchval(
        "SELECT count(*) FROM transition_events WHERE transition_id = $1 AND detail LIKE $2",
        tid,
        f"%{NAME}%",
    )
    steps_text = await pool.fetchval(
        "SELECT steps::text FROM transitions WHERE transition_id = $1", tid
    )
    assert leaked == 0 and NAME not in steps_text
    page = await stack.http.get(f"/ui/transitions/{tid}")
    assert f"spoke with {NAME}" in page.text and f"{NAME} seen elsewhere" in page.text
