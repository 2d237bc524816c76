"""Transitions, cancellations and readmissions: what a generated feed holds (each A03 starts
a transition, each A13 cancels one, each A01 readmits one), and what the engine did, read
from the transitions' final states. A replayed feed's effect depends on the engine
(attribution, protocols, windows), so only what the engine did is known of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.transition import TransitionState, TransitionStatus
from workers.simulation.feed import FeedMessage


@dataclass(frozen=True)
class FeedCounts:
    messages: int  # accepted (AA), for what the engine did
    transitions: int
    cancelled: int
    readmissions: int


def expected(feed: Sequence[FeedMessage]) -> FeedCounts | None:
    """What a generated feed holds; None for a replayed one."""
    if any(m.replayed for m in feed):
        return None
    triggers = [m.trigger for m in feed]
    return FeedCounts(
        messages=len(triggers),
        transitions=triggers.count("A03"),
        cancelled=triggers.count("A13"),
        readmissions=triggers.count("A01"),
    )


def ran(finals: Sequence[TransitionState], accepted: int) -> FeedCounts:
    """What the engine did: `accepted` messages, and the transitions' final states."""
    return FeedCounts(
        messages=accepted,
        transitions=len(finals),
        cancelled=sum(f.status == TransitionStatus.CANCELLED for f in finals),
        readmissions=sum(f.readmitted_at is not None for f in finals),
    )
