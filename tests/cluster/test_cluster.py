"""The contract end on a real Temporal cluster (PostgreSQL, SQL visibility, two server
hosts), driven through the CLI's updates as in tests/integration/test_scenarios.py, then
``offboarding replay-check`` against the cluster's history."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import GetClusterInfoRequest

from devtools.cluster import NUM_HISTORY_SHARDS, Cluster
from devtools.mailcapture import MailCapture
from devtools.scim import ScimServer
from devtools.stack import worker_env
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import (
    CompleteTask,
    MeetingHeld,
    RecordFeedback,
)
from offboarding.models.status import OffboardingResult
from tests.helpers import client_file, new_worker, wait_until, waiting_for
from tests.integration.test_scenarios import FAST, settle_and_verify

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]
WAIT = 90.0
"""A real cluster answers a status query and hands out tasks more slowly than the dev
server; nothing here waits on a timer of more than a few seconds."""


async def test_contract_end_completes_on_the_cluster_and_replays(
        cluster: Cluster, settings: Settings, mail: MailCapture, scim: ScimServer) -> None:
    client = await cluster.client()
    info = await client.workflow_service.get_cluster_info(GetClusterInfoRequest())
    assert (info.persistence_store, info.visibility_store) == ("postgres12", "postgres12")
    assert info.history_shard_count == NUM_HISTORY_SHARDS
    cf = client_file(end_in_days=32, scim=scim, follow_up_days=10, retention_days=5)
    async with new_worker(client, settings):
        cli = OffboardingClient(client, settings.task_queue)
        wid = await cli.start(cf, FAST)
        handle = client.get_workflow_handle(wid)
        await cli.send(wid, "complete-task", CompleteTask(by="ops", task="terms-met",
                                                          note="checked"))
        await wait_until(handle, waiting_for("meeting"), timeout=WAIT)
        await cli.send(wid, "meeting-held", MeetingHeld(by="ops", notes="KPIs met"))
        await settle_and_verify(cli, handle, cf, timeout=WAIT)
        await wait_until(handle, waiting_for("feedback"), timeout=WAIT)
        await cli.send(wid, "record-feedback", RecordFeedback(by="ops", nps=9, csat=4))
        result = await client.get_workflow_handle(wid, result_type=OffboardingResult).result()

    assert result.outcome == "completed"
    assert [s.state for s in result.status.steps] == ["done"] * len(result.status.steps)
    billing = cf.contacts.billing.email
    assert [m.subject for m in mail.to(billing)][-1] == "Our financial relationship is settled"

    # The pre-deploy check as an operator runs it, against the cluster's live history.
    env = worker_env(settings, cluster.address, TEMPORAL_NAMESPACE=cluster.namespace)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "offboarding"), "replay-check",
         "--where", f'WorkflowId = "{wid}"'],
        env=env, capture_output=True, text=True, timeout=300, cwd=os.getcwd())
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"ok     {wid} (COMPLETED)" in done.stdout
    assert "1 histories replay against this code" in done.stdout
