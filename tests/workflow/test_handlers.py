"""What a running offboarding declares to Temporal, asked the way the Web UI and
``temporal workflow metadata`` ask it (the built-in ``__temporal_workflow_metadata``
query): one update per action under the action's name, one dynamic signal handler that
takes every signal, and the ``status`` query. Public API only; the argument and return
types of each update are checked without a server in tests/unit/test_actions.py."""

from __future__ import annotations

from temporalio.api.sdk.v1 import WorkflowMetadata

from offboarding.models.messages import ACTIONS
from tests.helpers import client_file, wait_until
from tests.workflow.stubs import StubWorld


async def test_a_running_offboarding_declares_an_update_per_action_and_one_signal_handler(
        world: StubWorld) -> None:
    today = (await world.env.get_current_time()).date()
    handle = await world.start(client_file(today=today, end_in_days=45))
    await wait_until(handle, lambda s: s.step("notice").state == "waiting")
    meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    definition = meta.definition
    assert definition.type == "ClientOffboarding"
    assert sorted(u.name for u in definition.update_definitions) == sorted(ACTIONS)
    # The dynamic handler (no name) takes every signal, with any number of arguments.
    assert [s.name for s in definition.signal_definitions] == [""]
    assert "status" in {q.name for q in definition.query_definitions}
