"""BASELINE_PATCH: a transition started now records one patch marker (and one
TemporalChangeVersion upsert) for every patch before it, not one each."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow.support import patch_markers
from workflows.transition import TransitionWorkflow
from workflows.transition_base import BASELINE_COVERS, BASELINE_PATCH

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
SINCE_BASELINE = sorted(HISTORIES.glob("*.workflow-v12.json"))


@pytest.mark.parametrize("path", SINCE_BASELINE, ids=[p.stem for p in SINCE_BASELINE])
def test_a_transition_started_now_records_the_baseline_once_and_no_patch_it_covers(
    path: Path,
) -> None:
    markers = patch_markers(path)
    assert markers.count(BASELINE_PATCH) == 1
    assert not set(markers) & BASELINE_COVERS


def test_the_baseline_refuses_a_patch_it_does_not_cover() -> None:
    transition = object.__new__(TransitionWorkflow)
    transition._baseline = True
    assert transition._patched("owned-steps-v1")
    with pytest.raises(ValueError, match="not covered"):
        transition._patched("a-patch-added-later-v1")


def test_the_baseline_covers_only_patches_older_than_itself() -> None:
    """A patch newer than the baseline must never be implied by it: a transition started
    between the two would take the new code without its marker, and fail to replay."""
    older = {
        marker
        for path in HISTORIES.glob("*.json")
        if path not in SINCE_BASELINE
        for marker in patch_markers(path)
    }
    assert BASELINE_COVERS.issubset(older), sorted(BASELINE_COVERS - older)
