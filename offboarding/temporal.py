"""One way to reach Temporal, shared by the worker, the CLI and the dev tools, and the
namespace setup they all rely on (the search attributes).

Connection details come from Temporal's standard environment configuration
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_TLS_*``, ``TEMPORAL_API_KEY``,
``TEMPORAL_PROFILE`` and the TOML config file), so the same code runs against the local
dev server, a self-hosted cluster or Temporal Cloud without change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

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
log = logging.getLogger(__name__)


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


class SetupTimeout(Exception):
    """What setup waited for did not become visible before its deadline; the message
    names it and the server's last answer."""


Progress = Callable[[str], None]
SETTLING = {RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT,
            RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.UNAVAILABLE}
"""What a server answers while a namespace or an attribute just made is not yet in the
caches of its frontends (refreshed every few seconds on a real cluster; the dev server
hides this): "Namespace default is not found", "no mapping defined for search
attribute"."""
NEVER = {
    "BOOL": "false", "DATETIME": "'2000-01-01T00:00:00Z'", "DOUBLE": "0", "INT": "0",
}
"""A value of each type for a query that names every attribute and matches nothing."""
T = TypeVar("T")


async def _until(what: str, trial: Callable[[], Awaitable[T]], deadline: float,
                 wait_seconds: float, progress: Progress | None) -> T:
    """``trial()``'s result once the server stops answering that ``what`` is unknown."""
    loop, said = asyncio.get_running_loop(), False
    while True:
        try:
            return await trial()
        except RPCError as err:
            if err.status not in SETTLING:
                raise
            last = first_line(err.message)
        if loop.time() >= deadline:
            raise SetupTimeout(f"{what} did not become visible within {wait_seconds:g} s "
                               f"(the server's last answer: {last})")
        if not said:
            _tell(progress, f"waiting for {what} to become visible (the server answers: "
                            f"{last})")
            said = True
        await asyncio.sleep(min(0.2, max(0.0, deadline - loop.time())))


def _tell(progress: Progress | None, line: str) -> None:
    if progress is not None:
        progress(line)
    log.info("%s", line)


def first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


async def wait_for_namespace(client: Client, *, progress: Progress | None = None,
                             wait_seconds: float = 60) -> None:
    """Until the client's namespace answers (a namespace just created is "not found"
    until the server's frontends refresh their caches)."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    await _until(f"namespace {client.namespace!r}", lambda: _listed(client), deadline,
                 wait_seconds, progress)


async def wait_for_search_attributes(client: Client, *, progress: Progress | None = None,
                                     wait_seconds: float = 60) -> None:
    """Until a list query naming every one of our attributes works: what ``start`` (its
    search attributes) and ``list`` need. Attributes just added are "no mapping defined"
    until the server's caches refresh."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    await _attributes_usable(client, deadline, wait_seconds, progress)


async def _attributes_usable(client: Client, deadline: float, wait_seconds: float,
                             progress: Progress | None) -> None:
    query = " OR ".join(f"{key.name} = {NEVER.get(key.indexed_value_type.name, repr(''))}"
                        for key in sa.ALL)
    names = ", ".join(key.name for key in sa.ALL)
    await _until(f"search attributes {names} in namespace {client.namespace!r}",
                 lambda: client.count_workflows(query), deadline, wait_seconds, progress)


async def _listed(client: Client) -> set[str]:
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace))
    return set(listed.custom_attributes)


async def register_search_attributes(client: Client, *, progress: Progress | None = None,
                                     wait_seconds: float = 60) -> list[str]:
    """Idempotent: adds only the attributes the namespace does not have yet, and returns
    their names once they can be used. Waits (up to ``wait_seconds`` in all, telling
    ``progress`` what it waits for) for a namespace just created to answer and for the
    attributes to be usable in queries; SetupTimeout names what never appeared.

    The Java time-skipping test server cannot list them; there, all are added at once.
    """
    deadline = asyncio.get_running_loop().time() + wait_seconds
    wanted = {k.name: IndexedValueType.ValueType(k.indexed_value_type.value) for k in sa.ALL}
    try:
        existing = await _until(f"namespace {client.namespace!r}", lambda: _listed(client),
                                deadline, wait_seconds, progress)
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace=client.namespace, search_attributes=wanted))
        return sorted(wanted)
    added = sorted(set(wanted) - existing)

    async def add_missing() -> None:
        # Listed again on each try: another frontend may not know the namespace yet, or
        # an earlier try may have added some before its answer was lost.
        missing = {k: v for k, v in wanted.items() if k not in await _listed(client)}
        if missing:
            await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
                namespace=client.namespace, search_attributes=missing))

    if added:
        await _until(f"namespace {client.namespace!r}",
                     add_missing, deadline, wait_seconds, progress)
    await _attributes_usable(client, deadline, wait_seconds, progress)
    return added


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
