"""The projection-lag histogram has buckets in seconds (issue 19 item 2): a 3 s lag lands in
le=5, not in the SDK's millisecond bucket le=50 (where every lag landed before, so the p99
alert read ~49.5 s and always fired)."""

from __future__ import annotations

import re
import urllib.request

from tests.helpers import find_free_port
from workers.runtime.temporal import metrics_runtime


def test_a_three_second_lag_lands_in_the_five_second_bucket() -> None:
    port = find_free_port()
    runtime = metrics_runtime(port)
    histogram = runtime.metric_meter.create_histogram_float(
        "carebridge_projection_lag", "Seconds from a workflow event to its projection row", "s"
    )
    histogram.record(3.0)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        page = response.read().decode()
    buckets = {
        le: float(count)
        for le, count in re.findall(
            r'carebridge_projection_lag_bucket\{[^}]*le="([^"]+)"[^}]*\} (\S+)', page
        )
    }
    assert buckets["2.5"] == 0 and buckets["5"] == 1, buckets
    assert "50" not in buckets  # not the SDK's millisecond boundaries
