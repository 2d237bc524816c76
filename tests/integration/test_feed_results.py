"""A discharge summary sent as a result (ORU^R01) on the real stack: refused as unsupported
(AR) where the site lists no result codes; where it lists LOINC 18842-5 (site.yaml
feed.discharge_result_codes), an ORU of the index stay is TRC discharge information and
completes the facility handoff's discharge-summary step on the result's time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.testing import WorkflowEnvironment

from ingest import example_messages, feed_examples
from schemas import keys
from tests.helpers import MllpClient, assert_eventually, msa
from tests.integration.conftest import RunningStack
from tests.integration.test_ack_choices import listener_with_site
from workers.runtime.settings import Settings


def lists_discharge_summaries(site: dict[str, Any]) -> None:
    site["feed"]["discharge_result_codes"] = ["18842-5"]


async def send(port: int, raw: str) -> list[str]:
    client = await MllpClient.connect(port)
    try:
        return msa(await client.exchange(raw.encode()))
    finally:
        await client.close()


async def test_a_discharge_summary_result_completes_the_handoff_where_the_site_lists_it(
    stack: RunningStack,
    temporal_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    settings: Settings,
    tmp_path: Path,
) -> None:
    facility, visit = f"ORU{uuid.uuid4().hex[:6].upper()}", f"V{uuid.uuid4().hex[:8]}"
    handoff = example_messages.build("a03-snf", facility=facility, visit=visit)
    sent = await stack.post_adt(example_messages.render(handoff).encode())
    assert "|AA|" in sent.text, sent.text
    tid = keys.transition_id(
        keys.encounter_key(settings.key_secret.get_secret_value(), facility, visit)
    )

    async def planned() -> dict[str, Any]:
        state = await stack.http.get(f"/transitions/{tid}")
        assert state.status_code == 200 and state.json()["period_ends_at"], state.text
        found: dict[str, Any] = state.json()
        return found

    await assert_eventually(planned, within=30)
    written = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    result = feed_examples.oru(
        written=written, visit=visit, facility=facility, mrn=handoff.mrn, zone=UTC
    )
    refused = await send(stack.mllp_port, result)  # the shipped site lists no result codes
    assert refused[1] == "AR" and "not ADT, SIU, MDM" in refused[3], refused

    async with listener_with_site(
        temporal_env, pool, settings, tmp_path, lists_discharge_summaries
    ) as port:
        again = feed_examples.oru(
            written=written, visit=visit, facility=facility, mrn=handoff.mrn, zone=UTC
        )
        accepted = await send(port, again)
    assert accepted[1] == "AA" and "discharge information" in accepted[3], accepted

    async def completed() -> None:
        [step] = (await planned())["steps"]
        assert step["status"] == "completed" and step["completed_by"] == "feed"
        assert datetime.fromisoformat(step["completed_at"]) == written

    await assert_eventually(completed, within=30)
    evidence = await pool.fetchval(
        "SELECT count(*) FROM trc_evidence WHERE transition_id = $1 AND source = 'document'", tid
    )
    assert evidence == 1
