"""Failures on the real Temporal cluster (PostgreSQL, two server hosts), mid-offboarding:

- a server host SIGKILLed while the offboarding's own history shard lives on it, in the
  middle of a send: the other host takes its shards (read back from the shards' rows in
  PostgreSQL), the offboarding completes, every recipient receives every message once;
  the host is started again at the end and takes its shards back, so the session's
  cluster is whole for the tests after;
- two worker processes sharing only the cluster, SMTP, SCIM and a real MinIO (exports,
  archive, outbox), one SIGKILLed in the middle of a send: the other finishes the
  offboarding alone and nothing is sent twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from devtools import stack
from devtools.cluster import NUM_HISTORY_SHARDS, Cluster
from devtools.mailcapture import MailCapture
from devtools.minio import MinioServer
from devtools.scim import ScimServer
from offboarding.activities.registry import outbox
from offboarding.client import OffboardingClient, workflow_id_for
from offboarding.config import Settings
from offboarding.models.messages import (
    ApproveSettlement,
    CompleteTask,
    MeetingHeld,
    RecordFeedback,
    VerifyData,
)
from offboarding.models.status import OffboardingResult
from tests.cluster.support_failover import (
    PATIENT,
    WAIT,
    alive,
    assert_each_once,
    restart,
    shard_of,
    shard_owners,
    status_when,
)
from tests.helpers import client_file, eventually, new_worker, s3_settings, waiting_for
from tests.integration.test_crash import WorkerProcess
from tests.integration.test_scenarios import checksum_of
from tests.integration.test_two_workers import Pair

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(400)]


async def _stalled(mail: MailCapture) -> bool:
    return mail.stalled.is_set()


@pytest.fixture
def stall(mail: MailCapture) -> Iterator[MailCapture]:
    """The mail capture, its stall disarmed after the test whether it fired or not."""
    mail.stalled.clear()
    yield mail
    mail.stall_match = None
    mail.stalled.clear()


async def _owners_with_b(cluster: Cluster) -> dict[int, str] | None:
    """The shards' owners once every shard has one and host b owns some; None if host b
    owns none (its place on the membership ring comes from its address and the cluster's
    random ports: with 4 shards, now and then it draws none)."""
    try:
        return await eventually(
            lambda: shard_owners(cluster),
            lambda o: len(o) == NUM_HISTORY_SHARDS and "b" in o.values()
            and set(o.values()) <= {"a", "b"}, timeout=20, every=0.5,
            what="every shard owned, some by host b")
    except AssertionError:
        return None


async def test_a_server_host_killed_mid_offboarding_hands_its_shards_over(
        cluster: Cluster, settings: Settings, stall: MailCapture, scim: ScimServer) -> None:
    owners = await _owners_with_b(cluster)
    if owners is not None:
        await _host_failover(cluster, owners, settings, stall, scim)
        return
    # Host b drew no shard on the session's cluster: a killed b would take nothing with it.
    # A cluster of this test's own, on other ports, draws again.
    for _ in range(3):
        async with Cluster(progress=False) as own:
            owners = await _owners_with_b(own)
            if owners is not None:
                await _host_failover(own, owners, settings, stall, scim)
                return
    raise AssertionError("host b owned no shard on four clusters")


async def _host_failover(cluster: Cluster, owners: dict[int, str], settings: Settings,
                         mail: MailCapture, scim: ScimServer) -> None:
    b = cluster.hosts["b"]
    client = await cluster.client()
    ops = OffboardingClient(client, settings.task_queue)

    # An offboarding whose history shard host b owns (started with no worker running, the
    # others are terminated before anything of theirs runs).
    for _ in range(40):
        cf = client_file(end_in_days=32, scim=scim, follow_up_days=10, retention_days=5)
        wid = await ops.start(cf, PATIENT)
        shard = await shard_of(cluster, wid)
        if owners[shard] == "b":
            break
        await client.get_workflow_handle(wid).terminate("its shard is not on host b")
    else:
        raise AssertionError(f"no offboarding landed on host b's shards {owners}")
    handle = client.get_workflow_handle(wid)
    # The statement's send is held at the SMTP server for 3 s (then accepted): host b
    # dies while the send is under way, so its completion has nowhere to go for a while.
    mail.stall_match, mail.stall_seconds = f"<statement-v1.{wid}", 3
    try:
        async with new_worker(client, settings):
            await ops.send(wid, "complete-task", CompleteTask(by="ops", task="terms-met",
                                                              note="checked"))
            await status_when(handle, waiting_for("meeting"), "the meeting")
            await ops.send(wid, "meeting-held", MeetingHeld(by="ops", notes="KPIs met"))
            await eventually(lambda: _stalled(mail), timeout=WAIT,
                             what="the statement's send to reach the SMTP server")
            b.kill()
            killed_at = time.monotonic()

            taken = await eventually(
                lambda: shard_owners(cluster), lambda o: set(o.values()) == {"a"},
                timeout=WAIT, every=0.5, what="host a to take host b's shards")
            assert taken.keys() == owners.keys()
            handed_over = time.monotonic() - killed_at

            st = await status_when(handle, waiting_for("settlement-approval"),
                                   "the settlement approval, with host b dead")
            await ops.send(wid, "approve-settlement", ApproveSettlement(
                by=cf.approvers.finance[0], statement_hash=st.statements[-1].short_hash))
            st = await status_when(handle, waiting_for("data-verification"),
                                   "the data verification")
            await ops.send(wid, "verify-data", VerifyData(
                by=cf.approvers.data_verification[0], checksum=checksum_of(st)))
            await status_when(handle, waiting_for("feedback"), "the feedback")
            await ops.send(wid, "record-feedback", RecordFeedback(by="ops", nps=9, csat=4))
            typed = client.get_workflow_handle(wid, result_type=OffboardingResult)
            result: OffboardingResult = await asyncio.wait_for(typed.result(), WAIT)
        assert not alive(b), "host b stayed dead until the offboarding completed"

        st = result.status
        assert result.outcome == "completed"
        assert [s.state for s in st.steps] == ["done"] * len(st.steps)
        assert [e.key for e in st.emails].count("statement-v1") == 1
        assert_each_once(mail, st)
        billing = cf.contacts.billing.email
        assert [m.subject for m in mail.to(billing)][-1] == \
            "Our financial relationship is settled"

        # Host b back: healthy, its shards its own again, the offboarding readable there.
        await restart(cluster, b)
        await eventually(lambda: shard_owners(cluster), lambda o: o == owners,
                         timeout=WAIT, every=0.5, what="host b to take its shards back")
        on_b = await cluster.client(b.address)
        desc = await on_b.get_workflow_handle(wid).describe()
        assert desc.status == WorkflowExecutionStatus.COMPLETED
        print(f"host b's shards {sorted(k for k, v in owners.items() if v == 'b')} "
              f"were host a's {handed_over:.1f} s after the kill")
    finally:
        if not alive(b):  # whatever happened: the session's cluster stays whole
            await restart(cluster, b)


@pytest.fixture
async def pair(cluster: Cluster, settings: Settings, minio: MinioServer,
               tmp_path: Path) -> AsyncIterator[tuple[Settings, Pair]]:
    """Two worker processes on one task queue of the cluster, each with its own state
    folder; exports, archive and outbox in one MinIO bucket."""
    common = s3_settings(settings, minio)
    workers = []
    for name in ("a", "b"):
        own = common.model_copy(update={"state_dir": tmp_path / f"state-{name}"})
        env = stack.worker_env(own, cluster.address, TEMPORAL_NAMESPACE=cluster.namespace,
                               OFFBOARDING_METRICS_ADDRESS="")
        workers.append(WorkerProcess(env, tmp_path / f"worker-{name}.log"))
    try:
        await asyncio.gather(*(w.start() for w in workers))
        yield common, Pair(workers)
    finally:
        for w in workers:
            w.close()


async def test_a_worker_killed_mid_send_the_other_finishes_on_shared_storage(
        cluster: Cluster, pair: tuple[Settings, Pair], stall: MailCapture,
        scim: ScimServer) -> None:
    common, workers = pair
    mail = stall
    client = await cluster.client()
    cli = OffboardingClient(client, common.task_queue)
    cf = client_file("termination", scim=scim)
    finance, steward = cf.approvers.finance[0], cf.approvers.data_verification[0]

    # The first message (access revoked) is held at the SMTP server, not yet accepted,
    # while the worker sending it is killed: the connection drops, nothing is delivered.
    wid = workflow_id_for(cf.client_id)
    mail.stall_match, mail.stall_seconds = f"<access-revoked.{wid}", 5
    handle = client.get_workflow_handle(await cli.start(cf, PATIENT))
    await eventually(lambda: _stalled(mail), timeout=WAIT,
                     what="the access-revoked send to reach the SMTP server")
    killed = await workers.kill_the_one_running(client, handle, "send_email")
    killed_at = datetime.now(UTC)
    [survivor] = [w for w in workers.workers if w is not killed]
    assert survivor.proc is not None and killed.proc is not None
    survivor_pid, killed_pid = str(survivor.proc.pid), str(killed.proc.pid)

    st = await status_when(handle, lambda s: {"settlement-approval", "data-verification"}
                           <= set(s.waits), "both approvals, on the surviving worker")
    assert [e.key for e in st.emails].count("access-revoked") == 1
    package = st.data_packages[-1]
    assert package.location.startswith(f"s3://{common.s3_bucket}/")
    await cli.send(wid, "approve-settlement", ApproveSettlement(
        by=finance, statement_hash=st.statements[-1].short_hash))
    await status_when(handle, lambda s: s.step("settlement").state == "done", "settled")
    await cli.send(wid, "verify-data", VerifyData(by=steward,
                                                   checksum=package.manifest_sha256))
    typed = client.get_workflow_handle(wid, result_type=OffboardingResult)
    result: OffboardingResult = await asyncio.wait_for(typed.result(), WAIT)

    st = result.status
    assert result.outcome == "completed"
    assert [e.key for e in st.emails].count("access-revoked") == 1
    assert_each_once(mail, st)
    assert killed.proc.poll() is not None and killed.starts == 1, "never brought back"
    # Everything after the kill ran on the survivor (identities are pid@host).
    after = [e.activity_task_started_event_attributes.identity
             async for e in handle.fetch_history_events()
             if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
             and e.event_time.ToDatetime(tzinfo=UTC) >= killed_at]
    assert after and {i.split("@")[0] for i in after} == {survivor_pid}, (after, killed_pid)
    # The archive and the outbox are in the shared bucket.
    archive = st.archive
    assert archive is not None and archive.location.startswith(f"s3://{common.s3_bucket}/")
    assert set(outbox(common).messages(st.records_key)) == {f"{e.key}.eml"
                                                           for e in st.emails}
