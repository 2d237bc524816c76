"""LACE readmission risk from what ADT carries (van Walraven et al., CMAJ 2010;182:551).

L: length of stay (PV1-44 to PV1-45, in days); A: acute (emergent) admission (PV1-4);
C: Charlson comorbidity from DG1 ICD-10 codes; E: ED visits in the 6 months before the
admission, from the store's encounter history. Points per the published table (domain-rules
§4.1). The ICD-10 to Charlson category map follows the Quan et al. (2005) coding algorithms,
with the weights of the LACE tool; it is an approximation of a chart review, and says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from schemas.protocol import RiskTier
from schemas.risk import RiskAssessment

# category: (weight, ICD-10 prefixes without dots)
CHARLSON_CATEGORIES: dict[str, tuple[int, tuple[str, ...]]] = {
    "myocardial_infarction": (1, ("I21", "I22", "I252")),
    "cerebrovascular": (1, ("G45", "G46", "H340", *(f"I6{i}" for i in range(10)))),
    "peripheral_vascular": (
        1,
        (
            "I70",
            "I71",
            "I731",
            "I738",
            "I739",
            "I771",
            "I790",
            "I792",
            "K551",
            "K558",
            "K559",
            "Z958",
            "Z959",
        ),
    ),
    "diabetes": (
        1,
        tuple(f"E1{t}{s}" for t in "01234" for s in "01689"),
    ),
    "heart_failure": (
        2,
        (
            "I099",
            "I110",
            "I130",
            "I132",
            "I255",
            "I420",
            "I425",
            "I426",
            "I427",
            "I428",
            "I429",
            "I43",
            "I50",
            "P290",
        ),
    ),
    "diabetes_with_end_organ_damage": (
        2,
        tuple(f"E1{t}{s}" for t in "01234" for s in "23457"),
    ),
    "chronic_pulmonary": (
        2,
        (
            "I278",
            "I279",
            *(f"J4{i}" for i in range(8)),
            *(f"J6{i}" for i in range(8)),
            "J684",
            "J701",
            "J703",
        ),
    ),
    "mild_liver_or_renal": (
        2,
        (
            "B18",
            "K700",
            "K701",
            "K702",
            "K703",
            "K709",
            "K713",
            "K714",
            "K715",
            "K717",
            "K73",
            "K74",
            "K760",
            "K762",
            "K763",
            "K764",
            "K768",
            "K769",
            "Z944",
            "N181",
            "N182",
            "N183",
        ),
    ),
    "any_tumour": (
        2,
        (
            *(f"C{n:02d}" for n in range(0, 27)),
            *(f"C{n:02d}" for n in range(30, 35)),
            *(f"C{n:02d}" for n in range(37, 42)),
            "C43",
            *(f"C{n:02d}" for n in range(45, 59)),
            *(f"C{n:02d}" for n in range(60, 77)),
            *(f"C{n:02d}" for n in range(81, 86)),
            "C88",
            *(f"C{n:02d}" for n in range(90, 98)),
        ),
    ),
    "dementia": (3, ("F00", "F01", "F02", "F03", "F051", "G30", "G311")),
    "connective_tissue": (
        3,
        ("M05", "M06", "M315", "M32", "M33", "M34", "M351", "M353", "M360"),
    ),
    "moderate_severe_liver_or_renal": (
        4,
        (
            "I850",
            "I859",
            "I864",
            "I982",
            "K704",
            "K711",
            "K721",
            "K729",
            "K765",
            "K766",
            "K767",
            "N184",
            "N185",
            "N186",
            "N19",
            "Z49",
            "Z992",
        ),
    ),
    "metastatic_solid_tumour": (6, ("C77", "C78", "C79", "C80")),
}
# A more severe form replaces the milder one, as in the Charlson index.
SUPERSEDES = {
    "diabetes_with_end_organ_damage": "diabetes",
    "metastatic_solid_tumour": "any_tumour",
    "moderate_severe_liver_or_renal": "mild_liver_or_renal",
}


def charlson_categories(codes: Iterable[str]) -> set[str]:
    normalised = [code.replace(".", "").strip().upper() for code in codes if code.strip()]
    found = {
        name
        for name, (_, prefixes) in CHARLSON_CATEGORIES.items()
        if any(code.startswith(prefixes) for code in normalised)
    }
    for severe, mild in SUPERSEDES.items():
        if severe in found:
            found.discard(mild)
    return found


def length_of_stay_points(days: int) -> int:
    if days < 1:
        return 0
    if days <= 3:
        return days
    if days <= 6:
        return 4
    if days <= 13:
        return 5
    return 7


def length_of_stay_days(admitted_at: datetime, discharged_at: datetime, zone: ZoneInfo) -> int:
    """Midnights between admission and discharge on the facility's local calendar: both
    instants in its zone first (a fixed offset from one stamp is wrong across a DST change)."""
    return max(
        (discharged_at.astimezone(zone).date() - admitted_at.astimezone(zone).date()).days, 0
    )


def lace(
    *,
    admitted_at: datetime | None,
    discharged_at: datetime,
    zone: ZoneInfo,
    admission_type: str,
    acute_admission_types: Iterable[str],
    diagnosis_codes: Iterable[str],
    ed_visits: int | None,
    high_risk_threshold: int,
) -> RiskAssessment:
    notes: list[str] = []
    if admitted_at is None:
        los_days = None
        l_points = 0
        notes.append("no admit time (PV1-44): L counted as 0")
    else:
        los_days = length_of_stay_days(admitted_at, discharged_at, zone)
        l_points = length_of_stay_points(los_days)
    a_points = 3 if admission_type in set(acute_admission_types) else 0
    if not admission_type:
        notes.append("no admission type (PV1-4): A counted as 0")
    codes = list(diagnosis_codes)
    categories = charlson_categories(codes)
    charlson = sum(CHARLSON_CATEGORIES[name][0] for name in categories)
    c_points = charlson if charlson < 4 else 5
    if not codes:
        notes.append("no DG1 diagnoses: C counted as 0")
    if ed_visits is None:
        notes.append("ED history unavailable: E counted as 0")
    visits = ed_visits or 0
    e_points = min(visits, 4)
    score = l_points + a_points + c_points + e_points
    return RiskAssessment(
        lace=score,
        tier=RiskTier.HIGH if score >= high_risk_threshold else RiskTier.STANDARD,
        length_of_stay_days=los_days,
        length_of_stay_points=l_points,
        acute_points=a_points,
        charlson_score=charlson,
        comorbidity_points=c_points,
        ed_visits=visits,
        ed_points=e_points,
        notes=tuple(notes),
        diagnosis_codes=tuple(codes),
    )
