"""A Worker Versioning upgrade with an offboarding in flight, on the real cluster
(PostgreSQL, two server hosts; the deployment's entity workflows run on host A's worker
service): tests/integration/test_versioning.py's upgrade, carried to the end.

An offboarding starts on v1 while v1 is current. v2 starts and is made current: a new
offboarding starts on v2; the one in flight takes its next decision on v2 (the worker's
default behaviour is AUTO_UPGRADE, offboarding/worker.py) and completes there, every
step done. The server needs no dynamic config for this: v1.30.1 enables deployment
versions by default (``system.enableDeploymentVersions``), as the dev server does."""

from __future__ import annotations

import uuid

import pytest

from devtools.cluster import Cluster
from devtools.scim import ScimServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import (
    Cancel,
    CompleteTask,
    MeetingHeld,
    RecordFeedback,
)
from offboarding.models.status import OffboardingResult
from offboarding.temporal import make_current
from offboarding.worker import build_worker
from tests.helpers import client_file, eventually, wait_until, waiting_for
from tests.integration.test_scenarios import FAST, settle_and_verify
from tests.integration.test_versioning import build_id_of, versions

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]
WAIT = 90.0


async def test_an_upgrade_mid_offboarding_on_the_cluster(
        cluster: Cluster, settings: Settings, scim: ScimServer) -> None:
    client = await cluster.client()
    deployment = f"offboarding-{uuid.uuid4().hex[:6]}"

    version = versions(settings, deployment)
    cli = OffboardingClient(client, settings.task_queue)
    cf = client_file(end_in_days=32, scim=scim, follow_up_days=10, retention_days=5)
    async with build_worker(client, version("v1"), graceful_seconds=5):
        await make_current(client, deployment, "v1", wait_seconds=WAIT)
        old = client.get_workflow_handle(await cli.start(cf, FAST),
                                         result_type=OffboardingResult)
        await wait_until(old, lambda st: bool(st.waits), timeout=WAIT, what="a first wait")
        assert await build_id_of(old) == "v1"

        async with build_worker(client, version("v2"), graceful_seconds=5):
            await make_current(client, deployment, "v2", wait_seconds=WAIT)
            new = client.get_workflow_handle(await cli.start(
                client_file("termination", scim=scim), FAST))
            await wait_until(new, waiting_for("settlement-approval"), timeout=WAIT)
            assert await build_id_of(new) == "v2"

            # The offboarding begun on v1 takes its next decision on v2 and goes on to
            # its end there.
            await cli.send(old.id, "complete-task", CompleteTask(by="ops", task="terms-met",
                                                                 note="checked"))
            await wait_until(old, waiting_for("meeting"), timeout=WAIT)
            await eventually(lambda: build_id_of(old), lambda b: b == "v2", timeout=WAIT,
                             what="the offboarding begun on v1 to move to v2")
            await cli.send(old.id, "meeting-held", MeetingHeld(by="ops", notes="KPIs met"))
            await settle_and_verify(cli, old, cf, timeout=WAIT)
            await wait_until(old, waiting_for("feedback"), timeout=WAIT)
            await cli.send(old.id, "record-feedback", RecordFeedback(by="ops", nps=9, csat=4))
            result = await old.result()
            assert result.outcome == "completed"
            assert [s.state for s in result.status.steps] == ["done"] * len(result.status.steps)
            assert await build_id_of(old) == "v2"

            await cli.send(new.id, "cancel", Cancel(by="ops", reason="test over"))
            assert (await cli.result(new.id)).outcome == "cancelled"
            assert await build_id_of(new) == "v2"
