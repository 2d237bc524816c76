"""The simulation's generated feed and staff model: repeatable by seed, shaped by the
weekday pattern and the shares asked for, and refusals that name what is wrong."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from workers.simulation.feed import FeedSpec, generate
from workers.simulation.staff import StaffError, StaffModel, load_staff

ZONE = ZoneInfo("America/New_York")
MONDAY = datetime(2031, 3, 17, tzinfo=ZONE)  # a clock the test owns


def test_the_same_seed_gives_the_same_feed_and_another_seed_another() -> None:
    spec = FeedSpec(days=7, discharges_per_day=8, seed=5)
    first, again = generate(spec, MONDAY, ZONE), generate(spec, MONDAY, ZONE)
    assert [m.raw for m in first] == [m.raw for m in again]
    other = generate(FeedSpec(days=7, discharges_per_day=8, seed=6), MONDAY, ZONE)
    assert [m.raw for m in other] != [m.raw for m in first]
    assert [m.at for m in first] == sorted(m.at for m in first)


def test_a_zero_weekend_weight_leaves_the_weekend_without_discharges() -> None:
    spec = FeedSpec(days=14, discharges_per_day=5, weekday_pattern=(1, 1, 1, 1, 1, 0, 0))
    days = {m.at.astimezone(ZONE).weekday() for m in generate(spec, MONDAY, ZONE)}
    assert days == {0, 1, 2, 3, 4}


def test_discharges_fall_in_the_day_and_every_one_is_cancelled_at_an_a13_share_of_one() -> None:
    spec = FeedSpec(days=2, discharges_per_day=4, weekday_pattern=(1,) * 7, a13_share=1.0)
    feed = generate(spec, MONDAY, ZONE)
    discharges = [m for m in feed if m.trigger == "A03"]
    cancels = {m.visit: m for m in feed if m.trigger == "A13"}
    assert len(discharges) == 8 and set(cancels) == {m.visit for m in discharges}
    for message in discharges:
        assert time(10) <= message.at.astimezone(ZONE).time() < time(20)
        assert cancels[message.visit].at > message.at
        assert b"ADT^A03" in message.raw and b"ADT^A13" in cancels[message.visit].raw


def test_high_risk_stays_carry_their_diagnoses_and_the_rest_none() -> None:
    everyone = generate(
        FeedSpec(days=1, discharges_per_day=5, high_risk_share=1.0, dispositions={"01": 1.0}),
        MONDAY,
        ZONE,
    )
    nobody = generate(FeedSpec(days=1, discharges_per_day=5, high_risk_share=0.0), MONDAY, ZONE)
    assert everyone and all(b"DG1|1||I50.9" in m.raw and m.high_risk for m in everyone)
    assert nobody and not any(b"DG1|" in m.raw for m in nobody)


def test_a_feed_refuses_a_disposition_it_does_not_simulate() -> None:
    with pytest.raises(ValueError, match=r"dispositions \['20'\] are not simulated"):
        FeedSpec(days=1, discharges_per_day=1, dispositions={"20": 1.0})


def test_a_staff_model_refusal_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "staff.yaml"
    path.write_text("roles:\n  care_manager: {people: 2, per_hour: 0}\n")
    with pytest.raises(StaffError, match=r"staff\.yaml: roles\.care_manager\.per_hour"):
        load_staff(path)
    path.write_text("roles: {care_manager: {}}\nsteps: {follow_up_visit: {role: scheduler}}\n")
    with pytest.raises(StaffError, match="names role 'scheduler', not in roles"):
        load_staff(path)


def test_later_attempts_keep_the_last_reach_chance_and_unlisted_steps_go_to_their_owner() -> None:
    model = StaffModel.model_validate(
        {"roles": {"care_manager": {}, "pharmacist": {}}, "reach": [0.9, 0.5]}
    )
    assert [model.reach_chance(n) for n in (1, 2, 3, 7)] == [0.9, 0.5, 0.5, 0.5]
    assert model.work_for("medication_reconciliation", "pharmacist")[0] == "pharmacist"
    assert model.work_for("follow_up_visit", "scheduler")[0] == "care_manager"  # no scheduler


def test_the_example_staff_model_loads() -> None:
    model = load_staff(Path(__file__).resolve().parents[2] / "docs/simulation/staff.yaml")
    assert set(model.roles) == {"care_manager", "pharmacist", "scheduler"}
