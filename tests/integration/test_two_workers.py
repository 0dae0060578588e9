"""Beyond one machine (issue 13): two worker processes, each with its own state folder, share
only Temporal, SMTP, SCIM and the object store (a real MinIO). One is SIGKILLed in the
middle of an email send, and one in the middle of the archive; the other finishes both.
Every message arrives exactly once by Message-ID (the kill comes before the SMTP server
commits the message, outside the window measured in test_crash.py), the archive is
complete, and the steward's download is served from the bucket."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devtools.mailcapture import MailCapture
from devtools.minio import MinioServer
from devtools.scim import ScimServer
from offboarding.activities.registry import bundle_store, outbox
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import ApproveSettlement, VerifyData
from offboarding.models.status import OffboardingResult
from tests.faults import FaultProxy
from tests.helpers import (
    client_file,
    eventually,
    links_to,
    portal_server,
    s3_settings,
    wait_until,
    worker_env,
)
from tests.integration.test_crash import WorkerProcess
from tests.integration.test_portal import PATIENT


class Pair:
    """Two worker processes on one task queue; which one runs an activity is Temporal's
    choice, read back from the activity's last worker identity (pid@host)."""

    def __init__(self, workers: list[WorkerProcess]) -> None:
        self.workers = workers

    async def kill_the_one_running(self, client: Client, handle: WorkflowHandle[object, object],
                                   activity: str) -> WorkerProcess:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            desc = await handle.describe()
            for pending in desc.raw_description.pending_activities:
                if pending.activity_type.name == activity and pending.last_worker_identity:
                    pid = int(pending.last_worker_identity.split("@")[0])
                    [running] = [w for w in self.workers if w.proc and w.proc.pid == pid]
                    running.kill()
                    return running
            await asyncio.sleep(0.02)
        raise AssertionError(f"{activity} never ran")


@pytest.fixture
async def shared(dev_env: WorkflowEnvironment, settings: Settings, minio: MinioServer,
                 tmp_path: Path) -> AsyncIterator[tuple[Settings, FaultProxy, Pair]]:
    """The workers reach S3 through a proxy the test can slow down, to catch the archive
    mid-way; the test itself reads the bucket directly (the proxy runs on its loop)."""
    proxy = FaultProxy(minio.port)
    port = await proxy.start()
    direct = s3_settings(settings, minio)
    common = direct.model_copy(update={"s3_endpoint": f"http://127.0.0.1:{port}"})
    address = dev_env.client.service_client.config.target_host
    workers = []
    for name in ("a", "b"):
        own = common.model_copy(update={"state_dir": tmp_path / f"state-{name}"})
        workers.append(WorkerProcess(worker_env(own, address), tmp_path / f"worker-{name}.log"))
    for w in workers:
        await w.start()
    try:
        yield direct, proxy, Pair(workers)
    finally:
        for w in workers:
            w.close()
        proxy.close()


async def test_two_workers_on_shared_storage_finish_what_a_killed_one_started(
        dev_env: WorkflowEnvironment, shared: tuple[Settings, FaultProxy, Pair],
        mail: MailCapture, scim: ScimServer) -> None:
    common, proxy, pair = shared
    client = dev_env.client
    cf = client_file("termination", scim=scim)
    finance, steward = cf.approvers.finance[0], cf.approvers.data_verification[0]
    cli = OffboardingClient(client, common.task_queue)

    # 1. Killed during an email send, before the SMTP server commits it.
    mail.stall_match, mail.stall_seconds = "access-revoked", 5
    handle = client.get_workflow_handle(await cli.start(cf, PATIENT))
    await eventually(lambda: asyncio.sleep(0, mail.stalled.is_set()), timeout=60,
                     what="the access-revoked send to stall at the SMTP server")
    first = await pair.kill_the_one_running(client, handle, "send_email")
    st = await wait_until(handle, lambda s: {"settlement-approval", "data-verification"}
                          <= set(s.waits), timeout=120)
    assert "access-revoked" in [e.key for e in st.emails]
    await first.start()

    # 2. The steward's download comes from the bucket, through the portal.
    package = st.data_packages[-1]
    assert package.location.startswith(f"s3://{common.s3_bucket}/")
    async with portal_server(common, client) as (url, _), httpx.AsyncClient() as http:
        [link] = links_to(mail, steward, "ready for transfer")
        got = await http.get(url + link.removeprefix("http://portal.test") + "/manifest.json")
        assert got.status_code == 200
        assert hashlib.sha256(got.content).hexdigest() == package.manifest_sha256
        zipped = await http.get(url + link.removeprefix("http://portal.test") + "/data.zip")
        assert hashlib.sha256(zipped.content).hexdigest() == zipped.headers["x-checksum-sha256"]

    # 3. Killed during the archive (its object-store writes slowed down to catch it).
    await cli.send(handle.id, "approve-settlement", ApproveSettlement(
        by=finance, statement_hash=st.statements[-1].hash))
    await wait_until(handle, lambda s: s.step("settlement").state == "done")
    proxy.delay = 0.3
    await cli.send(handle.id, "verify-data", VerifyData(by=steward,
                                                         checksum=package.manifest_sha256))
    await pair.kill_the_one_running(client, handle, "archive_offboarding")
    proxy.delay = 0.0
    typed = client.get_workflow_handle(handle.id, result_type=OffboardingResult)
    result: OffboardingResult = await asyncio.wait_for(typed.result(), 180)

    assert result.outcome == "completed"
    counts = Counter(m.message_id for m in mail.messages)
    assert counts and set(counts.values()) == {1}, counts
    assert len(counts) == len(result.status.emails)
    archive = result.status.archive
    assert archive is not None and archive.location.startswith(f"s3://{common.s3_bucket}/")
    archived = bundle_store(common, "archive")
    key = archive.location.removeprefix(f"s3://{common.s3_bucket}/{common.s3_prefix}archive/")
    keys = [e.key for e in result.status.emails]
    before = keys[:keys.index("farewell")]  # the farewell carries the archive's report
    assert sorted(f for f in archive.files if f.startswith("emails/")) == \
        sorted(f"emails/{k}.eml" for k in before)
    manifest = archived.read(key, "MANIFEST.json")
    assert manifest is not None and hashlib.sha256(manifest).hexdigest() == \
        archive.manifest_sha256
    assert set(outbox(common).messages(result.status.records_key)) == {f"{e.key}.eml"
                                                       for e in result.status.emails}

