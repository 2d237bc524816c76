"""What must hold after any simulated run, each broken rule a sentence: every transition
closed with an outcome (at its period end unless cancelled or ended early), the projection
equals Temporal's state, no escalation written twice, no inbox row left unsettled, every
history under 2,000 events, no role working more minutes than it has, every time left in
PostgreSQL inside the simulated period, and the engine's counts equal what the simulator
did: for a generated feed, every message accepted, one transition per A03, one cancelled per
A13, one readmitted per A01; for a replayed one, no more transitions than A03s accepted and
no more cancelled than A13s accepted; every message of the feed accepted in the end, every
notification delivered or recorded as failed, none delivered twice by the webhook's own log
(a run with faults), and the TCM report's counts equal the transitions' outcomes."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, timedelta
from typing import Any

from schemas.transition import TransitionStatus
from workers.simulation import report_counts
from workers.simulation.counts import ran
from workers.simulation.engine import RunResult

MAX_HISTORY = 2000
CLOSE_SLACK = timedelta(minutes=5)
PERIOD_ENDED = "transition period ended"


def problems(result: RunResult) -> list[str]:
    found: list[str] = []
    found += _closed(result)
    found += _projection(result)
    found += _deliveries(result)
    found += report_counts.differences(result.tcm_report, result.finals)
    if result.unaccepted:
        found.append(f"{result.unaccepted} message(s) of the feed were never accepted (AA)")
    twice = Counter((n["transition_id"], n["step_id"], n["level"]) for n in result.notifications)
    found += [
        f"escalation {key} was written {count} times" for key, count in twice.items() if count > 1
    ]
    found += result.stamps.outside() if result.stamps else []
    if result.unsettled_inbox:
        found.append(f"{result.unsettled_inbox} inbox row(s) were never settled")
    found += [
        f"transition {tid} has {length} history events (limit {MAX_HISTORY})"
        for tid, length in result.history_lengths.items()
        if length >= MAX_HISTORY
    ]
    found += [
        f"{role} worked {load.minutes_done:g} minutes on {day.isoformat()}, more than its "
        f"{load.minutes_available:g} available"
        for day, roles in sorted(result.staff.load.items())
        for role, load in sorted(roles.items())
        if load.minutes_done > load.minutes_available + 1e-6
    ]
    attempts = sum(len(step.attempts) for final in result.finals for step in final.steps)
    calls = sum(n for what, n in result.staff.actions.items() if what.startswith("call:"))
    if attempts != calls:
        found.append(f"the simulator made {calls} calls but the transitions record {attempts}")
    found += _counts(result)
    return found


def _counts(result: RunResult) -> list[str]:
    did = ran(result.finals, result.acks.get("AA", 0))
    want = result.expected
    if want is None:
        return [
            f"{count} transitions {what} but only {bound} {trigger}s were accepted"
            for count, what, bound, trigger in (
                (did.transitions, "ran", result.accepted["A03"], "A03"),
                (did.cancelled, "were cancelled", result.accepted["A13"], "A13"),
            )
            if count > bound
        ]
    return [
        f"the feed held {held} {what} but the engine {verb} {done}"
        for held, done, what, verb in (
            (want.messages, did.messages, "messages", "accepted"),
            (want.transitions, did.transitions, "A03 discharges", "ran transitions for"),
            (want.cancelled, did.cancelled, "A13 cancels", "cancelled"),
            (want.readmissions, did.readmissions, "readmissions (A01)", "readmitted"),
        )
        if held != done
    ]


def _closed(result: RunResult) -> list[str]:
    found = []
    for final in result.finals:
        tid = final.transition_id
        if final.status == TransitionStatus.ACTIVE or final.outcome is None:
            found.append(f"transition {tid} ended {final.status.value} without an outcome")
            continue
        if final.outcome.reason != PERIOD_ENDED:
            continue  # cancelled, deceased, closed at start: closed when that happened
        if final.period_ends_at is None:
            found.append(f"transition {tid} ended its period without a period end")
            continue
        late = final.outcome.closed_at - final.period_ends_at
        if not timedelta(0) <= late < CLOSE_SLACK:
            found.append(f"transition {tid} closed {late} after its period end")
    return found


def _projection(result: RunResult) -> list[str]:
    rows = {row["transition_id"]: row for row in result.projection}
    found = []
    for final in result.finals:
        tid = final.transition_id
        row = rows.get(tid)
        if row is None:
            found.append(f"transition {tid} has no projection row")
            continue
        steps = {s["step_id"]: s["status"] for s in _json(row["steps"])}
        outcome = final.outcome.model_dump(mode="json") if final.outcome else None
        differs = [
            name
            for name, same in (
                ("status", row["status"] == final.status.value),
                ("version", row["version"] == final.version),
                ("steps", steps == {s.step_id: s.status.value for s in final.steps}),
                ("outcome", _json(row["outcome"]) == outcome),
                ("current step", row["current_step"] is None),
                ("next due", row["next_due_at"] is None),
            )
            if not same
        ]
        if differs:
            found.append(
                f"transition {tid}: the projection's {', '.join(differs)} differ from "
                f"Temporal's state (version {row['version']} against {final.version})"
            )
    return found


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _deliveries(result: RunResult) -> list[str]:
    """Each notification settled (delivered, or its failure recorded for an operator), and,
    by the webhook server's log, no idempotency key answered 200 twice nor a row marked
    delivered that it never answered 200."""
    found = [
        f"notification {n['transition_id']}/{n['step_id']} level {n['level']} was neither "
        "delivered nor recorded as failed"
        for n in result.notifications
        if n["delivered_at"] is None and n["failure"] is None
    ]
    if not result.faults:
        return found  # no webhook server of the run's own to ask
    answered = Counter(r.idempotency_key for r in result.webhook if r.status == 200)
    found += [
        f"notification {key} was delivered {count} times (the webhook's log)"
        for key, count in answered.items()
        if count > 1
    ]
    found += [
        f"notification {key} is marked delivered but the webhook never accepted it"
        for n in result.notifications
        if n["transport"] == "webhook"
        and n["delivered_at"] is not None
        and (key := idempotency_key(n)) not in answered
    ]
    return found


def idempotency_key(notification: Any) -> str:
    """The idempotency key the notify activity sends (activities/notifications.py)."""
    due = notification["due_at"].astimezone(UTC).isoformat()
    return (
        f"{notification['transition_id']}:{notification['step_id']}:{notification['level']}:{due}"
    )
