"""Test helpers: client files made from the examples, workers, and waiting for a state
(``eventually``, and ``wait_until`` on the status query)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from pydantic import SecretStr
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from devtools import approvers, stack
from devtools.examples import example_client
from devtools.mailcapture import MailCapture
from devtools.minio import MinioServer
from devtools.procs import free_port
from devtools.scim import ScimServer
from offboarding.activities.registry import build_activities
from offboarding.config import Settings, SettingsError, load_settings
from offboarding.models.client_file import ClientFile
from offboarding.models.status import OffboardingStatus
from offboarding.portal.app import build_app
from offboarding.worker import workflow_runner
from offboarding.workflows.offboarding import ClientOffboarding

CLIENT_DATA = Path(tempfile.mkdtemp(prefix="offboarding-client-data-"))
"""The client data root of every test: each test client's data sets are copies of the
example's, in the client's own folder (named by its client id), as the rules require."""
DOCUMENTS = Path(tempfile.mkdtemp(prefix="offboarding-documents-"))
"""The documents root of every test: each test client's documents likewise."""


def client_file(example: str = "contract-end", *, today: date | None = None,
                end_in_days: int | None = 40, scim: ScimServer | None = None,
                **changes: Any) -> ClientFile:
    """The example, with a unique client id, accounts that exist on the SCIM server and
    an end date relative to ``today``."""
    end = (today or date.today()) + timedelta(days=end_in_days) if end_in_days else None
    return example_client(example, tag=uuid.uuid4().hex[:6], data_root=CLIENT_DATA,
                          documents_root=DOCUMENTS, end_date=end, scim=scim, **changes)


def new_worker(client: Client, settings: Settings) -> Worker:
    return Worker(client, task_queue=settings.task_queue, workflows=[ClientOffboarding],
                  activities=build_activities(settings), workflow_runner=workflow_runner())


async def status_of(handle: WorkflowHandle[Any, Any]) -> OffboardingStatus:
    return await handle.query(ClientOffboarding.status)


T = TypeVar("T")


async def eventually(look: Callable[[], Awaitable[T]], holds: Callable[[T], bool] = bool, *,
                     timeout: float = 30.0, every: float = 0.05, what: str = "",
                     show: Callable[[T], str] = repr,
                     retry_on: tuple[type[BaseException], ...] = ()) -> T:
    """Call ``look`` until what it returns ``holds``, and return that; fail after
    ``timeout`` seconds of real time with what it last saw. The one way a test waits for
    something that happens elsewhere (a workflow, a server, a browser, a collector): a
    wait that ends without it is a failure, never a silent fall-through.

    ``retry_on``: exceptions ``look`` may raise while the thing is not there yet (a
    query while no worker runs); the last one is reported if it never comes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            seen = await look()
        except retry_on as err:
            last = f"{type(err).__name__}: {err}"
        else:
            if holds(seen):
                return seen
            last = show(seen)
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for "
                                 f"{what or getattr(holds, '__name__', holds)}; "
                                 f"last saw: {last[:2000]}")
        await asyncio.sleep(every)


def describe(st: OffboardingStatus) -> str:
    """A status as a failure message shows it: where it is and what it waits for."""
    return (f"stage {st.stage}, waiting for {st.waiting_for}, outcome {st.outcome}, steps "
            f"{[(s.key, s.state) for s in st.steps]}, problems "
            f"{[p.key for p in st.problems if p.resolution is None]}")


async def wait_until(handle: WorkflowHandle[Any, Any],
                     predicate: Callable[[OffboardingStatus], bool],
                     timeout: float = 30.0, what: str = "") -> OffboardingStatus:
    """Poll the status query until ``predicate`` holds (real time; no time skipping)."""
    return await eventually(lambda: status_of(handle), predicate, timeout=timeout,
                            what=what or str(predicate), show=describe)


def waiting_for(what: str) -> Callable[[OffboardingStatus], bool]:
    return lambda st: what in st.waits


def worker_env(settings: Settings, address: str, metrics_port: int = 0) -> dict[str, str]:
    """The environment a worker process gets to run with a test's settings."""
    metrics = f"127.0.0.1:{metrics_port}" if metrics_port else ""
    return stack.worker_env(settings, address, OFFBOARDING_METRICS_ADDRESS=metrics)


def make_run_env(temporal_cli: str, run_dir: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The environment of a ``make run`` (``devtools.run``) of its own: free ports, its own
    run folder, nothing of this machine's OFFBOARDING_* or TEMPORAL_* settings; and the
    ports, by variable."""
    ports = {name: free_port() for name in ("TEMPORAL_PORT", "TEMPORAL_UI_PORT",
                                            "OFFBOARDING_SMTP_PORT", "OFFBOARDING_DEV_SCIM_PORT",
                                            "OFFBOARDING_DEV_CODEC_PORT",
                                            "OFFBOARDING_DEV_PORTAL_PORT")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFBOARDING_", "TEMPORAL_"))}
    env.update({k: str(v) for k, v in ports.items()})
    env.update({"OFFBOARDING_RUN_DIR": str(run_dir), "TEMPORAL_CLI": temporal_cli,
                "OFFBOARDING_METRICS_ADDRESS": f"127.0.0.1:{free_port()}"})
    return env, ports


def links_to(mail: MailCapture, address: str, subject: str) -> list[str]:
    """The approval links in the mail ``address`` received whose subject contains
    ``subject``, oldest first (as the demo finds them: devtools/approvers.py)."""
    return [link for m in mail.to(address) if subject in m.subject
            for link in approvers.LINK.findall(m.text())]


HISTORIES = Path(__file__).resolve().parent / "histories"
BUCKET = "offboarding-tests"


def s3_settings(settings: Settings, minio: MinioServer) -> Settings:
    """Settings that put exports, archives and the outbox in MinIO under a fresh prefix."""
    return settings.model_copy(update={
        "storage": "s3", "s3_bucket": BUCKET, "s3_endpoint": minio.endpoint,
        "s3_prefix": f"test-{uuid.uuid4().hex[:8]}/", "s3_access_key_id": minio.user,
        "s3_secret_access_key": SecretStr(minio.password)})


async def record_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """With RECORD_HISTORIES=1, save the run's history for the replay tests under a name
    not taken yet (a committed history is never recorded again)."""
    path = HISTORIES / f"{name}.json"
    if os.environ.get("RECORD_HISTORIES") == "1" and not path.exists():
        path.write_text((await handle.fetch_history()).to_json())


@contextlib.asynccontextmanager
async def portal_server(settings: Settings, client: Client
                        ) -> AsyncIterator[tuple[str, Settings]]:
    """The approvals portal under uvicorn on a free port, and the settings whose links
    point at it (give those to the worker)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = settings.model_copy(update={"portal_url": url,
                                           "portal_address": f"127.0.0.1:{port}"})
    server = uvicorn.Server(uvicorn.Config(build_app(settings, client), host="127.0.0.1",
                                           port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        assert not task.done(), "the portal stopped before it started"
        return server.started

    await eventually(started, every=0.02, what="the portal to start")
    try:
        yield url, settings
    finally:
        server.should_exit = True
        await task


def scim_service_config(*, patch: bool, filter_: bool, max_results: int) -> dict[str, Any]:
    """The ServiceProviderConfig (RFC 7644 §5) of a SCIM system a test writes for itself:
    what it announces of PATCH and filtering, nothing else."""
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": patch}, "bulk": {"supported": False},
            "filter": {"supported": filter_, "maxResults": max_results},
            "changePassword": {"supported": False}, "sort": {"supported": False},
            "etag": {"supported": False}, "authenticationSchemes": []}


def reply(handler: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
    """Answers a request to one of the small HTTP servers a test writes for itself."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def refuse_setting(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    """Settings from the environment alone, with ``variable`` set to ``value``: refused
    when loaded, with the variable named."""
    monkeypatch.setenv("OFFBOARDING_ENV_FILE", "/nonexistent")
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()
