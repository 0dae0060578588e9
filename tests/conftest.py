"""Session fixtures: real servers on free ports, started once and stopped at the end.

- ``ts_env``: Temporal's Java time-skipping test server (timers in seconds of wall time);
- ``dev_env``: the Temporal CLI dev server (full server, updates, visibility);
- ``mail``: a real SMTP server (aiosmtpd) capturing every message;
- ``scim``: a real SCIM 2.0 server (scim2-server) with a ``crm`` and a ``wiki`` system.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from devtools import mailcapture
from devtools.mailcapture import MailCapture
from devtools.minio import MinioServer
from devtools.procs import free_port
from devtools.scim import ScimServer
from devtools.stack import DevServer
from offboarding.config import ScimSystem, Settings
from offboarding.security.codec import EncryptionCodec, load_keys
from offboarding.security.codec import new_key_file as new_codec_key_file
from offboarding.security.links import new_key_file
from offboarding.temporal import connect, register_search_attributes
from tests.helpers import BUCKET, CLIENT_DATA, DOCUMENTS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SCIM_TOKEN = "test-scim-token"


def _ensure(script: str) -> str:
    out = subprocess.run([str(ROOT / "scripts" / script)], check=True, capture_output=True,
                         text=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session", autouse=True)
def _client_data() -> Iterator[None]:
    yield
    shutil.rmtree(CLIENT_DATA, ignore_errors=True)
    shutil.rmtree(DOCUMENTS, ignore_errors=True)


@pytest.fixture(scope="session")
def temporal_cli() -> str:
    return _ensure("ensure-temporal-cli.sh")


@pytest.fixture(scope="session")
def test_server() -> str:
    return _ensure("ensure-test-server.sh")


@pytest.fixture(scope="session")
async def ts_env(test_server: str) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server, data_converter=pydantic_data_converter,
        test_server_startup_timeout=timedelta(seconds=60),
    )
    async with env:
        await register_search_attributes(env.client)
        yield env


@pytest.fixture(scope="session")
def dev_ui_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
async def dev_env(temporal_cli: str, dev_ui_port: int,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WorkflowEnvironment]:
    """The dev server as make run and the benchmark start it (devtools/stack.py), with its
    Web UI for the browser test."""
    folder = tmp_path_factory.mktemp("dev-server")
    server = DevServer(folder / "temporal.db", folder / "server.log", ui_port=dev_ui_port,
                       cli=temporal_cli).start()
    try:
        yield WorkflowEnvironment.from_client(await connect(server.address))
    finally:
        server.close()


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[int, MailCapture]]:
    port = free_port()
    controller, handler = mailcapture.start("127.0.0.1", port)
    yield port, handler
    controller.stop()


@pytest.fixture
def mail(smtp: tuple[int, MailCapture]) -> MailCapture:
    """The captured mail, emptied for each test."""
    smtp[1].clear()
    smtp[1].refuse.clear()
    return smtp[1]


@pytest.fixture(scope="session")
def scim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScimServer]:
    log = tmp_path_factory.mktemp("scim") / "scim.log"
    server = ScimServer(free_port(), ["crm", "wiki"], SCIM_TOKEN, log=log)
    yield server
    server.close()


@pytest.fixture(scope="session")
def minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    """A real S3-compatible server (MinIO) with the tests' bucket."""
    server = MinioServer(tmp_path_factory.mktemp("minio") / "data")
    server.make_bucket(BUCKET)
    yield server
    server.close()


@pytest.fixture
def codec(tmp_path: Path) -> EncryptionCodec:
    """Payload encryption with a fresh key file in the test's folder (``keys.json``)."""
    new_codec_key_file(tmp_path / "keys.json")
    loaded = load_keys(tmp_path / "keys.json", None, None)
    assert loaded is not None
    return loaded


@pytest.fixture
def settings(tmp_path: Path, smtp: tuple[int, MailCapture], scim: ScimServer) -> Settings:
    """Worker settings pointing at the test servers and this test's own directories."""
    new_key_file(tmp_path / "keys" / "link-keys.json")
    return Settings(
        _env_file=None,
        task_queue=f"tq-{uuid.uuid4().hex[:8]}",
        smtp_host="127.0.0.1",
        smtp_port=smtp[0],
        ops_email="ops@services.example",
        scim_systems={name: ScimSystem.model_validate(cfg)
                      for name, cfg in scim.settings_json().items()},
        state_dir=tmp_path / "state",
        client_data_root=CLIENT_DATA,
        documents_root=DOCUMENTS,
        transfer_root=tmp_path / "transfer",
        archive_root=tmp_path / "archive",
        link_key_file=tmp_path / "keys" / "link-keys.json",
        portal_url="http://portal.test",
    )


FAST_TIER = ("unit", "replay")
"""Folders whose tests start no server: ``make test-fast`` (``pytest -m unit``) runs them."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tiers; the cluster tier (tests/cluster) runs after the rest, so the
    cheaper tiers answer first and its one session-wide cluster starts last."""
    for item in items:
        if item.path.parent.name in FAST_TIER:
            item.add_marker(pytest.mark.unit)
        if item.path.parent.name == "cluster":
            item.add_marker(pytest.mark.cluster)
    items.sort(key=lambda item: item.path.parent.name == "cluster")
