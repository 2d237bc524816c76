"""Refusals read as sentences (not `ValueError: ...`), and `snooze --until` takes a local
time without an offset, in the facility's zone, refusing one the clocks skip."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from schemas.local_time import parse_instant
from schemas.person import ContactWindow
from schemas.sentences import field_errors, refusal, sentence

NY = ZoneInfo("America/New_York")


def next_spring_forward(zone: ZoneInfo) -> date:
    """The next day whose clocks jump forward in `zone` (from today: no literal date)."""
    day = datetime.now(UTC).date()
    for _ in range(400):
        before = datetime.combine(day, time(0), tzinfo=zone).utcoffset()
        after = datetime.combine(day, time(12), tzinfo=zone).utcoffset()
        if before is not None and after is not None and after > before:
            return day
        day += timedelta(days=1)
    raise AssertionError(f"{zone.key} has no daylight saving time")


def test_a_workflow_refusal_loses_its_exception_name_and_reads_as_a_sentence() -> None:
    failed = WorkflowUpdateFailedError(
        ApplicationError("step 'follow_up_visit' is already completed", type="ValueError")
    )
    assert str(failed.cause).startswith("ValueError: ")  # what was shown before
    assert refusal(failed) == "Step 'follow_up_visit' is already completed."


def test_a_model_validators_refusal_reads_as_a_sentence() -> None:
    with pytest.raises(ValidationError) as caught:
        ContactWindow(start=time(10), end=time(9))
    assert field_errors(caught.value.errors()) == ("The contact window must end after it starts.")
    with pytest.raises(ValidationError) as typed:
        ContactWindow.model_validate({"start": "soon", "end": "09:00"})
    assert field_errors(typed.value.errors()).startswith("start: input should be")


def test_sentence_strips_machine_prefixes_and_ends_with_a_full_stop() -> None:
    assert sentence("ValueError: the transition is completed") == "The transition is completed."
    assert sentence("[Errno 111] Connect call failed") == "Connect call failed."
    assert sentence("Already a sentence!") == "Already a sentence!"
    assert sentence("") == "The request was refused."


def test_a_time_with_an_offset_is_that_instant() -> None:
    instant = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    assert parse_instant(instant.isoformat(), NY) == instant


def test_a_local_time_without_an_offset_is_read_in_the_facilitys_zone() -> None:
    tomorrow = datetime.now(NY).date() + timedelta(days=1)
    parsed = parse_instant(f"{tomorrow.isoformat()}T09:30", NY)
    assert parsed == datetime.combine(tomorrow, time(9, 30), tzinfo=NY)
    honolulu = parse_instant(f"{tomorrow.isoformat()}T09:30", ZoneInfo("Pacific/Honolulu"))
    assert honolulu - parsed == timedelta(hours=5) or honolulu - parsed == timedelta(hours=6)


def test_a_local_time_the_clocks_skip_is_refused_as_a_sentence() -> None:
    gap_day = next_spring_forward(NY)
    with pytest.raises(ValueError) as caught:
        parse_instant(f"{gap_day.isoformat()}T02:30", NY)
    message = str(caught.value)
    assert message.startswith(f"{gap_day.isoformat()} 02:30 does not exist in America/New_York")
    assert message.endswith(".")
    after = parse_instant(f"{gap_day.isoformat()}T03:30", NY)
    assert after.utcoffset() == timedelta(hours=-4)


def test_text_that_is_no_time_is_refused_as_a_sentence() -> None:
    with pytest.raises(ValueError, match=r"^'next tuesday' is not a time: write it as"):
        parse_instant("next tuesday", NY)
