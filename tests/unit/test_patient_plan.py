"""The printed plan is written for the patient: plain words, dates as days, the practice's
phone, nothing for the staff only, no social-needs domain unless screened positive and
agreed to share, in Spanish for a Spanish speaker. Times come from a clock the test owns."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.patient_plan import build_patient_plan, shared_needs
from schemas.person import Caregiver, ContactWindow, PersonProfile
from schemas.protocol import StepKind
from schemas.site import Practice, SiteConfig
from schemas.social_needs import (
    FoodFrequency,
    HrsnAnswers,
    HrsnDomain,
    LivingSituation,
    Referral,
    ReferralOutcome,
    Resource,
    SafetyFrequency,
    Screening,
    UtilityShutoff,
)
from schemas.transition import (
    Attempt,
    AttemptResult,
    StepState,
    StepStatus,
    TransitionState,
    TransitionStatus,
)
from workers.web.patient_print import render_patient_plan

NY = ZoneInfo("America/New_York")
SITE = SiteConfig(practice=Practice(name="Harbor Family Medicine", phone="(617) 555-0100"))
SPANISH_DAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
SPANISH_MONTHS = (
    *("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto"),
    *("septiembre", "octubre", "noviembre", "diciembre"),
)
FOOD_BANK = Resource(
    id="food-bank", name="Regional Food Bank", domain=HrsnDomain.FOOD, contact="(617) 555-0177"
)
# Food, transportation and interpersonal safety screen positive (safety sums to 12).
ANSWERS = HrsnAnswers(
    living_situation=LivingSituation.STEADY,
    food_worried_would_run_out=FoodFrequency.SOMETIMES,
    food_did_not_last=FoodFrequency.NEVER,
    transportation_kept_from_needs=True,
    utilities_shut_off_threatened=UtilityShutoff.NO,
    safety_physically_hurt=SafetyFrequency.SOMETIMES,
    safety_insult_or_talk_down=SafetyFrequency.SOMETIMES,
    safety_threaten_with_harm=SafetyFrequency.SOMETIMES,
    safety_scream_or_curse=SafetyFrequency.SOMETIMES,
)


class Clock:
    """The test's own instants: discharged a day ago, deadlines at the end of local days."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.discharged = self.now - timedelta(days=1)

    def end_of_day(self, days_after_discharge: int) -> datetime:
        day = self.discharged.astimezone(NY).date() + timedelta(days=days_after_discharge)
        return datetime.combine(day, time(23, 59, 59), tzinfo=NY)


def step(step_id: str, title: str, **fields: object) -> StepState:
    return StepState.model_validate(
        {"step_id": step_id, "title": title, "kind": StepKind.HUMAN_TASK, "owner_role": "x"}
        | fields
    )


def state_of(clock: Clock, profile: PersonProfile, **fields: object) -> TransitionState:
    window_miss = clock.now.replace(hour=3)  # a call at 03:00 UTC: outside 09:00-10:00
    steps = [
        step(
            "interactive_contact",
            "Interactive contact with patient or caregiver",
            owner_role="care_manager",
            due_at=clock.end_of_day(2),
            attempts=[Attempt(at=window_miss, by="rn.a", result=AttemptResult.NO_ANSWER)],
        ),
        step("medication_reconciliation", "Medication reconciliation", due_at=clock.end_of_day(14)),
        step("follow_up_visit", "Face-to-face follow-up visit", due_at=clock.end_of_day(14)),
        step(
            "social_needs_screening",
            "Social needs screening (AHC HRSN core domains)",
            kind=StepKind.SCREENING,
            due_at=clock.end_of_day(3),
        ),
        step(
            "referral_safety",
            "Resource referral: interpersonal safety",
            kind=StepKind.REFERRAL,
            referral_for=HrsnDomain.SAFETY,
            status=StepStatus.PENDING,
        ),
        step("discharge_summary_handoff", "Discharge summary sent", due_at=clock.end_of_day(1)),
    ]
    values: dict[str, object] = {
        "transition_id": "t" * 24,
        "facility": "GENHOSP",
        "status": TransitionStatus.ACTIVE,
        "protocol_id": "discharge-home",
        "protocol_version": 2,
        "discharged_at": clock.discharged,
        "timezone": "America/New_York",
        "period_ends_at": clock.end_of_day(29),
        "steps": steps,
        "profile": profile,
    }
    return TransitionState.model_validate(values | fields)


def screened(
    clock: Clock, state: TransitionState, shared: tuple[HrsnDomain, ...]
) -> TransitionState:
    screening = Screening(
        at=clock.now, by="rn.a", answers=ANSWERS, positive=ANSWERS.positive_domains()
    )
    referral = Referral(
        step_id="referral_food",
        domain=HrsnDomain.FOOD,
        resource=FOOD_BANK,
        outcome=ReferralOutcome.CONNECTED,
        at=clock.now,
        by="rn.a",
    )
    profile = state.profile.model_copy(update={"needs_shared_on_plan": shared})
    return state.model_copy(
        update={"screening": screening, "referrals": [referral], "profile": profile}
    )


PROFILE = PersonProfile(
    language="SPA",
    phones=("(617) 555-0123",),
    contact_window=ContactWindow(start=time(9), end=time(10)),
    caregivers=(Caregiver(name="JOHN DOE", relationship="SPO", phone="(617) 555-0142"),),
)
ENGLISH = PROFILE.model_copy(update={"language": "ENG"})


def english_day(day: date) -> str:
    return f"{day:%A}, {day:%B} {day.day}"


def spanish_day(day: date) -> str:
    return f"{SPANISH_DAYS[day.weekday()]} {day.day} de {SPANISH_MONTHS[day.month - 1]}"


def page(state: TransitionState, clock: Clock, **options: object) -> str:
    plan = build_patient_plan(state, SITE, now=clock.now, **options)  # type: ignore[arg-type]
    return render_patient_plan(plan, nonce="n0nce")


def test_deadlines_print_as_days_in_plain_words_without_protocol_terms() -> None:
    clock = Clock()
    html = page(state_of(clock, ENGLISH), clock)
    call_by = clock.end_of_day(2).date()
    assert f"We will call you by {english_day(call_by)} to see how you are doing." in html
    assert "Go over all your medicines with us by" in html
    assert "See your doctor for a follow-up visit by" in html
    for staff_words in (
        "23:59",
        "11:59",
        "AHC HRSN",
        "Interactive contact",
        "Medication reconciliation",
        "Resource referral",
        "Discharge summary",
        "care manager",
    ):
        assert staff_words not in html, staff_words


def test_the_practice_phone_and_hours_are_on_the_plan() -> None:
    clock = Clock()
    html = page(state_of(clock, ENGLISH), clock)
    assert "Questions? Call Harbor Family Medicine at (617) 555-0100." in html
    assert "Office hours: Monday to Friday, 8:00\u202fAM to 5:00\u202fPM" in html


def test_no_staff_warning_about_calls_outside_the_preferred_hours() -> None:
    clock = Clock()
    html = page(state_of(clock, ENGLISH), clock)
    assert "outside the preferred hours" not in html
    assert "Best time to call you: 9:00\u202fAM to 10:00\u202fAM" in html


def test_the_patients_name_and_birth_date_head_the_plan_and_are_blank_lines_without() -> None:
    clock = Clock()
    born = clock.now.date().replace(year=clock.now.year - 77, day=1)
    named = page(state_of(clock, ENGLISH), clock, patient_name="Jane Q Doe", birth_date=born)
    assert "<strong>Jane Q Doe</strong>" in named
    assert f"{born:%B} 1, {born.year}" in named
    unnamed = page(state_of(clock, ENGLISH), clock)
    assert unnamed.count('<span class="blank"></span>') == 2


def test_the_patients_own_phone_and_caregiver_relationship_in_words() -> None:
    clock = Clock()
    html = page(state_of(clock, ENGLISH), clock)
    assert "Your phone: (617) 555-0123" in html
    assert "JOHN DOE (spouse), (617) 555-0142." in html
    assert "We will ask you before we call them." in html  # no consent recorded


def test_an_a08_number_is_the_one_printed() -> None:
    clock = Clock()
    html = page(state_of(clock, ENGLISH, contact_numbers=["(617) 555-0999"]), clock)
    assert "Your phone: (617) 555-0999" in html and "555-0123" not in html


def test_before_any_screening_no_social_need_prints_not_even_a_pending_safety_referral() -> None:
    clock = Clock()
    html = page(state_of(clock, ENGLISH), clock)
    assert "safe" not in html.lower() and "safety" not in html.lower()
    assert 'id="needs"' not in html
    assert "We will ask you a few questions about things at home" in html


def test_a_positive_domain_prints_only_when_the_patient_agreed_to_share_it() -> None:
    clock = Clock()
    nothing_shared = screened(clock, state_of(clock, ENGLISH), shared=())
    assert shared_needs(nothing_shared) == ()
    assert 'id="needs"' not in page(nothing_shared, clock)

    food_only = screened(clock, state_of(clock, ENGLISH), shared=(HrsnDomain.FOOD,))
    html = page(food_only, clock)
    assert "Having enough food" in html and "Regional Food Bank, (617) 555-0177" in html
    assert "Feeling safe at home" not in html and "Rides to appointments" not in html


def test_safety_prints_only_when_screened_positive_and_shared() -> None:
    clock = Clock()
    shared = (HrsnDomain.SAFETY, HrsnDomain.HOUSING)  # housing is shared but screened negative
    html = page(screened(clock, state_of(clock, ENGLISH), shared=shared), clock)
    assert "Feeling safe at home" in html
    assert "A steady, safe place to live" not in html


def test_a_spanish_speaker_gets_the_plan_in_spanish() -> None:
    clock = Clock()
    html = page(state_of(clock, PROFILE), clock)
    call_by = clock.end_of_day(2).date()
    assert '<html lang="es">' in html
    assert "Su plan de cuidado después del hospital" in html
    assert f"Le llamaremos a más tardar el {spanish_day(call_by)} para saber cómo está." in html
    assert "¿Preguntas? Llame a Harbor Family Medicine al (617) 555-0100." in html
    assert "Idioma: español" in html and "JOHN DOE (cónyuge)" in html
    assert "We will call you" not in html


def test_lang_overrides_the_profiles_language() -> None:
    clock = Clock()
    assert "We will call you by" in page(state_of(clock, PROFILE), clock, language="en")
    assert "Le llamaremos" in page(state_of(clock, ENGLISH), clock, language="es")


def test_a_booked_visit_prints_with_its_time_and_a_passed_deadline_as_soon() -> None:
    clock = Clock()
    visit = datetime.combine(clock.end_of_day(5).date(), time(10, 30), tzinfo=NY)
    late = state_of(clock, ENGLISH)
    late.steps[0].due_at = clock.end_of_day(-2)  # the call's day is behind us, still open
    [follow_up] = [step for step in late.steps if step.step_id == "follow_up_visit"]
    follow_up.appointment_at = visit  # booked on a call
    html = page(late, clock)
    assert (
        f"Your follow-up visit with your doctor: {english_day(visit.date())} at 10:30\u202fAM."
        in html
    )
    assert "We will call you soon to see how you are doing." in html
    spanish = page(late, clock, language="es")
    assert f"{spanish_day(visit.date())} a las 10:30" in spanish
    assert ".." not in spanish  # "a.m." ends the sentence with one period


def test_a_completed_call_prints_the_day_we_talked() -> None:
    clock = Clock()
    state = state_of(clock, ENGLISH)
    state.steps[0].status = StepStatus.COMPLETED
    state.steps[0].completed_at = clock.now
    html = page(state, clock)
    assert f"We talked with you on {english_day(clock.now.astimezone(NY).date())}." in html


def test_a_discharge_to_a_facility_prints_where_the_patient_is_not_the_home_phone() -> None:
    clock = Clock()
    at_snf = ENGLISH.model_copy(update={"discharged_to": "SUNNY ACRES SNF"})
    html = page(state_of(clock, at_snf), clock)
    assert "Where you are staying now: SUNNY ACRES SNF. We will reach you there." in html
    assert "Your phone" not in html and "555-0123" not in html
