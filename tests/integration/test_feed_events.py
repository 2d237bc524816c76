"""The feed completes what it can see (issue 20), on the real stack over MLLP: an SIU^S12
books the follow-up visit on day 5 (on the step, the care plan and the timeline with its
inbox id), an ADT^A04 at the practice clinic on day 6 completes the visit from the message,
and with the contact and medication reconciliation done the TCM code is 99496; an S26
no-show clears the booking and the step stays open; S13 moves it; a booking past the visit's
limit is flagged on the worklist at once; an MDM^T02 on day 1 is TRC discharge information;
an S16 is refused (AR) like any unsupported message. Times are relative to now."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from ingest import example_messages, feed_examples
from schemas import keys
from tests.helpers import MllpClient, assert_eventually, msa
from tests.integration.care_support import ER7, Team, care_team, cli_env
from tests.integration.conftest import RunningStack, run_cli
from workers.runtime.settings import Settings


@dataclass
class Patient:
    """A high-risk discharge of the team's facility, 2 hours ago, and the feed's MLLP link."""

    team: Team
    mllp: MllpClient
    tid: str
    mrn: str
    visit: str
    discharged: datetime

    def day(self, n: int, hour: int = 14) -> datetime:
        """`hour` o'clock on the facility's calendar day `n` after the discharge's (day 0):
        TCM counts days there, so a UTC day would be one off whenever the discharge two hours
        ago fell on the local day before (a run between 02:00 and 07:00 UTC)."""
        zone = self.team.services.library.site.calendar_zone()
        local_day = self.discharged.astimezone(zone).date() + timedelta(days=n)
        return datetime.combine(local_day, time(hour), zone)

    async def send(self, raw: str) -> list[str]:
        """Send over MLLP; the MSA fields of the ACK."""
        return msa(await self.mllp.exchange(raw.encode()))

    async def siu(self, trigger: str, start: datetime, appointment_id: str = "APT1") -> str:
        fields = await self.send(
            feed_examples.siu(
                trigger,
                start=start,
                facility=self.team.facility,
                mrn=self.mrn,
                appointment_id=appointment_id,
            )
        )
        assert fields[1] == "AA", fields
        return fields[3] if len(fields) > 3 else ""

    async def visit_step(self) -> dict[str, Any]:
        state = await self.team.state(self.tid)
        step: dict[str, Any] = next(s for s in state["steps"] if s["step_id"] == "follow_up_visit")
        return step

    async def timeline_with(self, text: str) -> list[dict[str, Any]]:
        async def shown() -> list[dict[str, Any]]:
            found = [e for e in await self.team.timeline(self.tid) if text in e["detail"]]
            assert found, text
            return found

        return await assert_eventually(shown, within=30)


@pytest_asyncio.fixture
async def team(stack: RunningStack, settings: Settings) -> AsyncIterator[Team]:
    async with care_team(stack, settings) as found:
        yield found


@pytest_asyncio.fixture
async def patient(team: Team, stack: RunningStack) -> AsyncIterator[Patient]:
    mrn, visit = f"M{uuid.uuid4().hex[:8]}", f"V{uuid.uuid4().hex[:8]}"
    message = example_messages.build(
        "a03-high-risk", facility=team.facility, visit=visit, mrn=mrn, discharged="-2h"
    )
    assert message.discharged_at is not None and not isinstance(message.discharged_at, str)
    sent = await team.http.post(
        "/adt",
        content=example_messages.render(message).encode(),
        headers={**ER7, **team.as_("feed")},
    )
    assert "|AA|" in sent.text, sent.text
    secret = team.services.settings.key_secret.get_secret_value()
    tid = keys.transition_id(keys.encounter_key(secret, team.facility, visit))

    async def planned() -> None:
        state = await team.http.get(f"/transitions/{tid}", headers=team.as_("sup.kim"))
        assert state.status_code == 200 and state.json()["period_ends_at"]
        assert state.json()["risk"]["tier"] == "high"

    await assert_eventually(planned, within=30)
    mllp = await MllpClient.connect(stack.mllp_port)
    try:
        yield Patient(team, mllp, tid, mrn, visit, message.discharged_at)
    finally:
        await mllp.close()


async def complete(team: Team, tid: str, step: str) -> None:
    done = await team.http.post(
        f"/transitions/{tid}/steps/{step}/complete", json={}, headers=team.as_("rn.alvarez")
    )
    assert done.status_code == 200, done.text


async def tcm_row(team: Team, tid: str) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    params = {
        "from": (today - timedelta(days=2)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
        "facility": team.facility,
    }
    found = await team.http.get("/reports/tcm", params=params, headers=team.as_("sup.kim"))
    assert found.status_code == 200, found.text
    return next(r for r in found.json()["rows"] if r["transition_id"] == tid)


async def test_a_booking_then_an_arrival_completes_the_visit_its_recorded_mdm_bills_99496(
    patient: Patient,
) -> None:
    booked_for = patient.day(5)
    await patient.siu("S12", booked_for)

    async def booked() -> None:
        step = await patient.visit_step()
        assert step["appointment_at"] is not None
        assert datetime.fromisoformat(step["appointment_at"]) == booked_for
        assert step["appointment_with"] == "GREGORY HOUSE"
        assert step["appointment_where"] == feed_examples.DEFAULT_CLINIC
        assert step["appointment_late"] is False and step["status"] == "open"

    await assert_eventually(booked, within=30)
    [booking] = await patient.timeline_with("booked for")
    assert "inbox " in booking["detail"] and booking["actor"] == "feed"
    plan = await patient.team.http.get(
        f"/transitions/{patient.tid}/care-plan", headers=patient.team.as_("sup.kim")
    )
    assert plan.status_code == 200, plan.text
    [planned] = [s for s in plan.json()["steps"] if s["step_id"] == "follow_up_visit"]
    assert datetime.fromisoformat(planned["appointment_at"]) == booked_for
    assert planned["appointment_where"] == feed_examples.DEFAULT_CLINIC

    await complete(patient.team, patient.tid, "interactive_contact")
    await complete(patient.team, patient.tid, "medication_reconciliation")
    arrived = patient.day(6, hour=10)
    fields = await patient.send(
        feed_examples.a04_clinic(arrived=arrived, facility=patient.team.facility, mrn=patient.mrn)
    )
    assert fields[1] == "AA", fields

    async def visited() -> None:
        step = await patient.visit_step()
        assert step["status"] == "completed" and step["completed_by"] == "feed"
        assert datetime.fromisoformat(step["completed_at"]) == arrived

    await assert_eventually(visited, within=30)
    [completion] = await patient.timeline_with(": visit on")
    assert "A04" in completion["detail"] and "inbox " in completion["detail"]

    # The arrival says nothing of the billing provider's medical decision making: no code
    # until it is recorded (never inferred from the LACE tier), here by a supervisor.
    async def undocumented() -> None:
        row = await tcm_row(patient.team, patient.tid)
        assert row["visit_day"] == 6 and row["tcm_code"] == "complexity not documented", row

    await assert_eventually(undocumented, within=30)
    corrected = await patient.team.http.post(
        f"/transitions/{patient.tid}/steps/follow_up_visit/correction",
        json={"complexity": "high", "reason": "the provider's note says high"},
        headers=patient.team.as_("sup.kim"),
    )
    assert corrected.status_code == 200, corrected.text

    async def billed() -> None:
        row = await tcm_row(patient.team, patient.tid)
        assert row["visit_day"] == 6 and row["tcm_code"] == "99496", row
        assert "HOUSE" in row["billing_provider"]  # the provider the SIU booked it with

    await assert_eventually(billed, within=30)


async def test_a_no_show_clears_the_booking_and_a_reschedule_moves_it(patient: Patient) -> None:
    await patient.siu("S12", patient.day(3))
    await patient.timeline_with("booked for")
    await patient.siu("S13", patient.day(4))
    [moved] = await patient.timeline_with("moved from")
    assert patient.day(4).astimezone(UTC).isoformat(timespec="minutes") in moved["detail"]

    async def at_day_4() -> None:
        step = await patient.visit_step()
        assert datetime.fromisoformat(step["appointment_at"]) == patient.day(4)

    await assert_eventually(at_day_4, within=30)
    await patient.siu("S26", patient.day(4))

    async def cleared() -> None:
        step = await patient.visit_step()
        assert step["appointment_at"] is None and step["status"] == "open"

    await assert_eventually(cleared, within=30)
    [no_show] = await patient.timeline_with("no-show")
    assert "escalates as usual" in no_show["detail"]
    # a cancellation of an appointment that is not booked changes nothing
    await patient.siu("S15", patient.day(4), appointment_id="OTHER")
    await patient.timeline_with("no such appointment is booked")


async def test_a_booking_past_the_visits_limit_is_flagged_on_the_worklist(
    patient: Patient,
) -> None:
    step = await patient.visit_step()
    limit = datetime.fromisoformat(step["limit_at"])
    await patient.siu("S12", limit + timedelta(days=2))

    async def flagged() -> None:
        rows = await patient.team.http.get(
            "/transitions",
            params={"facility": patient.team.facility},
            headers=patient.team.as_("sup.kim"),
        )
        assert rows.status_code == 200, rows.text
        row = next(r for r in rows.json() if r["transition_id"] == patient.tid)
        assert row["late_bookings"] == ["follow_up_visit"]

    await assert_eventually(flagged, within=30)
    [late] = await patient.timeline_with("the TCM visit will be late")
    assert "act now" in late["detail"]
    headers = patient.team.as_("sup.kim")
    worklist = await patient.team.http.get(
        "/", params={"facility": patient.team.facility}, headers=headers
    )
    assert worklist.status_code == 200 and "follow_up_visit booked late: act now" in worklist.text
    page = await patient.team.http.get(f"/ui/transitions/{patient.tid}", headers=headers)
    assert "booked after the limit: act now" in page.text and "with GREGORY HOUSE" in page.text


async def test_a_discharge_summary_on_day_1_is_trc_discharge_information(
    patient: Patient,
) -> None:
    async def trc_row() -> dict[str, Any]:
        today = datetime.now(UTC).date()
        params = {
            "from": (today - timedelta(days=2)).isoformat(),
            "to": (today + timedelta(days=1)).isoformat(),
            "facility": patient.team.facility,
        }
        found = await patient.team.http.get(
            "/reports/trc", params=params, headers=patient.team.as_("sup.kim")
        )
        row: dict[str, Any] = next(
            r for r in found.json()["rows"] if r["transition_id"] == patient.tid
        )
        return row

    assert (await trc_row())["trc_discharge_information"] is False
    other = await patient.send(
        feed_examples.mdm(
            written=patient.day(1),
            visit=patient.visit,
            facility=patient.team.facility,
            mrn=patient.mrn,
            document_type="PN",  # a progress note is no discharge information
        )
    )
    assert other[1] == "AA" and (await trc_row())["trc_discharge_information"] is False
    fields = await patient.send(
        feed_examples.mdm(
            written=patient.day(1),
            visit=patient.visit,
            facility=patient.team.facility,
            mrn=patient.mrn,
        )
    )
    assert fields[1] == "AA", fields
    assert (await trc_row())["trc_discharge_information"] is True
    [received] = await patient.timeline_with("discharge summary received")
    assert "inbox " in received["detail"]


async def test_an_unsupported_scheduling_trigger_is_refused(patient: Patient) -> None:
    raw = feed_examples.siu(
        "S16", start=patient.day(3), facility=patient.team.facility, mrn=patient.mrn
    )
    fields = await patient.send(raw)
    assert fields[1] == "AR" and "not supported" in fields[3], fields


async def test_a_supervisor_undoes_a_wrong_automatic_completion(patient: Patient) -> None:
    team = patient.team
    await patient.siu("S12", patient.day(3))
    await patient.timeline_with("booked for")
    fields = await patient.send(
        feed_examples.a04_clinic(arrived=patient.day(3), facility=team.facility, mrn=patient.mrn)
    )
    assert fields[1] == "AA", fields

    async def completed() -> None:
        assert (await patient.visit_step())["status"] == "completed"

    await assert_eventually(completed, within=30)
    url = f"/transitions/{patient.tid}/steps/follow_up_visit/undo-feed"
    reason = {"reason": "the A04 was another patient's visit"}
    refused = await team.http.post(url, json=reason, headers=team.as_("rn.alvarez"))
    assert refused.status_code == 403  # supervisors only
    no_reason = await team.http.post(url, json={"reason": " "}, headers=team.as_("sup.kim"))
    assert no_reason.status_code == 422

    undone = await team.http.post(url, json=reason, headers=team.as_("sup.kim"))
    assert undone.status_code == 200, undone.text
    assert undone.json()["status"] == "open" and undone.json()["completed_at"] is None
    assert undone.json()["appointment_at"] is not None  # the booking stays
    [entry] = await patient.timeline_with("completion")
    assert entry["actor"] == "sup.kim" and "another patient" not in entry["detail"]
    [kept] = undone.json()["corrections"]  # the free-text reason stays on the step
    assert kept["by"] == "sup.kim" and kept["reason"] == reason["reason"]

    again = await team.http.post(url, json=reason, headers=team.as_("sup.kim"))
    assert again.status_code == 200 and again.json() == undone.json()  # a repeat: no change
    booking = reason | {"undo": "appointment"}
    cleared = await team.http.post(url, json=booking, headers=team.as_("sup.kim"))
    assert cleared.status_code == 200 and cleared.json()["appointment_at"] is None
    contact = f"/transitions/{patient.tid}/steps/interactive_contact/undo-feed"
    nothing = await team.http.post(contact, json=reason, headers=team.as_("sup.kim"))
    assert nothing.status_code == 409
    assert "made no completion on step 'interactive_contact'" in nothing.json()["detail"]


async def test_the_cli_undoes_a_booking_and_records_a_filing_once(
    patient: Patient, temporal_env: WorkflowEnvironment, database_url: str
) -> None:
    env = cli_env(temporal_env, database_url)
    await patient.siu("S12", patient.day(4))
    await patient.timeline_with("booked for")
    undone = await run_cli(
        env,
        "undo-feed",
        patient.tid,
        "--undo",
        "appointment",
        "--reason",
        "booked for another patient",
        "--by",
        "sup.kim",
    )
    assert undone.exit_code == 0, undone.output
    assert (await patient.visit_step())["appointment_at"] is None
    refused = await run_cli(
        env, "undo-feed", patient.tid, "--reason", "x", "--by", "sup.kim"
    )  # the feed completed nothing
    assert refused.exit_code == 1 and "made no completion" in refused.output

    at = (patient.discharged + timedelta(hours=3)).isoformat()
    args = ("filed", patient.tid, "discharge_information", "--at", at, "--by", "rn.alvarez")
    first = await run_cli(env, *args)
    assert first.exit_code == 0 and "recorded before" not in first.output, first.output
    second = await run_cli(env, *args)
    assert second.exit_code == 0 and "recorded before" in second.output
    unknown = await run_cli(env, "filed", patient.tid, "lab_results", "--at", at, "--by", "x")
    assert unknown.exit_code != 0
