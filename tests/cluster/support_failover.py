"""What the cluster's failover tests share: which server host owns which history shard and
which shard an offboarding lives on (read from the cluster's own PostgreSQL with ``psql``,
as an operator would), a status query that rides out a host's death, bringing a killed
host back, and counting the mail each recipient received."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from devtools.cluster import DB_USER, HOST_IPS, Cluster
from devtools.mailcapture import MailCapture
from devtools.server_host import Host, clean_env
from offboarding.models.status import OffboardingStatus, Timings
from offboarding.workflows.offboarding import ClientOffboarding
from tests.helpers import describe, eventually

WAIT = 120.0
"""Bounded but generous: a host's death is noticed by the others' membership within
seconds, and a send lost with a killed worker is retried after its 30 s timeout; the
machine has 2 cores and others test on it at the same time."""

PATIENT = Timings(day_length=timedelta(milliseconds=100), settlement_reminder_days=10_000,
                  settlement_escalation_days=10_000, data_reminder_days=10_000,
                  data_escalation_days=10_000, meeting_deadline_days=10_000,
                  feedback_deadline_days=10_000)
"""Days of 100 ms; no reminder or escalation falls inside an outage (they are 1000 s
away), so every message counted is one the offboarding's own course sends."""

_OWNER = re.compile(rb"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}):\d+")
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]+")


def psql(cluster: Cluster, sql: str, database: str = "temporal") -> str:
    """One query against the cluster's database, rows as ``a|b`` lines."""
    done = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(cluster.postgres.port), "-U", DB_USER,
         "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
        env=clean_env(PGPASSWORD=cluster.password, PGCONNECT_TIMEOUT="10"),
        capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"psql failed: {done.stderr.strip()}"
    return done.stdout


def host_named(ip: str) -> str:
    return {v: k for k, v in HOST_IPS.items()}.get(ip, ip)


async def shard_owners(cluster: Cluster) -> dict[int, str]:
    """Each history shard's owner (host name, ``a`` or ``b``), as the shard's row says:
    the owning history service writes its identity (``ip:port-...``) into the row's
    ShardInfo whenever it acquires the shard."""
    out = await asyncio.to_thread(
        psql, cluster, "SELECT shard_id, encode(data, 'hex') FROM shards ORDER BY shard_id")
    owners: dict[int, str] = {}
    for line in out.splitlines():
        shard, data = line.split("|")
        found = _OWNER.search(bytes.fromhex(data))
        owners[int(shard)] = host_named(found.group(1).decode()) if found else "?"
    return owners


async def shard_of(cluster: Cluster, workflow_id: str) -> int:
    assert _SAFE_ID.fullmatch(workflow_id), workflow_id
    out = await asyncio.to_thread(
        psql, cluster, f"SELECT DISTINCT shard_id FROM executions "
                       f"WHERE workflow_id = '{workflow_id}'")
    [shard] = out.split()
    return int(shard)


async def status(handle: WorkflowHandle[Any, Any]) -> OffboardingStatus:
    """The status query with a deadline of its own: while a shard has no live owner a
    query may wait, not fail."""
    st: OffboardingStatus = await handle.query(ClientOffboarding.status,
                                               rpc_timeout=timedelta(seconds=10))
    return st


async def status_when(handle: WorkflowHandle[Any, Any],
                      holds: Callable[[OffboardingStatus], bool], what: str,
                      timeout: float = WAIT) -> OffboardingStatus:
    """``wait_until`` that rides out the errors a dead host causes meanwhile."""
    return await eventually(lambda: status(handle), holds, timeout=timeout, every=0.2,
                            what=what, show=describe, retry_on=(RPCError,))


async def restart(cluster: Cluster, host: Host) -> None:
    """Start a killed host again and wait until its frontend says SERVING."""
    host.start()
    # Host.start() does not tell the cluster of the new process: without this its stop
    # at the session's end would miss it and leave a server running (reported).
    procs: list[Any] = cluster._procs
    if host.proc is not None and host.proc not in procs:
        procs.append(host.proc)
    await asyncio.to_thread(cluster.wait_healthy, host)


def alive(host: Host) -> bool:
    return host.proc is not None and host.proc.poll() is None


def deliveries(mail: MailCapture, workflow_id: str) -> Counter[tuple[str, str]]:
    """How many times each recipient received each message of one offboarding (its
    Message-IDs name the workflow)."""
    return Counter((rcpt.lower(), m.message_id) for m in mail.messages
                   if workflow_id in m.message_id for rcpt in m.recipients)


def assert_each_once(mail: MailCapture, st: OffboardingStatus) -> None:
    """Every message the offboarding recorded reached each of its recipients once, and
    nothing else arrived: by Message-ID per recipient, and by subject per recipient."""
    got = deliveries(mail, st.workflow_id)
    twice = {k: n for k, n in got.items() if n != 1}
    assert not twice, f"received more than once: {twice}"
    expected = {(rcpt.lower(), e.message_id) for e in st.emails for rcpt in e.to
                if rcpt not in e.refused}
    assert set(got) >= expected, f"never received: {expected - set(got)}"
    assert {mid for _, mid in got} == {e.message_id for e in st.emails}
    for rcpt in {r for r, _ in got}:
        subjects = Counter(m.subject for m in mail.messages
                           if st.workflow_id in m.message_id
                           and rcpt in (r.lower() for r in m.recipients))
        assert set(subjects.values()) == {1}, f"{rcpt} received a subject twice: {subjects}"
