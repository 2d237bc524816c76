"""OperationOutcome bodies: the FHIR door's answers (success, refusal, resend later)."""

from __future__ import annotations

import json
from typing import Any

FHIR_JSON = "application/fhir+json"
TRANSITION_SYSTEM = "urn:carebridge:transition"  # the details coding that names a transition


def outcome(
    severity: str,
    code: str,
    text: str,
    *,
    expression: str = "",
    transition_id: str | None = None,
) -> dict[str, Any]:
    """One issue: `severity` information | error | fatal, `code` from the FHIR issue-type
    value set (informational, structure, required, value, not-supported, forbidden ...)."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": text}
    if expression:
        issue["expression"] = [expression]
    if transition_id:
        issue["details"] = {
            "coding": [{"system": TRANSITION_SYSTEM, "code": transition_id}],
            "text": f"transition {transition_id}",
        }
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def http_status(stored: dict[str, Any]) -> int:
    """The HTTP status of a stored answer (a resend is answered as the first time was)."""
    issues = stored.get("issue") or [{}]
    if all(issue.get("severity") in ("information", "warning") for issue in issues):
        return 200
    codes = {issue.get("code") for issue in issues}
    if "forbidden" in codes:
        return 403
    if "transient" in codes or "timeout" in codes:
        return 503
    return 400


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))
