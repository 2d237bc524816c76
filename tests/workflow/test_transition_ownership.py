"""A transition has an owner: a care manager claims it for themselves, a supervisor assigns it
to anyone; the same owner again changes nothing; refusals read as sentences and leave no
trace (a closed transition is refused by the API: test_ownership.py); an A08's numbers
replace the profile's phones."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.person import PersonProfile
from schemas.transition import AdtSignal, AssignRequest, ProfileRequest
from tests.workflow.support import RECORDS, discharged_on
from tests.workflow.test_transition_updates import rejected
from workflows.transition import TransitionWorkflow


def owners_published(transition_id: str) -> list[str | None]:
    return [r.owner for r in RECORDS if r.transition_id == transition_id]


async def test_a_claim_makes_the_care_manager_the_owner_once(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    tid = (await handle.query(TransitionWorkflow.get_state)).transition_id
    first = await handle.execute_update(
        TransitionWorkflow.assign_transition, AssignRequest(by="rn.alvarez", to="rn.alvarez")
    )
    assert first.owner == "rn.alvarez" and first.changed
    published = len(owners_published(tid))
    again = await handle.execute_update(
        TransitionWorkflow.assign_transition, AssignRequest(by="rn.alvarez", to="rn.alvarez")
    )
    assert again.owner == "rn.alvarez" and not again.changed and again.since == first.since
    assert len(owners_published(tid)) == published, "a repeated claim published nothing"
    state = await handle.query(TransitionWorkflow.get_state)
    assert (state.owner, state.owner_since) == ("rn.alvarez", first.since)
    assert owners_published(tid)[-1] == "rn.alvarez"
    claims = [
        (e.kind, e.actor, e.detail)
        for r in RECORDS
        if r.transition_id == tid
        for e in r.events
        if e.kind in ("claimed", "assigned")
    ]
    assert claims == [("claimed", "rn.alvarez", "to rn.alvarez")]


async def test_only_a_supervisor_gives_a_transition_to_someone_else(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    assert "a care manager can claim a transition only for themselves" in await rejected(
        handle, "assign_transition", AssignRequest(by="rn.alvarez", to="rn.patel")
    )
    await handle.execute_update(
        TransitionWorkflow.assign_transition, AssignRequest(by="rn.alvarez", to="rn.alvarez")
    )
    assert "the transition belongs to rn.alvarez; a supervisor can reassign it" in await rejected(
        handle, "assign_transition", AssignRequest(by="rn.patel", to="rn.patel")
    )
    moved = await handle.execute_update(
        TransitionWorkflow.assign_transition,
        AssignRequest(by="sup.kim", to="rn.patel", supervisor=True),
    )
    assert moved.owner == "rn.patel" and moved.changed
    tid = (await handle.query(TransitionWorkflow.get_state)).transition_id
    details = [e.detail for r in RECORDS if r.transition_id == tid for e in r.events]
    assert "to rn.patel (was rn.alvarez)" in details


async def test_an_a08_number_replaces_the_profiles_phones(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    state = await handle.query(TransitionWorkflow.get_state)
    await handle.execute_update(
        TransitionWorkflow.update_profile,
        ProfileRequest(
            by="rn.a", profile=PersonProfile(language="spa", phones=("4135550100", "4135550101"))
        ),
    )
    await handle.signal(
        TransitionWorkflow.adt_event,
        AdtSignal(
            event_type="A08",
            message_control_id=uuid.uuid4().hex[:12],
            occurred_at=state.discharged_at + timedelta(hours=1),
            contact_numbers=("4135550199",),
        ),
    )
    after = await handle.query(TransitionWorkflow.get_state)
    assert after.profile.phones == ("4135550199",)
    assert after.contact_numbers == ["4135550199"]
    assert after.profile.language == "spa"  # the rest of the profile stays
