"""The web pages: the worklist (and "my patients"), a transition with every action the API and
CLI offer, its printable care plan, the supervisor's team view, the dashboard and the login,
server-rendered HTML (Jinja2, autoescaped) with a little JavaScript that calls the same API
the CLI uses."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from schemas.call import RED_FLAG_TITLES, AppointmentStatus, Reached, is_call_step
from schemas.care_plan import build_care_plan, reach_of
from schemas.diagnoses import diagnosis_titles
from schemas.languages import PLAN_LANGUAGES, language_name
from schemas.patient_plan import build_patient_plan
from schemas.person import ContactChannel
from schemas.protocol import TcmElement
from schemas.relationships import relationship_name
from schemas.social_needs import DOMAIN_TITLES, QUESTIONS, HrsnAnswers, HrsnDomain
from schemas.timeline import annotated, call_details
from schemas.transition import Complexity, TransitionState, TransitionStatus
from schemas.worklist import TransitionQuery
from store import dashboard, login_codes, projection, sessions
from store.team import overview as team_overview
from store.worklist import page as worklist_page
from workers.api.audit_trail import audit_shown
from workers.api.auth import (
    SESSION_COOKIE,
    Principal,
    Role,
    admissible,
    principal_of_credential,
    require,
)
from workers.api.common import Svc, problem, services
from workers.api.transitions import live_state, patient_of
from workers.runtime.services import Services
from workers.web.charts import bar_chart
from workers.web.patient_print import render_patient_plan

router = APIRouter(include_in_schema=False)


class SignInRequired(Exception):
    """A page asked for without a session (or token): answered with the login page."""


def _page_for(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """require(*roles) for a page: no credentials answer the login page instead of a 401."""
    admitted = require(*roles)

    async def dependency(request: Request) -> Principal:
        try:
            return await admitted(request)
        except HTTPException as exc:
            if exc.status_code == 401:
                raise SignInRequired from None
            raise

    return dependency


_viewer = _page_for(Role.CARE_MANAGER, Role.SUPERVISOR, Role.OPERATOR)
_supervisor = _page_for(Role.SUPERVISOR)
Viewer = Depends(_viewer)
Seeing = Annotated[Principal, Viewer]
SupervisorPage = Annotated[Principal, Depends(_supervisor)]
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
# Codes as words on every page: PID-15 languages and NK1-3 relationships.
templates.env.filters["language"] = language_name
templates.env.filters["relationship"] = relationship_name
VIEWS = {"open", "overdue", "today", "all", "mine"}
ASSIGNS_OTHERS = (Role.SUPERVISOR, Role.DEVELOPER)  # who may give work to someone else
USED_CODE = (
    "that sign-in link was used already or has expired: `carebridge login-url` prints a new one"
)


def _screening_questions() -> list[dict[str, Any]]:
    """The HRSN form: each answer field with its question and the tool's options."""
    questions = []
    for name, field in HrsnAnswers.model_fields.items():
        annotation = field.annotation
        if annotation is bool:
            kind, options = "yes_no", ["no", "yes"]
        elif get_origin(annotation) is tuple:
            kind, options = "many", [m.value for m in get_args(annotation)[0]]
        else:
            kind, options = "one", [m.value for m in annotation]  # type: ignore[union-attr]
        questions.append({"name": name, "text": QUESTIONS[name], "kind": kind, "options": options})
    return questions


SCREENING_QUESTIONS = _screening_questions()


def _localiser(svc: Services, zone: ZoneInfo | None) -> Any:
    """Times in a facility's zone: a row's (`value | local(t.facility)`), else the page's (a
    transition's own), else the site's."""
    site = svc.library.site
    page_zone = zone or site.calendar_zone()

    def local(value: datetime | None, facility: str | None = None) -> str:
        shown_in = site.zone_for(facility) if facility else page_zone
        return value.astimezone(shown_in).strftime("%a %m-%d %H:%M") if value else ""

    return local


def _render(
    request: Request, svc: Services, name: str, zone: ZoneInfo | None = None, **context: Any
) -> HTMLResponse:
    templates.env.filters["local"] = _localiser(svc, zone)
    return templates.TemplateResponse(request, name, context)


async def sign_in_page(request: Request, _: Exception) -> HTMLResponse:
    """The login page in place of a page that shows patients, 401 (the app's handler for
    SignInRequired): nothing of the page is rendered without a session."""
    return _login_page(request, services(request), "sign in to see this page", 401)


@router.get("/login", response_class=HTMLResponse)
async def login_form(
    request: Request, svc: Svc, code: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    """The login form; with `?code=` (the one-time URL `carebridge up` prints) the code is
    used up and exchanged for a session at once."""
    if code is None:
        return _login_page(request, svc)
    grant = await login_codes.redeem_code(svc.pool, code)
    if grant is None or not admissible(grant.role, svc.settings):
        return _login_page(request, svc, USED_CODE, 401)
    principal = Principal(grant.subject, Role(grant.role), grant.team, via="code")
    return await _signed_in(request, svc, principal)


def _login_page(
    request: Request, svc: Services, error: str = "", status: int = 200
) -> HTMLResponse:
    settings = svc.settings
    page = _render(
        request,
        svc,
        "login.html",
        error=error,
        idle=int(settings.session_idle_minutes),
        hours=int(settings.session_hours),
        development=settings.environment == "development",
    )
    page.status_code = status
    return page


def _same_origin(request: Request) -> bool:
    """A form posted from another site carries its Origin: a login it did not ask for (login
    CSRF) is refused. No Origin (an old client) is let through."""
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, svc: Svc) -> Response:
    """Check the credential once and exchange it for a server-side session: the cookie holds
    only the session's random id, HttpOnly, SameSite=Strict, Secure over TLS."""
    if not _same_origin(request):
        return _login_page(request, svc, "sign in from carebridge's own page", 403)
    token = (await _form(request)).get("token", "").strip()
    principal = await principal_of_credential(request, token) if token else None
    if principal is None:
        return _login_page(request, svc, "that token is unknown, revoked or expired", 401)
    return await _signed_in(request, svc, principal)


async def _signed_in(request: Request, svc: Services, principal: Principal) -> Response:
    """A new server-side session for whom the credential names, and its cookie."""
    settings = svc.settings
    session_id, _ = await sessions.open_session(
        svc.pool,
        subject=principal.subject,
        role=principal.role.value,
        team=principal.team,
        lifetime=timedelta(hours=settings.session_hours),
    )
    request.state.principal = principal  # audited as the person who signed in
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(settings.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=_over_tls(request, settings.public_url),
    )
    return response


def _over_tls(request: Request, public_url: str) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or public_url.startswith("https") or forwarded == "https"


@router.post("/logout", response_class=RedirectResponse)
async def logout(request: Request, svc: Svc) -> RedirectResponse:
    """End the session (the form carries the session's CSRF token)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id and _same_origin(request):
        found = await sessions.find_session(
            svc.pool, session_id, timedelta(minutes=svc.settings.session_idle_minutes)
        )
        sent = (await _form(request)).get("csrf", "")
        if found is not None and hmac.compare_digest(sent, found.csrf_token):
            await sessions.close_session(svc.pool, session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
async def worklist(
    request: Request,
    svc: Svc,
    principal: Seeing,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
    team: Annotated[str | None, Query(max_length=200)] = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    facility: Annotated[str | None, Query(max_length=200)] = None,
    view: str = "open",
    day: date | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    """Each row lists every open step that is due (overdue, due on the day: today unless
    `day` says) with its level; the most escalated first and, at the same level, TCM work
    first. `assignee=me`: the viewer; "my patients" (view=mine, or `owner`) what the viewer
    (or that care manager) owns, a step overdue, then one due today, first; `q` finds the
    patient (name, MRN, birth date, phone). Each patient shown is audited."""
    view = view if view in VIEWS else "open"
    if view == "mine":
        owner = principal.subject
    query = TransitionQuery(
        status=None if view == "all" else TransitionStatus.ACTIVE,
        assignee=assignee or None,
        owner=owner or None,
        team=team or None,
        facility=facility or None,
        overdue=True if view == "overdue" else None,
        due_today=view == "today",
        due_on=day,
        q=q.strip() if q and q.strip() else None,
        sort="urgency" if owner else "escalation",
        page_size=200,
    )
    query = query.for_caller(request.state.principal.subject)
    rows, total = await worklist_page(
        svc.pool, svc.field_cipher, svc.blind_index, query, svc.library.site
    )
    audit_shown(request, rows)
    return _render(
        request,
        svc,
        "worklist.html",
        page="worklist",
        rows=rows,
        total=total,
        query=query,
        view=view,
        me=request.state.principal.subject,
    )


@router.get("/ui/transitions/{transition_id}", response_class=HTMLResponse)
async def transition_page(
    request: Request, svc: Svc, principal: Seeing, transition_id: str
) -> HTMLResponse:
    """A transition: its steps with their actions, the call outcome form, the owner, notes,
    the profile form, the calls and the timeline."""
    state = await live_state(svc, transition_id)
    timeline = annotated(await projection.timeline(svc.pool, transition_id), state)
    zone = ZoneInfo(state.timezone) if state.timezone else svc.library.site.calendar_zone()
    # the ICD-10-CM table is read on first use: off the event loop
    diagnoses = await asyncio.to_thread(diagnosis_titles, state.risk.diagnosis_codes)
    return _render(
        request,
        svc,
        "transition.html",
        zone=zone,
        page="transition",
        state=state,
        patient=await patient_of(svc, state),
        reach=reach_of(state),
        timeline=timeline,
        diagnoses=diagnoses,
        forms=_transition_forms(state, zone, principal),
    )


def _transition_forms(state: TransitionState, zone: ZoneInfo, principal: Principal) -> Any:
    """What the transition page's forms offer: which steps are calls, the visit, the form's
    choices, the days a visit may have, and whether the viewer may give work to others."""
    visit = next(
        (s.step_id for s in state.steps if s.tcm_element == TcmElement.FACE_TO_FACE_VISIT), None
    )
    today = datetime.now(zone).date()
    return {
        "call_steps": [s.step_id for s in state.steps if is_call_step(s.kind, s.owner_role)],
        "open_calls": [
            s.step_id for s in state.steps if is_call_step(s.kind, s.owner_role) and s.is_open
        ],
        "visit": visit,
        "today": today.isoformat(),
        "discharge_day": state.discharged_at.astimezone(zone).date().isoformat(),
        "zone": zone.key,  # the forms' times are the facility's local times
        "reached": [r.value for r in Reached],
        "appointment_statuses": [a.value for a in AppointmentStatus],
        "red_flags": [(flag.value, title) for flag, title in RED_FLAG_TITLES.items()],
        "complexities": [c.value for c in Complexity],
        "channels": [c.value for c in ContactChannel],
        "need_domains": [(d.value, DOMAIN_TITLES[d]) for d in HrsnDomain],
        "assigns_others": principal.role in ASSIGNS_OTHERS,
        "calls": [(call, call_details(call)) for call in state.calls],
    }


@router.get("/ui/team", response_class=HTMLResponse)
async def team_page(
    request: Request,
    svc: Svc,
    principal: SupervisorPage,
    team: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The supervisor's view: each care manager's open transitions and today's calls, with
    a reassign box on every row."""
    chosen = principal.team or team or None
    zone = svc.library.site.calendar_zone()
    loads = await team_overview(svc.pool, zone, chosen)
    return _render(
        request, svc, "team.html", zone=zone, page="team", loads=loads, team=chosen or ""
    )


@router.get(
    "/ui/transitions/{transition_id}/care-plan", response_class=HTMLResponse, dependencies=[Viewer]
)
async def care_plan_page(request: Request, svc: Svc, transition_id: str) -> HTMLResponse:
    """The care plan as the staff work with it (the patient's printed one: .../print)."""
    state = await live_state(svc, transition_id)
    return _render(
        request,
        svc,
        "care_plan.html",
        zone=ZoneInfo(state.timezone) if state.timezone else None,
        page="care_plan",
        patient=await patient_of(svc, state),
        plan=build_care_plan(state),
        questions=SCREENING_QUESTIONS,
        resources={domain: svc.library.resources_for(domain) for domain in HrsnDomain},
    )


@router.get(
    "/ui/transitions/{transition_id}/care-plan/print",
    response_class=HTMLResponse,
    dependencies=[Viewer],
)
async def printable_care_plan(
    request: Request,
    svc: Svc,
    transition_id: str,
    lang: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The plan the patient takes home: plain words, in the profile's language (`?lang=es`
    overrides), nothing for the staff only."""
    if lang is not None and lang not in PLAN_LANGUAGES:
        known = " or ".join(PLAN_LANGUAGES)
        return problem(422, "Invalid request", f"The plan is printed in {known}, not in {lang}.")
    state = await live_state(svc, transition_id)
    # who the patient is (the registry); unknown: the name and birth date are lines to fill in
    patient = await patient_of(svc, state)
    plan = build_patient_plan(
        state,
        svc.library.site,
        now=datetime.now(UTC),
        language=lang,
        patient_name=patient.name if patient else "",
        birth_date=patient.birth_date if patient else None,
    )
    return HTMLResponse(render_patient_plan(plan, request.state.csp_nonce))


@router.get("/dashboard", response_class=HTMLResponse, dependencies=[Viewer])
async def dashboard_page(request: Request, svc: Svc) -> HTMLResponse:
    figures = await dashboard.last_30_days(svc.pool, svc.library)
    levels = figures["escalations_by_level"]
    charts = {
        "discharges": bar_chart("Discharges per day", figures["labels"], figures["discharges"]),
        "contacted": bar_chart(
            "% contacted within 2 business days (of the closed contact windows)",
            figures["labels"],
            figures["contacted_pct"],
            unit="%",
            peak=100,
            of=figures["contact_windows_closed"],
        ),
        "visits": bar_chart(
            "% of TCM discharges with a visit (of the closed windows)",
            ["within 7 days", "within 14 days"],
            [figures["visits_within_7_pct"], figures["visits_within_14_pct"]],
            unit="%",
            peak=100,
            of=[figures["visits_within_7_of"], figures["visits_within_14_of"]],
        ),
        "escalations": bar_chart(
            "Escalations by level",
            [f"level {n}" for n in (1, 2, 3)],
            [levels.get(n, 0) for n in (1, 2, 3)],
        ),
        "readmissions": bar_chart(
            "30-day readmissions",
            ["discharges", "readmitted"],
            [figures["discharged"], figures["readmitted"]],
        ),
    }
    return _render(request, svc, "dashboard.html", page="dashboard", figures=figures, charts=charts)
