"""Health-related social needs: the CMS Accountable Health Communities (AHC) HRSN screening
tool's core questions, how each domain screens positive, and the site's resource directory.

Scoring follows the AHC HRSN tool's guide: living situation positive for "worried about
losing it" or "no steady place", or any housing problem; food positive when either question
is "often" or "sometimes" true; transportation positive for "yes"; utilities positive for a
threatened or actual shut-off; interpersonal safety positive when the four frequency answers
(never 1 .. frequently 5) sum to 11 or more.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SAFETY_POSITIVE_SCORE = 11


class HrsnDomain(StrEnum):
    HOUSING = "housing_instability"
    FOOD = "food_insecurity"
    TRANSPORTATION = "transportation"
    UTILITIES = "utilities"
    SAFETY = "interpersonal_safety"


DOMAIN_TITLES = {
    HrsnDomain.HOUSING: "Housing instability",
    HrsnDomain.FOOD: "Food insecurity",
    HrsnDomain.TRANSPORTATION: "Transportation problems",
    HrsnDomain.UTILITIES: "Utility help needs",
    HrsnDomain.SAFETY: "Interpersonal safety",
}


class LivingSituation(StrEnum):
    STEADY = "steady_place"
    WORRIED = "worried_about_losing_it"
    NOT_STEADY = "no_steady_place"


class HousingProblem(StrEnum):
    PESTS = "pests"
    MOLD = "mold"
    LEAD = "lead_paint_or_pipes"
    NO_HEAT = "lack_of_heat"
    OVEN = "oven_or_stove_not_working"
    SMOKE_DETECTORS = "smoke_detectors_missing_or_not_working"
    WATER_LEAKS = "water_leaks"


class FoodFrequency(StrEnum):
    OFTEN = "often_true"
    SOMETIMES = "sometimes_true"
    NEVER = "never_true"


class UtilityShutoff(StrEnum):
    YES = "yes"
    NO = "no"
    ALREADY_SHUT_OFF = "already_shut_off"


class SafetyFrequency(StrEnum):
    NEVER = "never"
    RARELY = "rarely"
    SOMETIMES = "sometimes"
    FAIRLY_OFTEN = "fairly_often"
    FREQUENTLY = "frequently"

    @property
    def score(self) -> int:
        return list(SafetyFrequency).index(self) + 1


# The AHC HRSN core questions, as asked (one per answer field).
QUESTIONS = {
    "living_situation": "What is your living situation today?",
    "housing_problems": "Think about the place you live. Do you have problems with any of these?",
    "food_worried_would_run_out": "Within the past 12 months, you worried that your food would "
    "run out before you got money to buy more.",
    "food_did_not_last": "Within the past 12 months, the food you bought just didn't last and "
    "you didn't have money to get more.",
    "transportation_kept_from_needs": "In the past 12 months, has lack of reliable "
    "transportation kept you from medical appointments, meetings, work or from getting things "
    "needed for daily living?",
    "utilities_shut_off_threatened": "In the past 12 months has the electric, gas, oil, or water "
    "company threatened to shut off services in your home?",
    "safety_physically_hurt": "How often does anyone, including family and friends, physically "
    "hurt you?",
    "safety_insult_or_talk_down": "How often does anyone, including family and friends, insult "
    "or talk down to you?",
    "safety_threaten_with_harm": "How often does anyone, including family and friends, threaten "
    "you with harm?",
    "safety_scream_or_curse": "How often does anyone, including family and friends, scream or "
    "curse at you?",
}


class HrsnAnswers(BaseModel):
    """One answer per core question; anything outside the tool's options is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    living_situation: LivingSituation
    housing_problems: tuple[HousingProblem, ...] = Field(
        default=(), description="problems with the place they live; empty = none"
    )
    food_worried_would_run_out: FoodFrequency
    food_did_not_last: FoodFrequency
    transportation_kept_from_needs: bool
    utilities_shut_off_threatened: UtilityShutoff
    safety_physically_hurt: SafetyFrequency
    safety_insult_or_talk_down: SafetyFrequency
    safety_threaten_with_harm: SafetyFrequency
    safety_scream_or_curse: SafetyFrequency

    @property
    def safety_score(self) -> int:
        return sum(
            answer.score
            for answer in (
                self.safety_physically_hurt,
                self.safety_insult_or_talk_down,
                self.safety_threaten_with_harm,
                self.safety_scream_or_curse,
            )
        )

    def positive_domains(self) -> tuple[HrsnDomain, ...]:
        found = []
        if self.living_situation != LivingSituation.STEADY or self.housing_problems:
            found.append(HrsnDomain.HOUSING)
        if {self.food_worried_would_run_out, self.food_did_not_last} - {FoodFrequency.NEVER}:
            found.append(HrsnDomain.FOOD)
        if self.transportation_kept_from_needs:
            found.append(HrsnDomain.TRANSPORTATION)
        if self.utilities_shut_off_threatened != UtilityShutoff.NO:
            found.append(HrsnDomain.UTILITIES)
        if self.safety_score >= SAFETY_POSITIVE_SCORE:
            found.append(HrsnDomain.SAFETY)
        return tuple(found)


# Every answer the one that screens negative: no domain positive, no referral opens.
NO_NEEDS = HrsnAnswers(
    living_situation=LivingSituation.STEADY,
    food_worried_would_run_out=FoodFrequency.NEVER,
    food_did_not_last=FoodFrequency.NEVER,
    transportation_kept_from_needs=False,
    utilities_shut_off_threatened=UtilityShutoff.NO,
    safety_physically_hurt=SafetyFrequency.NEVER,
    safety_insult_or_talk_down=SafetyFrequency.NEVER,
    safety_threaten_with_harm=SafetyFrequency.NEVER,
    safety_scream_or_curse=SafetyFrequency.NEVER,
)


class Screening(BaseModel):
    """A recorded screening: who, when, the answers and the domains that screened positive."""

    model_config = ConfigDict(frozen=True)

    at: AwareDatetime
    by: str
    answers: HrsnAnswers
    positive: tuple[HrsnDomain, ...]


class Resource(BaseModel):
    """One entry of the site's resource directory (protocols/resources.yaml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str = Field(min_length=1)
    domain: HrsnDomain
    contact: str = ""
    hours: str = ""
    languages: tuple[str, ...] = ()


class ReferralOutcome(StrEnum):
    CONNECTED = "connected"
    DECLINED = "declined"
    UNAVAILABLE = "unavailable"


class Referral(BaseModel):
    """A closed resource referral: the resource used and what came of it."""

    model_config = ConfigDict(frozen=True)

    step_id: str
    domain: HrsnDomain
    resource: Resource
    outcome: ReferralOutcome
    at: AwareDatetime
    by: str
    note: str | None = None
