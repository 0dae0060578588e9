"""The status query as the CLI and the portal ask it, when the worker does not answer."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    QueryWorkflowInput,
    WorkflowHandle,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from offboarding.client import QUERY_PATIENCE, OffboardingClient
from offboarding.config import Settings
from tests.helpers import client_file, eventually, new_worker
from tests.infra_workflows import SleepForDays


class FirstQueryUnanswered(Interceptor):
    """Sends a client's first query to a workflow no worker serves, where it gets no
    answer. It stands in for the query sdk-core now and then leaves unanswered until the
    server sends it again (bench/README.md), which no test can cause on demand."""

    def __init__(self, nobody: str) -> None:
        self.nobody, self.queries = nobody, 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        outer = self

        class Redirect(OutboundInterceptor):
            async def query_workflow(self, input: QueryWorkflowInput) -> Any:
                outer.queries += 1
                if outer.queries == 1:
                    input = dataclasses.replace(input, id=outer.nobody, run_id=None)
                return await super().query_workflow(input)

        return Redirect(next)


async def _unserved(client: Client) -> WorkflowHandle[Any, Any]:
    """A workflow that has run once on a worker that is now gone: a query to it waits."""
    queue = f"gone-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[SleepForDays]):
        handle = await client.start_workflow(SleepForDays.run, 30, id=queue, task_queue=queue)
        await eventually(lambda: handle.query("__stack_trace"), what="its first task")
    return handle


async def test_a_status_query_left_unanswered_is_asked_again_and_answered(
        dev_env: WorkflowEnvironment, settings: Settings) -> None:
    nobody = await _unserved(dev_env.client)
    lost = FirstQueryUnanswered(nobody.id)
    config = dev_env.client.config()
    config["interceptors"] = [lost]
    client = Client(**config)
    cli = OffboardingClient(client, settings.task_queue)
    async with new_worker(dev_env.client, settings):
        wid = await OffboardingClient(dev_env.client, settings.task_queue).start(client_file())
        loop = asyncio.get_running_loop()
        asked = loop.time()
        async with asyncio.timeout(QUERY_PATIENCE.total_seconds() + 8):
            status = await cli.status(wid)
        took = loop.time() - asked
    assert status.workflow_id == wid  # the offboarding's own status, not an error
    assert lost.queries == 2
    assert QUERY_PATIENCE.total_seconds() <= took < QUERY_PATIENCE.total_seconds() + 3
