"""What a simulated patient answers at the social needs screening: negative, except in each
domain the staff model's `needs` says screens positive with its chance (a referral then
opens for it)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from schemas.social_needs import (
    NO_NEEDS,
    FoodFrequency,
    HrsnAnswers,
    HrsnDomain,
    LivingSituation,
    SafetyFrequency,
    UtilityShutoff,
)

_POSITIVE: dict[HrsnDomain, dict[str, Any]] = {
    HrsnDomain.HOUSING: {"living_situation": LivingSituation.WORRIED},
    HrsnDomain.FOOD: {"food_worried_would_run_out": FoodFrequency.SOMETIMES},
    HrsnDomain.TRANSPORTATION: {"transportation_kept_from_needs": True},
    HrsnDomain.UTILITIES: {"utilities_shut_off_threatened": UtilityShutoff.YES},
    HrsnDomain.SAFETY: {
        name: SafetyFrequency.FREQUENTLY
        for name in (
            "safety_physically_hurt",
            "safety_insult_or_talk_down",
            "safety_threaten_with_harm",
            "safety_scream_or_curse",
        )
    },
}


def answers(needs: Mapping[HrsnDomain, float], rng: random.Random) -> HrsnAnswers:
    """NO_NEEDS with each domain of `needs` positive by its chance (no draw without needs)."""
    update: dict[str, Any] = {}
    for domain, chance in needs.items():
        if rng.random() < chance:
            update |= _POSITIVE[domain]
    return NO_NEEDS.model_copy(update=update) if update else NO_NEEDS
