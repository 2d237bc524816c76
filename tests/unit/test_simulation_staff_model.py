"""The staff model's new fields (minutes per task, visits booked through the feed, no-show
rates, reaction to escalations, needs) and the small parts the simulated staff use: the
visit's day, when an escalation is seen, the screening answers, the outbox's order."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from activities.business_calendar import BusinessCalendar
from schemas.protocol import StepKind
from schemas.protocol_library import load_library
from schemas.social_needs import NO_NEEDS, HrsnDomain
from schemas.transition import StepStatus, StepSummary
from workers.simulation import needs, visits
from workers.simulation.escalations import Escalation
from workers.simulation.staff import StaffError, StaffModel, load_staff
from workers.simulation.staffing import WorkItem

ROOT = Path(__file__).resolve().parents[2]
CALENDAR = BusinessCalendar(load_library(ROOT / "protocols").site.calendar)


def model(**fields: object) -> StaffModel:
    return StaffModel.model_validate({"roles": {"scheduler": {}}, **fields})


def test_per_hour_still_means_sixty_over_per_hour_minutes_and_minutes_are_taken_as_given() -> None:
    roles = model(
        roles={"a": {"per_hour": 4}, "b": {"minutes": 25}, "c": {}},
        steps={"medication_reconciliation": {"role": "b", "minutes": 40}},
    )
    assert [roles.roles[n].task_minutes for n in "abc"] == [15, 25, 10]
    role, work = roles.work_for("medication_reconciliation", "pharmacist")
    assert (role, roles.minutes_for(role, work)) == ("b", 40)
    role, work = roles.work_for("interactive_contact", "a")
    assert roles.minutes_for(role, work) == 15


def test_a_single_no_show_rate_holds_for_every_visit_and_a_list_gives_each_in_turn() -> None:
    assert [model(no_show_rate=0.2).no_show_chance(n) for n in (1, 5)] == [0.2, 0.2]
    assert [model(no_show_rate=[1.0, 0.0]).no_show_chance(n) for n in (1, 2, 3)] == [1, 0, 0]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "roles:\n  pharmacist: {minutes: 0}\n",
            "roles.pharmacist.minutes should be greater than 0",
        ),
        ("roles:\n  pharmacist: {per_minute: 3}\n", "roles.pharmacist.per_minute is not a field"),
        (
            "roles:\n  pharmacist: {minutes: 5, per_hour: 3}\n",
            "roles.pharmacist: give minutes or per_hour, not both",
        ),
        ("roles: {scheduler: {}}\nno_show_rate: 1.5\n", "every no-show rate must be between 0"),
        (
            "roles: {scheduler: {}}\nsteps:\n  follow_up_visit: {visit_days: weeks}\n",
            "steps.follow_up_visit.visit_days should be 'days' or 'business_days'",
        ),
    ],
)
def test_a_broken_staff_file_is_refused_in_a_sentence_naming_the_field(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "staff.yaml"
    path.write_text(text)
    with pytest.raises(StaffError, match=r"^staff model .*\.$") as refused:
        load_staff(path)
    assert says in str(refused.value)


def test_the_example_staff_file_books_visits_and_reads() -> None:
    example = load_staff(ROOT / "docs" / "simulation" / "staff.yaml")
    work = example.steps["follow_up_visit"]
    assert work.visit_offset(high_risk=False) is not None
    assert work.visit_offset(high_risk=True) is not None


def test_a_visit_falls_on_a_business_day_and_a_rebooking_not_before_tomorrow() -> None:
    friday = next(
        date(2031, 1, 3) + timedelta(days=7 * n)
        for n in range(52)
        if all(
            CALENDAR.is_business_day(date(2031, 1, 3) + timedelta(days=7 * n + d)) for d in (0, 3)
        )
    )
    monday = friday + timedelta(days=3)
    assert visits.visit_day(CALENDAR, friday, 1, "business_days", friday) == monday
    assert visits.visit_day(CALENDAR, friday, 1, "days", friday) == monday  # Saturday: closed
    later = friday + timedelta(days=14)
    assert visits.visit_day(CALENDAR, friday, 1, "days", later) > later


def test_an_escalation_is_seen_only_after_the_roles_reaction_time() -> None:
    raised = Escalation(level=1, channel="worklist", at=datetime(2031, 3, 3, 9, tzinfo=UTC))
    assert raised.seen_by(raised.at, None)
    assert not raised.seen_by(raised.at + timedelta(hours=3, minutes=59), 4)
    assert raised.seen_by(raised.at + timedelta(hours=4), 4)


def test_screening_answers_are_negative_unless_a_need_is_drawn() -> None:
    rng = random.Random(1)
    state = rng.getstate()
    assert needs.answers({}, rng) is NO_NEEDS and rng.getstate() == state  # no draw
    every = needs.answers(dict.fromkeys(HrsnDomain, 1.0), rng)
    assert set(every.positive_domains()) == set(HrsnDomain)
    assert needs.answers({HrsnDomain.FOOD: 0.0}, rng).positive_domains() == ()


def test_the_outbox_gives_messages_by_their_time_and_keeps_later_ones() -> None:
    box = visits.Outbox()
    at = datetime(2031, 3, 3, 10, tzinfo=UTC)
    box.push(at + timedelta(hours=2), "late", "arrival", "t1")
    box.push(at, "first", "booking", "t1")
    box.push(at, "second", "booking", "t2")
    assert [m.raw for m in box.due(at + timedelta(hours=1))] == [b"first", b"second"]
    assert box.next_at() == at + timedelta(hours=2) and len(box) == 1


def test_a_discharge_without_a_pid_cannot_be_booked_for() -> None:
    with pytest.raises(ValueError, match="no PID segment"):
        visits.Patient.of_discharge(b"MSH|^~\\&|A|FAC|B|C|20310303||ADT^A03|1|P|2.5.1\r")


def test_the_worklist_takes_the_escalation_the_role_has_seen_before_the_longest_overdue() -> None:
    at = datetime(2031, 3, 3, 9, tzinfo=UTC)

    def item(tid: str, seen: int, overdue_hours: int) -> WorkItem:
        step = StepSummary(
            step_id="interactive_contact",
            status=StepStatus.OPEN,
            overdue_since=at - timedelta(hours=overdue_hours),
            escalation_level=2,
        )
        return WorkItem(tid, step, StepKind.HUMAN_TASK, "care_manager", at, False, seen_level=seen)

    items = [item("a", 0, 48), item("b", 1, 2), item("c", 2, 1), item("d", 0, 50)]
    assert [i.transition_id for i in sorted(items, key=WorkItem.order)] == ["c", "b", "d", "a"]
