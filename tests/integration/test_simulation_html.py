"""`carebridge simulate --compare --html FILE` end to end: a small run of both protocol sets,
its report opened offline in headless Chromium (nothing fetched, every chart drawn), holding
both sets and the numbers the same run prints as JSON. The screenshot goes to the test's
folder (docs/simulation/report.png is made from a month's report with
`python -m tests.integration.report_screenshot`)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import run_cli, simulate_env
from tests.integration.report_screenshot import open_offline
from tests.integration.test_simulation import CONTACT_1_DAY, EXAMPLE_STAFF, PROTOCOLS
from tests.integration.test_web_browser import browser  # noqa: F401 (the fixture)
from workers.runtime.settings import Settings


def day_row(day: dict[str, Any]) -> list[str]:
    """A workload day of the JSON report as its table row reads."""
    needed, available = day["hours_needed"], day["hours_available"]
    over = f"by {round(needed - available, 2):g} h" if needed > available else ""
    shown = f"{date.fromisoformat(day['day']):%a %Y-%m-%d}"
    return [shown, f"{needed:g}", f"{available:g}", str(day["needed"]), over]


@pytest.mark.timeout(300)
async def test_the_html_report_of_a_comparison_opens_offline_in_chromium_with_its_numbers(
    browser: Any,  # noqa: F811
    settings: Settings,
    tmp_path: Path,
) -> None:
    report = tmp_path / "report.html"
    env = simulate_env(settings, tmp_path)
    answer = await run_cli(
        env,
        "simulate",
        "--days=1",
        "--discharges-per-day=3",
        f"--staff={EXAMPLE_STAFF}",
        f"--protocols={PROTOCOLS}",
        f"--compare={CONTACT_1_DAY}",
        "--json",
        f"--html={report}",
    )
    assert answer.exit_code == 0, answer.output
    assert f"report written to {report}" in answer.stderr
    runs = json.loads(answer.stdout)["runs"]

    opened = await open_offline(browser, report.as_uri())
    page = opened.page
    assert opened.refused == []
    charts = page.locator("svg.chart")
    roles = {day["role"] for day in runs[0]["workload"]}
    assert await charts.count() == 2 + 2 * len(roles)
    for n in range(await charts.count()):
        box = await charts.nth(n).bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
    text = await page.locator("main").text_content() or ""
    assert str(PROTOCOLS) in text and str(CONTACT_1_DAY) in text
    for n, run in enumerate(runs, start=1):
        for role in roles:
            shown = await page.locator(f"#workload-{n}-{role} tbody tr").evaluate_all(
                "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
            )
            assert shown == [day_row(day) for day in run["workload"] if day["role"] == role]
        share = run["contact_2_business_days"]
        assert f"({share['met']}/{share['of']})" in text
    (tmp_path / "report.png").write_bytes(await page.screenshot(full_page=True))


async def test_simulate_refuses_an_html_file_in_a_missing_folder(tmp_path: Path) -> None:
    answer = await run_cli(
        {}, "simulate", f"--staff={EXAMPLE_STAFF}", f"--html={tmp_path / 'nowhere' / 'r.html'}"
    )
    assert answer.exit_code == 1
    assert "does not exist (for --html)" in answer.output
    assert "Traceback" not in answer.output
