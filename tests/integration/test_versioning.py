"""Upgrading with offboardings in flight (issue 14): two worker versions of one Worker
Deployment on the dev server. While v1 is current, an offboarding starts on v1; once v2
is made current, new offboardings start on v2, and the one begun on v1 moves to v2 at its
next decision (AUTO_UPGRADE) and carries on correctly."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devtools.scim import ScimServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import ApproveSettlement, Cancel
from offboarding.temporal import make_current
from offboarding.worker import build_worker
from tests.helpers import client_file, wait_until
from tests.integration.test_portal import PATIENT


async def build_id_of(handle: WorkflowHandle[Any, Any]) -> str:
    """The Worker Deployment version the offboarding runs on now."""
    info = (await handle.describe()).raw_description.workflow_execution_info.versioning_info
    return str(info.deployment_version.build_id)


def versions(settings: Settings, deployment: str) -> Callable[[str], Settings]:
    """A worker's settings for each build of one deployment."""
    def version(build_id: str) -> Settings:
        return settings.model_copy(update={"worker_versioning": True,
                                           "deployment_name": deployment,
                                           "build_id": build_id})

    return version


async def test_new_offboardings_take_the_new_version_and_running_ones_carry_on(
        dev_env: WorkflowEnvironment, settings: Settings, scim: ScimServer) -> None:
    client = dev_env.client
    deployment = f"offboarding-{uuid.uuid4().hex[:6]}"

    version = versions(settings, deployment)
    cli = OffboardingClient(client, settings.task_queue)
    both_waits = {"settlement-approval", "data-verification"}
    async with build_worker(client, version("v1")):
        await make_current(client, deployment, "v1")
        old = client.get_workflow_handle(await cli.start(client_file("termination", scim=scim),
                                                         PATIENT))
        await wait_until(old, lambda st: both_waits <= set(st.waits))
        assert await build_id_of(old) == "v1"

        async with build_worker(client, version("v2")):
            await make_current(client, deployment, "v2")
            new = client.get_workflow_handle(await cli.start(
                client_file("termination", scim=scim), PATIENT))
            await wait_until(new, lambda st: both_waits <= set(st.waits))
            assert await build_id_of(new) == "v2"

            # The offboarding begun on v1 takes its next decision on v2, and goes on.
            st = await cli.status(old.id)
            await cli.send(old.id, "approve-settlement", ApproveSettlement(
                by="finance.lead@example.com", statement_hash=st.statements[-1].hash))
            st = await wait_until(old, lambda s: s.step("settlement").state == "done")
            assert st.step("settlement").by == "finance.lead@example.com"
            assert await build_id_of(old) == "v2"
            for handle in (old, new):
                await cli.send(handle.id, "cancel", Cancel(by="ops", reason="test over"))
                assert (await cli.result(handle.id)).outcome == "cancelled"
