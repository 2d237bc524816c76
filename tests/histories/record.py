"""Record TransitionWorkflow histories for the replay tests, one per default protocol.

Run `python -m tests.histories.record` after a deliberate workflow change (behind
`workflow.patched`) and commit the new files beside the old ones (`--suffix v2`): old
histories must keep replaying for as long as transitions started under them can be running.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from schemas.call import Reached, RedFlag
from schemas.feed import Appointment
from schemas.person import PersonProfile
from schemas.social_needs import HrsnDomain, ReferralOutcome
from schemas.transition import (
    AdtSignal,
    AssignRequest,
    AttemptRequest,
    AttemptResult,
    CallOutcomeRequest,
    CancelStepRequest,
    CompleteStepRequest,
    Complexity,
    CorrectionRequest,
    FeedChange,
    NoteRequest,
    ProfileRequest,
    ReassignRequest,
    ReferralRequest,
    ScreeningRequest,
    SnoozeRequest,
    UndoFeedRequest,
)
from tests.workflow.support import (
    FOOD_AND_TRANSPORT,
    HIGH_RISK,
    LIBRARY,
    advance_to,
    new_worker,
    next_weekday,
    planned_state,
    start_time_skipping_env,
    start_transition,
)
from workflows.transition import TransitionWorkflow
from workflows.transition_signals import SEEN_WINDOW

HERE = Path(__file__).resolve().parent
TRANSPORTS = dict(LIBRARY.site.notifications.channels)  # as the intake passes them


async def record_protocol(
    env: WorkflowEnvironment, protocol_id: str, path: Path, *, late_by: timedelta | None = None
) -> None:
    """A transition with every kind of event: attempts, snooze, reassign, note, completions,
    an A08 signal, escalations of what is left open, and the period end. With `late_by`, the
    discharge arrives that long after it happened (steps missed before arrival)."""
    async with new_worker(env) as worker:
        monday = next_weekday(await env.get_current_time(), 0, time(9, 0))
        arrived = monday + (late_by or timedelta())
        await advance_to(env, arrived)
        handle = await start_transition(
            env,
            worker,
            monday,
            protocol=protocol_id,
            tid=protocol_id.replace("-", "")[:24],
            received_at=arrived if late_by else None,
            transports=TRANSPORTS,
        )
        state = await planned_state(handle) if not LIBRARY.latest(protocol_id).closes_with else None
        if state is not None:
            steps = [s for s in state.steps if s.status.value == "open"]
            first = steps[0].step_id
            await handle.execute_update(
                TransitionWorkflow.record_attempt,
                AttemptRequest(step_id=first, by="rn.alvarez", result=AttemptResult.NO_ANSWER),
            )
            await handle.execute_update(
                TransitionWorkflow.reassign,
                ReassignRequest(step_id=first, by="supervisor.kim", to="rn.patel"),
            )
            await handle.execute_update(
                TransitionWorkflow.add_note, NoteRequest(by="rn.patel", text="history note")
            )
            await handle.signal(
                TransitionWorkflow.adt_event,
                AdtSignal(
                    event_type="A08",
                    message_control_id="HIST-A08",
                    occurred_at=arrived + timedelta(hours=2),
                    contact_numbers=("4135550100",),
                ),
            )
            for step in steps[1:]:
                if step.limit_at and step.due_at and step.limit_at > step.due_at:
                    until = step.due_at + (step.limit_at - step.due_at) / 2
                    await handle.execute_update(
                        TransitionWorkflow.snooze,
                        SnoozeRequest(step_id=step.step_id, by="rn.patel", until=until, reason="x"),
                    )
                    break
            if any(s.step_id == "social_needs_screening" for s in steps):
                await handle.execute_update(
                    TransitionWorkflow.record_screening,
                    ScreeningRequest(
                        step_id="social_needs_screening", by="rn.patel", answers=FOOD_AND_TRANSPORT
                    ),
                )
                await handle.execute_update(
                    TransitionWorkflow.close_referral,
                    ReferralRequest(
                        step_id="referral_food",
                        by="rn.patel",
                        resource=LIBRARY.resources_for(HrsnDomain.FOOD)[0],
                        outcome=ReferralOutcome.CONNECTED,
                    ),
                )
                await handle.execute_update(
                    TransitionWorkflow.update_profile,
                    ProfileRequest(by="rn.patel", profile=PersonProfile(language="spa")),
                )
            await env.sleep(timedelta(days=3))
            for step in steps[:2]:
                await handle.execute_update(
                    TransitionWorkflow.complete_step,
                    CompleteStepRequest(step_id=step.step_id, by="rn.patel"),
                )
        await handle.result()
        history = await handle.fetch_history()
    await asyncio.to_thread(path.write_text, history.to_json())


def adt(kind: str, control_id: str, at: datetime, **fields: Any) -> AdtSignal:
    return AdtSignal(event_type=kind, message_control_id=control_id, occurred_at=at, **fields)


async def record_paths(env: WorkflowEnvironment, path: Path) -> None:
    """A high-risk home-health transition that takes the other paths: an A02 with the start
    (before the plan), A07, A12, the visit's own A11 (after the discharge: recorded), A40 and
    A47 (merges), a republish, a reached attempt, a cancelled prerequisite (its dependent
    stops), a note, a readmission and its withdrawal, the readmission redelivered after more
    than the window of recent messages, an A08 older than the last one (not applied), then an
    A13."""
    async with new_worker(env) as worker:
        monday = next_weekday(await env.get_current_time(), 0, time(9, 0))
        await advance_to(env, monday)
        handle = await start_transition(
            env,
            worker,
            monday,
            protocol="discharge-home-health",
            risk=HIGH_RISK,
            tid="pathshomehealthhighrisk0",
            start_signal=adt("A02", "P-A02", monday, location="5E^502^B^GENHOSP"),
            transports=TRANSPORTS,
        )
        await planned_state(handle)
        await handle.signal(
            TransitionWorkflow.adt_event, adt("A07", "P-A07", monday, patient_class="O")
        )
        await handle.signal(  # cancel transfer: back where the A02 moved the patient from
            TransitionWorkflow.adt_event, adt("A12", "P-A12", monday, location="4W^401^A")
        )
        await handle.signal(  # the discharged visit's own A11: recorded, cancels nothing
            TransitionWorkflow.adt_event,
            adt(
                "A11", "P-A11-OWN", monday, encounter_key="pathshomehealthhighrisk0".ljust(64, "0")
            ),
        )
        await handle.signal(
            TransitionWorkflow.adt_event,
            adt("A40", "P-A40", monday, merged_into_patient_key="merged".ljust(64, "0")),
        )
        await handle.signal(  # a change of patient identifier: re-keyed like a merge
            TransitionWorkflow.adt_event,
            adt("A47", "P-A47", monday, merged_into_patient_key="rekeyed".ljust(64, "0")),
        )
        await handle.signal(TransitionWorkflow.republish)
        await handle.execute_update(
            TransitionWorkflow.record_attempt,
            AttemptRequest(step_id="interactive_contact", by="rn.a", result=AttemptResult.REACHED),
        )
        await handle.execute_update(
            TransitionWorkflow.cancel_step,
            CancelStepRequest(step_id="home_health_referral", by="sup.k", reason="declined"),
        )
        await handle.execute_update(
            TransitionWorkflow.add_note, NoteRequest(by="rn.a", text="declined home health")
        )
        readmission = "readmission".ljust(64, "0")
        admitted = monday + timedelta(days=2)
        await advance_to(env, admitted)
        await handle.signal(
            TransitionWorkflow.adt_event,
            adt("A01", "P-A01", admitted, patient_class="I", encounter_key=readmission),
        )
        await handle.signal(
            TransitionWorkflow.adt_event,
            adt("A11", "P-A11", admitted, encounter_key=readmission),
        )
        for n in range(SEEN_WINDOW + 2):  # the A01 leaves the window of recent ids ...
            at = admitted + timedelta(minutes=n)
            await handle.signal(TransitionWorkflow.adt_event, adt("A08", f"P-A08-{n}", at))
        await handle.signal(  # ... and is redelivered: still ignored
            TransitionWorkflow.adt_event,
            adt("A01", "P-A01", admitted, patient_class="I", encounter_key=readmission),
        )
        await handle.signal(  # older than the last A08 applied: recorded, not applied
            TransitionWorkflow.adt_event,
            adt("A08", "P-A08-OLDER", monday, contact_numbers=("4135550101",)),
        )
        await env.sleep(timedelta(days=3))  # escalations of what is open again
        await handle.signal(TransitionWorkflow.adt_event, adt("A13", "P-A13", admitted))
        await handle.result()
        history = await handle.fetch_history()
    await asyncio.to_thread(path.write_text, history.to_json())


async def record_care(env: WorkflowEnvironment, path: Path) -> None:
    """A care manager's transition (from workflow-v9): claimed, reassigned by a supervisor, a
    call that left a message, a call that reached the patient (medication problems, a booked
    appointment, social needs, red flags: a clinician paged), the visit completed on an
    earlier day and its complexity corrected, then the period end."""
    async with new_worker(env) as worker:
        monday = next_weekday(await env.get_current_time(), 0, time(9, 0))
        await advance_to(env, monday)
        handle = await start_transition(
            env, worker, monday, tid="carecallsownership000000", transports=TRANSPORTS
        )
        await planned_state(handle)
        assign = TransitionWorkflow.assign_transition
        await handle.execute_update(assign, AssignRequest(by="rn.alvarez", to="rn.alvarez"))
        await handle.execute_update(assign, AssignRequest(by="rn.alvarez", to="rn.alvarez"))
        await handle.execute_update(
            assign, AssignRequest(by="sup.kim", to="rn.patel", supervisor=True)
        )
        await handle.execute_update(
            TransitionWorkflow.record_call,
            CallOutcomeRequest(by="rn.patel", reached=Reached.NOBODY, left_message=True),
        )
        await env.sleep(timedelta(hours=3))
        await handle.execute_update(
            TransitionWorkflow.record_call,
            CallOutcomeRequest(
                by="rn.patel",
                at=monday + timedelta(hours=2),
                reached=Reached.PATIENT,
                medication_problems=True,
                medication_notes="history: not taking the new inhaler",
                appointment_at=monday + timedelta(days=6),
                social_needs=True,
                red_flags=(RedFlag.SHORTNESS_OF_BREATH,),
            ),
        )
        await env.sleep(timedelta(days=2))
        await handle.execute_update(
            TransitionWorkflow.complete_step,
            CompleteStepRequest(
                step_id="follow_up_visit",
                by="dr.o",
                occurred_on=(monday + timedelta(days=1)).date(),
                complexity=Complexity.MODERATE,
            ),
        )
        await handle.execute_update(
            TransitionWorkflow.correct_step,
            CorrectionRequest(
                step_id="follow_up_visit", by="sup.kim", complexity=Complexity.HIGH, reason="x"
            ),
        )
        await handle.result()
        history = await handle.fetch_history()
    await asyncio.to_thread(path.write_text, history.to_json())


def siu(kind: str, control_id: str, at: datetime, appointment_id: str = "A1") -> AdtSignal:
    appointment = Appointment(id=appointment_id, at=at, provider="GREGORY HOUSE", location="PCP")
    return adt(
        kind,
        control_id,
        at,
        appointment=appointment,
        inbox_id=len(control_id),
        feed=True,
        message_type="SIU",
    )


DOCUMENT: dict[str, Any] = {"feed": True, "message_type": "MDM", "document_type": "DS"}


async def record_feed(env: WorkflowEnvironment, path: Path) -> None:
    """The feed's paths (from workflow-v10) at high risk: an S12 booking, an S13 move past the
    visit's limit (flagged), an S14 of another appointment (not applied), an S26 no-show
    (cleared), an S15 with nothing booked (not applied), an S12 again, an MDM^T02 (no
    discharge-information step here: evidence only), an A04 reported for confirmation, the
    A04 at the practice clinic that completes the visit, an S26 after it (not applied), a
    supervisor's two undos (the completion, then the booking) and the A04 again."""
    async with new_worker(env) as worker:
        monday = next_weekday(await env.get_current_time(), 0, time(9, 0))
        await advance_to(env, monday)
        handle = await start_transition(
            env,
            worker,
            monday,
            risk=HIGH_RISK,
            tid="feedschedulingvisit00000",
            transports=TRANSPORTS,
        )
        state = await planned_state(handle)
        visit = next(s for s in state.steps if s.step_id == "follow_up_visit")
        assert visit.limit_at is not None
        late = visit.limit_at + timedelta(days=1)
        signals = [
            siu("S12", "F-S12", monday + timedelta(days=3)),
            siu("S13", "F-S13", late),
            siu("S14", "F-S14", monday + timedelta(days=4), appointment_id="OTHER"),
            siu("S26", "F-S26", late),
            siu("S15", "F-S15", late),
            siu("S12", "F-S12-AGAIN", monday + timedelta(days=5)),
            adt("T02", "F-T02", monday + timedelta(hours=6), inbox_id=9, **DOCUMENT),
        ]
        for signal in signals:
            await handle.signal(TransitionWorkflow.adt_event, signal)
        for step in ("interactive_contact", "medication_reconciliation"):
            await handle.execute_update(
                TransitionWorkflow.complete_step, CompleteStepRequest(step_id=step, by="rn.a")
            )
        arrived = monday + timedelta(days=5, hours=1)
        await advance_to(env, arrived)
        await handle.signal(  # a site that confirms visits: reported, not completed
            TransitionWorkflow.adt_event,
            adt(
                "A04",
                "F-A04-REPORTED",
                arrived,
                patient_class="O",
                clinic="PCP",
                feed=True,
                confirm=True,
            ),
        )
        await handle.signal(
            TransitionWorkflow.adt_event,
            adt("A04", "F-A04", arrived, patient_class="O", clinic="PCP", inbox_id=11, feed=True),
        )
        await handle.signal(TransitionWorkflow.adt_event, siu("S26", "F-S26-AFTER", arrived))
        while True:  # the supervisor acts on what the page shows: the visit completed
            state = await handle.query(TransitionWorkflow.get_state)
            if next(s for s in state.steps if s.step_id == "follow_up_visit").completed_by:
                break
            await asyncio.sleep(0.05)
        undo = UndoFeedRequest(step_id="follow_up_visit", by="sup.kim", reason="wrong patient")
        await handle.execute_update(TransitionWorkflow.undo_feed, undo)  # reopened
        await handle.execute_update(TransitionWorkflow.undo_feed, undo)  # a repeat: no change
        booking = undo.model_copy(update={"undo": FeedChange.APPOINTMENT})
        await handle.execute_update(TransitionWorkflow.undo_feed, booking)  # booking cleared
        await handle.signal(
            TransitionWorkflow.adt_event,
            adt(
                "A04",
                "F-A04-AGAIN",
                arrived,
                patient_class="O",
                clinic="PCP",
                inbox_id=12,
                feed=True,
            ),
        )
        await handle.result()
        history = await handle.fetch_history()
    await asyncio.to_thread(path.write_text, history.to_json())


async def record_feed_document(env: WorkflowEnvironment, path: Path) -> None:
    """A facility handoff whose discharge-information step the MDM^T02 closes (workflow-v10)."""
    async with new_worker(env) as worker:
        monday = next_weekday(await env.get_current_time(), 0, time(9, 0))
        await advance_to(env, monday)
        handle = await start_transition(
            env,
            worker,
            monday,
            protocol="facility-handoff",
            tid="feeddischargesummary0000",
            transports=TRANSPORTS,
        )
        await planned_state(handle)
        await handle.signal(
            TransitionWorkflow.adt_event,
            adt("T02", "FD-T02", monday + timedelta(hours=3), **DOCUMENT),
        )
        await handle.result()
        history = await handle.fetch_history()
    await asyncio.to_thread(path.write_text, history.to_json())


async def record_death(env: WorkflowEnvironment, path: Path) -> None:
    """A left-AMA transition closed by an A08 that reports the death."""
    async with new_worker(env) as worker:
        monday = next_weekday(await env.get_current_time(), 0, time(9, 0))
        await advance_to(env, monday)
        handle = await start_transition(
            env,
            worker,
            monday,
            protocol="left-ama",
            tid="pathsdeath0000000000000",
            transports=TRANSPORTS,
        )
        await planned_state(handle)
        await env.sleep(timedelta(days=2))
        await handle.signal(
            TransitionWorkflow.adt_event,
            adt("A08", "D-A08", monday + timedelta(days=2), deceased=True),
        )
        await handle.result()
        history = await handle.fetch_history()
    await asyncio.to_thread(path.write_text, history.to_json())


async def main(suffix: str) -> None:
    env = await start_time_skipping_env()
    try:
        for protocol in LIBRARY.all_latest():
            path = HERE / f"{protocol.id}.v{protocol.version}.{suffix}.json"
            await record_protocol(env, protocol.id, path)
            print(path)
        home = LIBRARY.latest("discharge-home")
        path = HERE / f"{home.id}.v{home.version}.late-arrival.{suffix}.json"
        await record_protocol(env, home.id, path, late_by=timedelta(days=4))  # Friday
        print(path)
        scenarios = (
            ("paths", record_paths),
            ("death", record_death),
            ("care", record_care),
            ("feed", record_feed),
            ("feed-document", record_feed_document),
        )
        for name, record in scenarios:
            path = HERE / f"{name}.{suffix}.json"
            await record(env, path)
            print(path)
    finally:
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suffix", default="workflow-v1", help="names the workflow code version")
    asyncio.run(main(parser.parse_args().suffix))
