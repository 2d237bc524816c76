"""How long ER7 parsing takes: python-hl7 alone, and carebridge's whole mapping (normalise,
parse, validate, map to the schemas event, build the ACK). Prints a table and JSON.

    python -m bench.parse [--messages 5000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import hl7

from ingest import er7, example_messages, mapping
from ingest.ack import build_ack
from schemas.adt import AckCode

ZONE = ZoneInfo("America/New_York")


def corpus() -> list[bytes]:
    """A discharge home, a high-risk one (NK1, three DG1) and an LF-separated v2.3 discharge
    with home health, as feeds send them (local time with its offset)."""
    home, high_risk, home_health = (
        example_messages.build(kind, zone=ZONE)
        for kind in ("a03", "a03-high-risk", "a03-home-health")
    )
    return [
        example_messages.render(home).encode(),
        example_messages.render(high_risk).encode(),
        example_messages.render(replace(home_health, version="2.3"), "\n").encode(),
    ]


def timed(label: str, messages: list[bytes], work: Callable[[bytes], object]) -> dict[str, object]:
    samples = []
    for raw in messages:
        started = time.perf_counter_ns()
        work(raw)
        samples.append(time.perf_counter_ns() - started)
    samples.sort()
    return {
        "what": label,
        "messages": len(samples),
        "mean_us": round(statistics.fmean(samples) / 1000, 1),
        "p50_us": round(samples[len(samples) // 2] / 1000, 1),
        "p99_us": round(samples[int(len(samples) * 0.99)] / 1000, 1),
        "per_second": round(1e9 / statistics.fmean(samples)),
    }


def full_path(raw: bytes) -> object:
    message = er7.parse(raw)
    header = mapping.header(message)
    mapping.to_event(message, ZONE)
    return build_ack(header, AckCode.ACCEPT, now=datetime.now(UTC))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    sources = corpus()
    messages = [sources[i % len(sources)] for i in range(args.messages)]
    for raw in messages[:200]:  # warm up
        full_path(raw)
    results = [
        timed("python-hl7 parse only", messages, lambda r: hl7.parse(er7.normalise(er7.decode(r)))),
        timed("carebridge parse+map+ACK", messages, full_path),
    ]
    print(f"{'what':28} {'mean us':>8} {'p50 us':>8} {'p99 us':>8} {'msg/s':>8}")
    for row in results:
        print(
            f"{row['what']:28} {row['mean_us']:>8} {row['p50_us']:>8} {row['p99_us']:>8} "
            f"{row['per_second']:>8}"
        )
    print(json.dumps({"bench": "parse", "sizes": [len(c) for c in sources], "results": results}))


if __name__ == "__main__":
    main()
