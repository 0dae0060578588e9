"""Issue 20, row 13: ``setup`` right after a namespace is created, and ``start`` right after
``setup``, failed on a real server ("Namespace default is not found", "no mapping defined
for search attribute OffboardingStage") until its namespace cache refreshed. Setup now
waits, within a deadline, until the namespace answers and a query naming every attribute
works, and says what it waits for.

The dev server refreshes faster than a real cluster, so the delay is made here with real
failures: a namespace another task creates a few seconds later, attributes another task
adds a few seconds later, and ones that never come."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from offboarding.models import search_attributes as sa
from offboarding.temporal import (
    SetupTimeout,
    connect,
    register_search_attributes,
    wait_for_namespace,
    wait_for_search_attributes,
)

DELAY = 2.0
NAMES = sorted(key.name for key in sa.ALL)


async def _fresh(dev_env: WorkflowEnvironment) -> tuple[Client, str]:
    """A client of a namespace that does not exist yet."""
    namespace = f"edge-{uuid.uuid4().hex[:10]}"
    address = dev_env.client.service_client.config.target_host
    return await connect(address, namespace=namespace), namespace


async def _create_later(client: Client, namespace: str, delay: float) -> None:
    await asyncio.sleep(delay)
    await client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)))


async def _add_later(client: Client, delay: float) -> None:
    await asyncio.sleep(delay)
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=client.namespace, search_attributes={
            key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
            for key in sa.ALL}))


async def test_setup_waits_for_a_namespace_created_after_it_started(
        dev_env: WorkflowEnvironment) -> None:
    client, namespace = await _fresh(dev_env)
    said: list[str] = []
    creating = asyncio.create_task(_create_later(client, namespace, DELAY))
    began = time.monotonic()
    added = await register_search_attributes(client, progress=said.append)
    await creating
    assert time.monotonic() - began >= DELAY, "it waited for the namespace"
    assert added == NAMES
    assert any(f"namespace {namespace!r}" in line for line in said), said
    # What start and list need works at once: every attribute in a query.
    assert (await client.count_workflows("OffboardingStage = 'x'")).count == 0
    # Idempotent: nothing to add the second time, and no waiting.
    assert await register_search_attributes(client) == []


async def test_setup_gives_up_naming_the_namespace_that_never_appeared(
        dev_env: WorkflowEnvironment) -> None:
    client, namespace = await _fresh(dev_env)
    began = time.monotonic()
    with pytest.raises(SetupTimeout, match=f"namespace {namespace!r}.*1.5 s") as caught:
        await register_search_attributes(client, wait_seconds=1.5)
    assert 1.5 <= time.monotonic() - began < 10
    assert "not found" in str(caught.value).lower(), "the server's last answer is shown"


async def test_the_attributes_are_waited_for_until_a_query_naming_them_works(
        dev_env: WorkflowEnvironment) -> None:
    client, namespace = await _fresh(dev_env)
    await _create_later(client, namespace, 0)
    await wait_for_namespace(client, wait_seconds=30)
    said: list[str] = []
    adding = asyncio.create_task(_add_later(client, DELAY))
    began = time.monotonic()
    await wait_for_search_attributes(client, progress=said.append, wait_seconds=30)
    await adding
    assert time.monotonic() - began >= DELAY
    assert any("OffboardingStage" in line for line in said), said
    assert (await client.count_workflows("OffboardingStage = 'x'")).count == 0


async def test_attributes_that_never_appear_end_the_wait_with_their_names(
        dev_env: WorkflowEnvironment) -> None:
    client, namespace = await _fresh(dev_env)
    await _create_later(client, namespace, 0)
    await wait_for_namespace(client, wait_seconds=30)
    with pytest.raises(SetupTimeout, match="OffboardingStage") as caught:
        await wait_for_search_attributes(client, wait_seconds=1.5)
    assert "search attributes" in str(caught.value)
