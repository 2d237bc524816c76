"""The web pages' forms at the HTTP level (the browser walk-through is test_web_browser.py):
the transition page offers every action the API and CLI do, "No answer" and its siblings
only on call steps, the visit asks for its day and complexity, a supervisor sees the assign
and correction forms; what the forms post (the same bodies as the page's script) shows on
the page: notes and calls with their texts, the profile; "my patients" and the team view."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.helpers import assert_eventually
from tests.integration.care_support import Team, care_team
from tests.integration.conftest import RunningStack
from workers.runtime.settings import Settings


@pytest_asyncio.fixture
async def team(stack: RunningStack, settings: Settings) -> AsyncIterator[Team]:
    async with care_team(stack, settings) as found:
        yield found


def step_rows(page: str) -> dict[str, str]:
    """Each row of the steps table, by its data-step."""
    table = page.split('<table id="steps">', 1)[1].split("</table>", 1)[0]
    return dict(re.findall(r'<tr[^>]*data-step="([a-z_]+)"[^>]*>(.*?)</tr>', table, re.S))


def section(page: str, section_id: str) -> str:
    return page.split(f'id="{section_id}"', 1)[1].split("</section>", 1)[0]


async def page_of(team: Team, tid: str, subject: str) -> str:
    found = await team.http.get(f"/ui/transitions/{tid}", headers=team.as_(subject))
    assert found.status_code == 200, found.text
    return found.text


async def test_the_transition_page_offers_the_actions_where_they_apply(team: Team) -> None:
    tid = await team.discharge()
    page = await page_of(team, tid, "rn.alvarez")
    rows = step_rows(page)
    for result in ("no_answer", "left_message", "wrong_number"):
        assert f'data-result="{result}"' in rows["interactive_contact"]
        assert f'data-result="{result}"' not in rows["medication_reconciliation"]
        assert f'data-result="{result}"' not in rows["follow_up_visit"]
    assert 'class="visit-date"' in rows["follow_up_visit"]
    assert 'class="visit-complexity"' in rows["follow_up_visit"]
    assert 'class="visit-date"' not in rows["medication_reconciliation"]
    for form in ('class="snooze"', 'class="cancel"'):
        assert form in rows["medication_reconciliation"]
    for found in ('id="call-form"', 'id="note-form"', 'id="profile-form"', 'id="claim"'):
        assert found in page
    assert 'name="red_flags" value="chest_pain"' in section(page, "call")
    assert 'id="assign-form"' not in page  # a care manager claims; a supervisor assigns
    assert 'class="reassign"' not in page
    supervisor = await page_of(team, tid, "sup.kim")
    assert 'id="assign-form"' in supervisor and 'class="reassign"' in supervisor


async def test_what_the_forms_post_shows_on_the_page(team: Team) -> None:
    tid = await team.discharge()
    as_rn = team.as_("rn.alvarez")
    base = f"/transitions/{tid}"
    posts = [  # the bodies the page's script sends
        (f"{base}/claim", {"by": ""}),
        (f"{base}/notes", {"by": "", "text": "lives alone, daughter nearby", "step_id": None}),
        (
            f"{base}/steps/interactive_contact/calls",
            {
                "by": "",
                "at": None,
                "reached": "patient",
                "left_message": False,
                "wrong_number": False,
                "medication_problems": False,
                "medication_notes": None,
                "appointment_at": None,
                "appointment_status": "booked",
                "red_flags": [],
                "social_needs": None,
                "note": "feels better today",
            },
        ),
    ]
    for path, body in posts:
        done = await team.http.post(path, json=body, headers=as_rn)
        assert done.status_code == 200, (path, done.text)
    page = await page_of(team, tid, "rn.alvarez")
    profile = json.loads(
        page.split('id="profile-data"', 1)[1].split(">", 1)[1].split("</script>")[0]
    )
    profile |= {"interpreter_needed": True, "contact_window": {"start": "09:00", "end": "12:00"}}
    saved = await team.http.put(
        f"{base}/profile", json={"by": "", "profile": profile}, headers=as_rn
    )
    assert saved.status_code == 200, saved.text

    async def shown() -> str:
        page = await page_of(team, tid, "rn.alvarez")
        timeline = page.split('<table id="timeline">', 1)[1]
        assert "lives alone, daughter nearby" in timeline  # a note is no longer an empty line
        assert "feels better today" in timeline
        assert "profile_updated" in timeline
        return page

    page = await assert_eventually(shown)
    assert "lives alone, daughter nearby" in section(page, "notes")
    assert "reached patient; medicines reviewed; note: feels better today" in section(page, "calls")
    assert '<strong id="owner">rn.alvarez</strong>' in page
    assert 'name="interpreter_needed" checked' in page
    assert 'name="window_start" value="09:00"' in page
    assert 'id="call-form"' not in page  # no call step is open any more


async def test_my_patients_and_the_team_page(team: Team) -> None:
    mine, other = await team.discharge(), await team.discharge()
    claim = await team.http.post(
        f"/transitions/{mine}/claim", json={}, headers=team.as_("rn.alvarez")
    )
    assert claim.status_code == 200, claim.text

    async def listed() -> str:
        page = await team.http.get("/", params={"view": "mine"}, headers=team.as_("rn.alvarez"))
        assert f'data-transition="{mine}"' in page.text
        return page.text

    page = await assert_eventually(listed)
    assert f'data-transition="{other}"' not in page
    assert "My patients:" in page
    team_page = await team.http.get("/ui/team", headers=team.as_("sup.kim"))
    assert team_page.status_code == 200, team_page.text
    owned = team_page.text.split('data-owner="rn.alvarez"', 2)[2]
    assert f'data-transition="{mine}"' in owned
    assert f'<form class="assign" data-transition="{other}">' in team_page.text
    refused = await team.http.get("/ui/team", headers=team.as_("rn.alvarez"))
    assert refused.status_code == 403
