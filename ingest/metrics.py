"""Application metrics for the ADT path (Prometheus). Labels are event types and ACK codes:
never identifiers."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ADT_MESSAGES = Counter(
    "carebridge_adt_messages",
    "ADT messages answered, by trigger event and ACK code",
    ["event", "ack"],
)
ACK_LATENCY = Histogram(
    "carebridge_ack_latency_seconds",
    "Time from receiving a message to its ACK",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DEAD_LETTERS = Counter("carebridge_dead_letters", "Messages refused and kept as dead letters")
FHIR_MESSAGES = Counter(
    "carebridge_fhir_messages",
    "FHIR notification Bundles answered, by Da Vinci event (or unknown) and HTTP status",
    ["event", "status"],
)
