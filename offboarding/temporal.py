"""One way to reach Temporal, shared by the worker, the CLI and the dev tools, and the
namespace setup they all rely on (the search attributes).

Connection details come from Temporal's standard environment configuration
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_TLS_*``, ``TEMPORAL_API_KEY``,
``TEMPORAL_PROFILE`` and the TOML config file), so the same code runs against the local
dev server, a self-hosted cluster or Temporal Cloud without change.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import SetWorkerDeploymentCurrentVersionRequest
from temporalio.client import Client
from temporalio.converter import PayloadCodec
from temporalio.envconfig import ClientConfig
from temporalio.service import RPCError, RPCStatusCode

from offboarding import tracing
from offboarding.models import search_attributes as sa
from offboarding.security.codec import data_converter

DEFAULT_ADDRESS = "localhost:7233"


async def connect(address: str | None = None, codec: PayloadCodec | None = None, *,
                  profile: str | None = None, config_file: str | None = None,
                  **overrides: Any) -> Client:
    """Connect with the pydantic data converter (the contract's wire format), encrypting
    payloads with ``codec`` when there is one.

    ``address`` wins over the environment; tests use it to reach their own servers.
    """
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config(
        profile, config_file=config_file))
    config.setdefault("target_host", DEFAULT_ADDRESS)
    if address:
        config["target_host"] = address
    config.update(overrides)
    config["data_converter"] = data_converter(codec)
    config.setdefault("plugins", tracing.plugins())
    return await Client.connect(**config)


async def register_search_attributes(client: Client) -> list[str]:
    """Idempotent: adds only the attributes the namespace does not have yet.

    The Java time-skipping test server cannot list them; there, all are added.
    """
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace))
        existing = set(listed.custom_attributes)
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        existing = set()
    missing = {k.name: IndexedValueType.ValueType(k.indexed_value_type.value)
               for k in sa.ALL if k.name not in existing}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing))
    return sorted(missing)


async def make_current(client: Client, deployment_name: str, build_id: str, *,
                       wait_seconds: float = 30) -> None:
    """Promote a worker version: new offboardings (and, with AUTO_UPGRADE, running ones
    at their next task) go to it. The same as ``temporal worker deployment
    set-current-version``. The server knows a version once its workers have polled, so
    a worker that has just started is waited for, up to ``wait_seconds``."""
    request = SetWorkerDeploymentCurrentVersionRequest(
        namespace=client.namespace, deployment_name=deployment_name, build_id=build_id,
        identity=client.identity)
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        try:
            await client.workflow_service.set_worker_deployment_current_version(request)
            return
        except RPCError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)
