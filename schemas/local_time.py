"""Times people type: ISO 8601, with an offset or without one. Without one it is a local
time in the facility's zone; a local time the clocks skip (the hour lost when daylight
saving time starts) is refused, and one they show twice (the hour repeated when it ends) is
the first of the two, as the zone database reads it (fold=0)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def parse_instant(text: str, zone: ZoneInfo) -> datetime:
    """The instant `text` names; ValueError with a sentence when it names none."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text.strip()!r} is not a time: write it as YYYY-MM-DDTHH:MM, local to the "
            "facility or with an offset such as -05:00."
        ) from None
    if value.tzinfo is not None:
        return value
    local = value.replace(tzinfo=zone)
    if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != value:
        raise ValueError(
            f"{value:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks skip that hour "
            "when daylight saving time starts. Give a time after the change, or an offset."
        )
    return local
