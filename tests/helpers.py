"""Test helpers: client files made from the examples, workers, and waiting for a state."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from devtools.scim import ScimServer
from offboarding.activities.registry import build_activities
from offboarding.config import Settings
from offboarding.models.client_file import ClientFile
from offboarding.models.loading import load_client_file
from offboarding.models.status import OffboardingStatus
from offboarding.workflows.offboarding import ClientOffboarding

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CLIENT_DATA = Path(tempfile.mkdtemp(prefix="offboarding-client-data-"))
"""The client data root of every test: each test client's data sets are copies of the
example's, in the client's own folder (named by its client id), as the rules require."""


def _own_copy(client_id: str, rel: str) -> str:
    """The example data set at ``rel``, copied into ``client_id``'s own folder."""
    own = PurePosixPath(client_id, *PurePosixPath(rel).parts[1:])
    source, target = EXAMPLES / "client-data" / rel, CLIENT_DATA / own
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)
    return str(own)


def client_file(example: str = "contract-end", *, today: date | None = None,
                end_in_days: int | None = 40, scim: ScimServer | None = None,
                **changes: Any) -> ClientFile:
    """The example, with a unique client id, accounts that exist on the SCIM server and
    an end date relative to ``today``."""
    base = load_client_file(EXAMPLES / f"{example}.yaml")
    tag = uuid.uuid4().hex[:6]
    data = base.model_dump(mode="json")
    data["client_id"] = f"{base.client_id}-{tag}"
    if end_in_days is not None:
        today = today or date.today()
        data["contract"]["start_date"] = (today - timedelta(days=700)).isoformat()
        data["contract"]["end_date"] = (today + timedelta(days=end_in_days)).isoformat()
        if data["contract"].get("renewal_offer"):
            data["contract"]["renewal_offer"]["valid_until"] = None
    for data_set in data["data_sets"]:
        data_set["path"] = _own_copy(data["client_id"], data_set["path"])
    for system in data["systems"]:
        system["users"] = [f"{u}-{tag}" for u in system["users"]]
        if scim is not None:
            for u in system["users"]:
                scim.add_user(system["system"], u)
    for key, value in changes.items():
        data[key] = value
    return ClientFile.model_validate(data)


def new_worker(client: Client, settings: Settings) -> Worker:
    return Worker(client, task_queue=settings.task_queue, workflows=[ClientOffboarding],
                  activities=build_activities(settings))


async def status_of(handle: WorkflowHandle[Any, Any]) -> OffboardingStatus:
    return await handle.query(ClientOffboarding.status)


async def wait_until(handle: WorkflowHandle[Any, Any],
                     predicate: Callable[[OffboardingStatus], bool],
                     timeout: float = 30.0, what: str = "") -> OffboardingStatus:
    """Poll the status query until ``predicate`` holds (real time; no time skipping)."""
    deadline = asyncio.get_running_loop().time() + timeout
    st = await status_of(handle)
    while not predicate(st):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}: stage "
                                 f"{st.stage}, waiting for {st.waiting_for}, "
                                 f"steps {[(s.key, s.state) for s in st.steps]}")
        await asyncio.sleep(0.05)
        st = await status_of(handle)
    return st


def waiting_for(what: str) -> Callable[[OffboardingStatus], bool]:
    return lambda st: st.waiting_for is not None and what in st.waiting_for.split(",")


def worker_env(settings: Settings, address: str, metrics_port: int = 0) -> dict[str, str]:
    """The environment a worker process gets to run with a test's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFBOARDING_", "TEMPORAL_"))}
    env.update({
        "TEMPORAL_ADDRESS": address,
        "OFFBOARDING_TASK_QUEUE": settings.task_queue,
        "OFFBOARDING_SMTP_HOST": settings.smtp_host,
        "OFFBOARDING_SMTP_PORT": str(settings.smtp_port),
        "OFFBOARDING_OPS_EMAIL": settings.ops_email,
        "OFFBOARDING_SCIM_SYSTEMS": json.dumps({
            name: {"base_url": str(system.base_url),
                   "token": system.token.get_secret_value() if system.token else None}
            for name, system in settings.scim_systems.items()}),
        "OFFBOARDING_STATE_DIR": str(settings.state_dir),
        "OFFBOARDING_CLIENT_DATA_ROOT": str(settings.client_data_root),
        "OFFBOARDING_DOCUMENTS_ROOT": str(settings.documents_root),
        "OFFBOARDING_TRANSFER_ROOT": str(settings.transfer_root),
        "OFFBOARDING_ARCHIVE_ROOT": str(settings.archive_root),
        "OFFBOARDING_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}" if metrics_port else "",
        "OFFBOARDING_ENV_FILE": "/nonexistent",
    })
    return env
