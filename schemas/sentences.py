"""Refusals as sentences, for people: not `ValueError: step 'x' is already completed` (how
Temporal passes on a validator's refusal) nor `Value error, ...` (how pydantic passes on a
model validator's), but "Step 'x' is already completed." Used by the API and the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# "ValueError: ", "temporalio.exceptions.ApplicationError: ", pydantic's "Value error, ",
# "Assertion failed, " and an OSError's "[Errno 111] ".
_MACHINE_PREFIX = re.compile(
    r"^(?:(?:[A-Za-z_][\w.]*(?:Error|Exception)|Value error|Assertion failed)[:,]\s*"
    r"|\[Errno \d+\]\s*)+"
)


def sentence(text: str) -> str:
    """The text without an exception name in front, capitalised, ending with a full stop."""
    cleaned = _MACHINE_PREFIX.sub("", text.strip()).strip()
    if not cleaned:
        return "The request was refused."
    cleaned = cleaned[0].upper() + cleaned[1:]
    return cleaned if cleaned[-1] in ".!?" else cleaned + "."


def refusal(exc: BaseException) -> str:
    """Why an action was refused: a workflow Update's failure names its cause (an
    ApplicationError carrying the validator's message), anything else its own text."""
    cause = getattr(exc, "cause", None) or exc.__cause__ or exc
    message = getattr(cause, "message", None)
    return sentence(message if isinstance(message, str) and message else str(cause))


def field_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """pydantic / FastAPI validation errors, one sentence each: `field.path: message.`"""
    lines = []
    for error in errors:
        field = ".".join(map(str, error.get("loc", ())))
        said = sentence(str(error["msg"]))
        lines.append(f"{field}: {_lower_first(said)}" if field else said)
    return " ".join(lines)


def _lower_first(text: str) -> str:
    """After "field: " the message goes on the sentence; an acronym keeps its capitals."""
    if len(text) > 1 and text[1].isupper():
        return text
    return text[0].lower() + text[1:]
