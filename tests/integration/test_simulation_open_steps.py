"""What the simulated staff read each hour (workers/simulation/open_steps.py): a real
transition's open steps from the projection, parsed once a projection version, and read anew
once the transition moves."""

from __future__ import annotations

import uuid
from datetime import timedelta

from schemas.protocol_library import load_library
from tests.helpers import assert_eventually
from tests.integration.conftest import RunningStack, discharged_and_planned
from tests.integration.test_simulation import EXAMPLE_STAFF
from workers.runtime.settings import Settings
from workers.simulation.open_steps import OpenStep, OpenSteps
from workers.simulation.staff import load_staff


async def test_staff_parse_a_transition_once_a_version_and_see_it_move(
    stack: RunningStack, settings: Settings
) -> None:
    tid = await discharged_and_planned(stack.http, settings, f"OS{uuid.uuid4().hex[:6].upper()}")
    library = load_library(settings.protocols_dir)
    zone = library.site.calendar_zone()
    staff = load_staff(EXAMPLE_STAFF)
    reader = OpenSteps(staff, library, zone)
    pool = stack.services.pool

    first: list[OpenStep] = []

    async def listed() -> None:
        first[:] = await reader.read(pool, [tid])
        assert first

    await assert_eventually(listed)
    assert {s.transition_id for s in first} == {tid}
    discharged = await pool.fetchval(
        "SELECT discharged_at FROM transitions WHERE transition_id = $1", tid
    )
    day = discharged.astimezone(zone).date()
    for open_step in first:
        _, work = staff.work_for(open_step.step.step_id, "care_manager")
        assert open_step.earliest == day + timedelta(days=work.earliest(open_step.high_risk))
    # the same version: the same objects, not parsed again
    again = await reader.read(pool, [tid])
    assert len(again) == len(first) and all(a is b for a, b in zip(again, first, strict=True))

    done = first[0].step.step_id
    answer = await stack.http.post(f"/transitions/{tid}/steps/{done}/complete", json={})
    assert answer.status_code == 200, answer.text

    async def moved() -> None:
        later = await reader.read(pool, [tid])
        assert done not in {s.step.step_id for s in later}
        assert later == await OpenSteps(staff, library, zone).read(pool, [tid])  # as if new

    await assert_eventually(moved)
