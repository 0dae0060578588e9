"""Histories of real runs, replayed against the current workflow code on every test run:
a change that would break offboardings already in flight fails here.

Record them again (only when a change is meant to be incompatible, and then behind
``workflow.patched``) with: ``RECORD_HISTORIES=1 .venv/bin/pytest tests/test_scenarios.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from offboarding.worker import workflow_runner
from offboarding.workflows.offboarding import ClientOffboarding
from tests.conftest import ROOT

HISTORIES = sorted((ROOT / "tests" / "histories").glob("*.json"))


def test_histories_cover_every_scenario() -> None:
    names = {p.stem for p in HISTORIES}
    assert {"contract-end", "renewal", "termination-from-notice-period", "dispute",
            "data-rejection", "cancel"} <= names
    # Both sides of each workflow.patched change: before it, and after it.
    assert {"contract-end", "contract-end-handover-invite"} <= names
    assert {"contract-end-handover-invite", "contract-end-publish-on-change"} <= names
    # Before and after run-records and cancel-ends-exports: cancelled after an export.
    assert {"termination-from-notice", "cancel-ends-exports"} <= names
    # Before and after cancel-stops-farewell: a cancel while the archive is written.
    assert {"cancel-during-archive-before-the-patch", "cancel-during-archive"} <= names
    # Approvers asked one by one with their own links, deciding through the portal.
    assert {"termination-approval-links"} <= names


def _upserts(name: str) -> list[dict[str, str]]:
    """The workflow's upserts, each as attribute -> encoded value (the SDK's own upsert of
    TemporalChangeVersion, made by workflow.patched, left out)."""
    events = json.loads((ROOT / "tests" / "histories" / f"{name}.json").read_text())
    upserts = [{k: v.get("data", "") for k, v in e["upsertWorkflowSearchAttributesEventAttributes"]
                ["searchAttributes"]["indexedFields"].items() if k != "TemporalChangeVersion"}
               for e in events["events"]
               if e["eventType"] == "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"]
    return [u for u in upserts if u]


def test_search_attributes_are_upserted_only_when_they_change() -> None:
    """Issue 11: before publish-on-change, a contract end upserted every attribute 21
    times, 8 of them changing nothing. Now each upsert carries only what changed."""
    before, after = _upserts("contract-end-handover-invite"), _upserts(
        "contract-end-publish-on-change")
    published: dict[str, str] = {}
    no_ops = 0
    for values in before:
        no_ops += values.items() <= published.items()
        published.update(values)
    assert (len(before), no_ops) == (21, 8)
    published = {}
    for values in after:
        assert all(published.get(k) != v for k, v in values.items()), values
        published.update(values)
    assert len(after) < len(before)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replays_without_non_determinism(path: Path) -> None:
    history = WorkflowHistory.from_json(f"offboarding-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[ClientOffboarding], data_converter=pydantic_data_converter,
                        workflow_runner=workflow_runner())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
