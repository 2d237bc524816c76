"""Patient merges over a real MLLP connection (issue 15, item 11): A34 (v2.3), A36, A39,
A40 with repeated PID/MRG groups and A47 move the merged-away patient's encounters to the
survivor, re-key its running transitions and leave an alias, so a late message under the old
identifier lands on the surviving patient; repeating a merge changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from schemas import keys
from schemas.transition import StepStatus
from tests.helpers import (
    MllpClient,
    a03,
    assert_eventually,
    msa,
    segment,
    transition_of,
    with_event,
)
from tests.integration.conftest import RunningStack
from workers.runtime.settings import Settings
from workflows.transition import TransitionWorkflow


def fresh_facility() -> str:
    return f"MRG{uuid.uuid4().hex[:8].upper()}"


def patient(settings: Settings, facility: str, mrn: str) -> str:
    """The patient key routing computes for MRN^^^facility^MR."""
    return keys.patient_key(settings.key_secret.get_secret_value(), facility, mrn)


def merge(
    facility: str,
    trigger: str,
    groups: list[tuple[str, str]],
    *,
    structure: str | None = "ADT_A39",
    version: str = "2.5.1",
    control_id: str | None = None,
) -> bytes:
    """A merge message: for each (surviving MRN, merged MRN) a PID and its MRG, in order."""
    sent = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
    message_type = f"ADT^{trigger}" + (f"^{structure}" if structure else "")
    lines = [
        f"MSH|^~\\&|EPIC|{facility}|CAREBRIDGE|CB|{sent}||{message_type}|"
        f"{control_id or uuid.uuid4().hex[:20]}|P|{version}",
        f"EVN|{trigger}|{sent}",
    ]
    for surviving, merged in groups:
        lines += [
            f"PID|1||{surviving}^^^{facility}^MR||DOE^JANE||||||||||||ACCT-{surviving}",
            f"MRG|{merged}^^^{facility}^MR||ACCT-{merged}",
        ]
    return ("\r".join(lines) + "\r").encode()


def admission(facility: str, visit: str, mrn: str) -> bytes:
    """An A01 admitting the patient 30 minutes ago (after the discharges of a03())."""
    return with_event(
        a03(
            facility=facility,
            visit=visit,
            mrn=mrn,
            discharged="",
            admitted=datetime.now(UTC) - timedelta(minutes=30),
        ),
        "A01",
    )


async def encounter_rows(pool: asyncpg.Pool, facility: str) -> list[tuple[str, str, str]]:
    rows = await pool.fetch(
        "SELECT patient_key, kind, transition_id FROM encounters WHERE facility = $1 "
        "ORDER BY patient_key, kind, transition_id",
        facility,
    )
    return [(r["patient_key"], r["kind"], r["transition_id"]) for r in rows]


async def assert_readmitted(stack: RunningStack, transition: str) -> None:
    handle = stack.services.client.get_workflow_handle_for(
        TransitionWorkflow.run, keys.workflow_id(transition)
    )

    async def stopped() -> None:
        state = await handle.query(TransitionWorkflow.get_state)
        assert state.readmitted_at is not None
        assert {s.status for s in state.steps} == {StepStatus.STOPPED}

    await assert_eventually(stopped)


async def assert_timeline_says(pool: asyncpg.Pool, transition: str, text: str) -> None:
    async def recorded() -> None:
        details = await pool.fetch(
            "SELECT detail FROM transition_events WHERE transition_id = $1", transition
        )
        assert any(text in row["detail"] for row in details), [r["detail"] for r in details]

    await assert_eventually(recorded)


async def test_a34_v2_3_moves_the_encounters_and_a_readmission_under_the_survivor_finds_them(
    stack: RunningStack, settings: Settings
) -> None:
    facility = fresh_facility()
    client = await MllpClient.connect(stack.mllp_port)
    try:
        started = await client.exchange(a03(facility=facility, visit="V-IDX", mrn="OLD"))
        assert msa(started)[3] == "transition started (discharge-home)"
        merged = await client.exchange(
            merge(facility, "A34", [("NEW", "OLD")], structure=None, version="2.3")
        )
        readmitted = await client.exchange(admission(facility, "V-READMIT", "NEW"))
    finally:
        await client.close()

    assert msa(merged)[1] == "AA"
    assert msa(merged)[3] == "merged: 1 encounter(s) moved, 1 running transition(s) re-keyed"
    assert msa(readmitted)[3] == "readmission signalled to 1 transition(s)"
    transition = transition_of(settings, facility, "V-IDX")
    await assert_readmitted(stack, transition)
    await assert_timeline_says(stack.services.pool, transition, "A34")
    survivor = patient(settings, facility, "NEW")
    assert {
        (key, kind) for key, kind, _ in await encounter_rows(stack.services.pool, facility)
    } == {
        (survivor, "discharge"),
        (survivor, "admission"),
    }


async def test_an_a40_with_two_pid_mrg_groups_merges_both(
    stack: RunningStack, settings: Settings
) -> None:
    facility = fresh_facility()
    client = await MllpClient.connect(stack.mllp_port)
    try:
        for visit, mrn in (("V-ONE", "OLD1"), ("V-TWO", "OLD2")):
            ack = await client.exchange(a03(facility=facility, visit=visit, mrn=mrn))
            assert msa(ack)[3] == "transition started (discharge-home)"
        merged = await client.exchange(merge(facility, "A40", [("NEW1", "OLD1"), ("NEW2", "OLD2")]))
        readmitted = await client.exchange(admission(facility, "V-READMIT", "NEW2"))
    finally:
        await client.close()

    assert msa(merged)[3] == (
        "merged: 2 encounter(s) moved, 2 running transition(s) re-keyed (2 PID/MRG groups)"
    )
    assert await encounter_rows(stack.services.pool, facility) == sorted(
        [
            (
                patient(settings, facility, "NEW1"),
                "discharge",
                transition_of(settings, facility, "V-ONE"),
            ),
            (
                patient(settings, facility, "NEW2"),
                "discharge",
                transition_of(settings, facility, "V-TWO"),
            ),
            (patient(settings, facility, "NEW2"), "admission", None),
        ],
        key=lambda row: (row[0], row[1], row[2] or ""),
    )
    assert msa(readmitted)[3] == "readmission signalled to 1 transition(s)"
    await assert_readmitted(stack, transition_of(settings, facility, "V-TWO"))


async def test_late_messages_under_a_merged_away_mrn_land_on_the_survivor(
    stack: RunningStack, settings: Settings
) -> None:
    """OLD merged into MID (A40): an A01 sent later under OLD is MID's readmission (alias).
    MID re-keyed to NEW (A47): an A03 sent later under OLD is NEW's discharge (the alias
    chain OLD -> MID -> NEW)."""
    facility = fresh_facility()
    client = await MllpClient.connect(stack.mllp_port)
    try:
        await client.exchange(a03(facility=facility, visit="V-IDX", mrn="OLD"))
        first = await client.exchange(merge(facility, "A40", [("MID", "OLD")]))
        late_admission = await client.exchange(admission(facility, "V-LATE", "OLD"))
        assert msa(late_admission)[3] == "readmission signalled to 1 transition(s)"
        second = await client.exchange(
            merge(facility, "A47", [("NEW", "MID")], structure="ADT_A30")
        )
        late_discharge = await client.exchange(a03(facility=facility, visit="V-LATE3", mrn="OLD"))
    finally:
        await client.close()

    assert msa(first)[3] == "merged: 1 encounter(s) moved, 1 running transition(s) re-keyed"
    assert msa(second)[3] == "merged: 2 encounter(s) moved, 1 running transition(s) re-keyed"
    assert msa(late_discharge)[3] == "transition started (discharge-home)"
    survivor = patient(settings, facility, "NEW")
    rows = await encounter_rows(stack.services.pool, facility)
    assert {key for key, _, _ in rows} == {survivor}
    assert sorted((kind, transition or "") for _, kind, transition in rows) == sorted(
        [
            ("admission", ""),
            ("discharge", transition_of(settings, facility, "V-IDX")),
            ("discharge", transition_of(settings, facility, "V-LATE3")),
        ]
    )
    await assert_readmitted(stack, transition_of(settings, facility, "V-IDX"))
    aliases = await stack.services.pool.fetch(
        "SELECT merged_key, surviving_key, event_type FROM patient_aliases "
        "WHERE merged_key = ANY($1::text[]) ORDER BY event_type",
        [patient(settings, facility, mrn) for mrn in ("OLD", "MID")],
    )
    assert [tuple(a) for a in aliases] == [
        (patient(settings, facility, "OLD"), patient(settings, facility, "MID"), "A40"),
        (patient(settings, facility, "MID"), survivor, "A47"),
    ]


async def test_repeating_a_merge_changes_nothing(stack: RunningStack, settings: Settings) -> None:
    facility = fresh_facility()
    pool = stack.services.pool
    keys_of = [patient(settings, facility, mrn) for mrn in ("OLD", "NEW")]

    async def aliases() -> list[tuple[str, str]]:
        rows = await pool.fetch(
            "SELECT merged_key, surviving_key FROM patient_aliases "
            "WHERE merged_key = ANY($1::text[]) OR surviving_key = ANY($1::text[])",
            keys_of,
        )
        return [(r["merged_key"], r["surviving_key"]) for r in rows]

    client = await MllpClient.connect(stack.mllp_port)
    try:
        await client.exchange(a03(facility=facility, visit="V-IDX", mrn="OLD"))
        first = await client.exchange(merge(facility, "A36", [("NEW", "OLD")], structure="ADT_A30"))
        after_first = (await encounter_rows(pool, facility), await aliases())
        again = await client.exchange(merge(facility, "A36", [("NEW", "OLD")], structure="ADT_A30"))
        after_again = (await encounter_rows(pool, facility), await aliases())
        account = await client.exchange(
            merge(facility, "A35", [("NEW", "NEW")], structure="ADT_A30")
        )
    finally:
        await client.close()

    assert msa(first)[3].startswith("merged: 1 encounter(s) moved, 1 running transition(s)")
    assert msa(again)[1] == "AA"
    assert msa(again)[3].startswith("merged: 0 encounter(s) moved, 1 running transition(s)")
    assert "account merge (MRG-3) is recorded only" in msa(again)[3]
    assert after_again == after_first
    assert after_first[1] == [(keys_of[0], keys_of[1])]
    assert [key for key, _, _ in after_first[0]] == [keys_of[1]]
    assert msa(account)[1] == "AA"
    assert msa(account)[3].startswith("recorded; A35: the account merge (MRG-3) is recorded only")


async def test_a_patient_group_without_its_mrg_is_refused(stack: RunningStack) -> None:
    facility = fresh_facility()
    raw = merge(facility, "A40", [("NEW1", "OLD1")]) + f"PID|1||NEW2^^^{facility}^MR\r".encode()
    client = await MllpClient.connect(stack.mllp_port)
    try:
        ack = await client.exchange(raw)
    finally:
        await client.close()
    assert msa(ack)[1] == "AE"
    assert "PID 2 has no MRG after it" in msa(ack)[3]
    err = segment(ack, "ERR")
    assert err is not None and "PID^2^3" in err and "100" in err
