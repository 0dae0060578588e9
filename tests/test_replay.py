"""Histories of real runs, replayed against the current workflow code on every test run:
a change that would break offboardings already in flight fails here.

Record them again (only when a change is meant to be incompatible, and then behind
``workflow.patched``) with: ``RECORD_HISTORIES=1 .venv/bin/pytest tests/test_scenarios.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from offboarding.workflows.offboarding import ClientOffboarding

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_cover_every_scenario() -> None:
    names = {p.stem for p in HISTORIES}
    assert {"contract-end", "renewal", "termination-from-notice-period", "dispute",
            "data-rejection", "cancel"} <= names
    # Both sides of each workflow.patched change: before it, and after it.
    assert {"contract-end", "contract-end-handover-invite"} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replays_without_non_determinism(path: Path) -> None:
    history = WorkflowHistory.from_json(f"offboarding-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[ClientOffboarding], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
