"""Cancel events in the order HL7 chapter 3 gives them (issue 15 item 13): an A11 after the
visit's discharge cancels nothing (A13 cancels a discharge, then A11 the admission), and an
A12 (cancel transfer) reaches the transition, which an A02 did before it."""

from __future__ import annotations

import uuid

from schemas import keys
from schemas.transition import TransitionStatus
from tests.helpers import MllpClient, a03, msa, with_event, with_field
from tests.integration.conftest import RunningStack
from workers.runtime.settings import Settings
from workflows.transition import TransitionWorkflow


async def test_an_a11_after_the_discharge_keeps_the_transition_and_an_a12_reaches_it(
    stack: RunningStack, settings: Settings
) -> None:
    facility, visit = f"CXL{uuid.uuid4().hex[:6].upper()}", "V-CXL"
    discharge = a03(facility=facility, visit=visit)
    transfer = with_field(with_event(a03(facility=facility, visit=visit), "A02"), "PV1", 3, "5E")
    cancel_transfer = with_field(
        with_event(a03(facility=facility, visit=visit), "A12", "ADT_A12"), "PV1", 3, "4W"
    )
    cancel_admit = with_event(a03(facility=facility, visit=visit), "A11", "ADT_A09")
    client = await MllpClient.connect(stack.mllp_port)
    try:
        answers = [
            msa(await client.exchange(raw))
            for raw in (discharge, transfer, cancel_transfer, cancel_admit)
        ]
    finally:
        await client.close()
    assert [a[1] for a in answers] == ["AA"] * 4
    assert answers[2][3] == "A12 delivered to the transition"
    assert "stays open" in answers[3][3]
    transition = keys.transition_id(
        keys.encounter_key(settings.key_secret.get_secret_value(), facility, visit)
    )
    handle = stack.services.client.get_workflow_handle(keys.workflow_id(transition))
    state = await handle.query(TransitionWorkflow.get_state)
    assert state.status == TransitionStatus.ACTIVE
