"""Stub activities for the workflow tier: registered under the real activity names, they
record what the workflow asked the world to do (every email with its key, template and
recipients; every revocation, export, purge and archive) and answer at once, so the
workflow's own logic runs on the time-skipping server in seconds.

The stubs stand in for SMTP, SCIM, storage and the portal on purpose: the real
activities are tested against real servers in tests/integration."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from offboarding.client import workflow_id_for
from offboarding.models.client_file import ClientFile
from offboarding.models.records import (
    ArchiveReceipt,
    DataPackage,
    EmailReceipt,
    EmailRequest,
    ExportRequest,
    PurgeRequest,
    PurgeResult,
    RevokeRequest,
    SystemRevocation,
)
from offboarding.models.status import OffboardingInput, OffboardingStatus, Timings
from offboarding.worker import workflow_runner
from offboarding.workflows.offboarding import ClientOffboarding
from tests.helpers import eventually, status_of


def manifest(attempt: int) -> str:
    """The SHA-256 the stub export's manifest has: one per attempt, so a checksum of an
    earlier export does not verify a later one."""
    return hashlib.sha256(f"export-{attempt}".encode()).hexdigest()


@dataclass
class Stubs:
    """What the workflow asked the world to do, in order."""

    calls: list[str] = field(default_factory=list)
    """One line per call: ``email <key>``, ``revoke <system>``, ``export <attempt>``,
    ``purge``, ``archive``."""
    emails: list[EmailRequest] = field(default_factory=list)
    revocations: list[RevokeRequest] = field(default_factory=list)
    exports: list[ExportRequest] = field(default_factory=list)
    purges: list[PurgeRequest] = field(default_factory=list)
    refuse_revoke: set[str] = field(default_factory=set)
    """Systems whose next revocation fails as a refused token would (a problem for ops)."""
    held: dict[str, asyncio.Event] = field(default_factory=dict)
    """Activities (by name) that wait for their event before they answer: a test holds
    the workflow inside a stage that is otherwise over at once."""

    def email(self, key: str) -> EmailRequest:
        """The one email sent under ``key``."""
        found = [e for e in self.emails if e.key == key]
        assert len(found) == 1, (key, [e.key for e in self.emails])
        return found[0]

    def sent(self, prefix: str = "") -> list[str]:
        """The keys of the emails sent, in order (those starting with ``prefix``)."""
        return [e.key for e in self.emails if e.key.startswith(prefix)]

    async def _hold(self, name: str) -> None:
        if name in self.held:
            await self.held[name].wait()

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="send_email")
        async def send_email(req: EmailRequest) -> EmailReceipt:
            self.calls.append(f"email {req.key}")
            self.emails.append(req)
            await self._hold("send_email")
            return EmailReceipt(key=req.key, message_id=f"<{req.key}@test>", to=req.to,
                                subject=req.template, sent_at=datetime.now(UTC))

        @activity.defn(name="revoke_access")
        async def revoke_access(req: RevokeRequest) -> SystemRevocation:
            self.calls.append(f"revoke {req.system}")
            self.revocations.append(req)
            if req.system in self.refuse_revoke:
                self.refuse_revoke.discard(req.system)
                raise ApplicationError("401 from the SCIM server", type="ScimUnauthorized",
                                       non_retryable=True)
            await self._hold("revoke_access")
            return SystemRevocation(system=req.system, mode=req.mode, accounts=[])

        @activity.defn(name="export_client_data")
        async def export_client_data(req: ExportRequest) -> DataPackage:
            self.calls.append(f"export {req.attempt}")
            self.exports.append(req)
            await self._hold("export_client_data")
            return DataPackage(attempt=req.attempt, location=f"export-{req.attempt}", files=1,
                               bytes=10, manifest_sha256=manifest(req.attempt))

        @activity.defn(name="purge_client_data")
        async def purge_client_data(req: PurgeRequest) -> PurgeResult:
            self.calls.append("purge")
            self.purges.append(req)
            return PurgeResult(deleted=[name for name, _ in req.data_sets])

        @activity.defn(name="archive_offboarding")
        async def archive_offboarding(record: OffboardingStatus) -> ArchiveReceipt:
            self.calls.append("archive")
            await self._hold("archive_offboarding")
            return ArchiveReceipt(location="archive", manifest_sha256=manifest(0),
                                  files=["a"], report="closure-report.html")

        return [send_email, revoke_access, export_client_data, purge_client_data,
                archive_offboarding]


@dataclass
class StubWorld:
    """A worker running the real workflow with stub activities on its own task queue."""

    env: WorkflowEnvironment
    stubs: Stubs
    queue: str
    started: list[WorkflowHandle[Any, Any]] = field(default_factory=list)

    async def start(self, cf: ClientFile, timings: Timings | None = None, *,
                    start_signal: str | None = None,
                    start_signal_args: list[Any] | None = None
                    ) -> WorkflowHandle[Any, Any]:
        """Start an offboarding for ``cf``; with ``start_signal`` the signal is delivered
        with the start, before the first step (signal-with-start)."""
        inp = OffboardingInput(client=cf, timings=timings or Timings())
        if start_signal is None:
            handle = await self.env.client.start_workflow(
                ClientOffboarding.run, inp, id=workflow_id_for(cf.client_id),
                task_queue=self.queue)
        else:
            handle = await self.env.client.start_workflow(
                ClientOffboarding.run, inp, id=workflow_id_for(cf.client_id),
                task_queue=self.queue, start_signal=start_signal,
                start_signal_args=start_signal_args or [])
        self.started.append(handle)
        return handle

    async def end_all(self) -> None:
        """End what is still running, as ops would: cancelled, and its end seen by query.
        Left running without its worker, an offboarding would stop this server's clock
        for every later test (its next timer makes a workflow task nobody takes, and time
        does not skip past a task in flight); terminating one while an activity is in
        flight leaves the clock locked too, so terminating is only the last resort. Not
        ``result()``: waiting on it lets this server skip years ahead."""
        for handle in self.started:
            try:
                await handle.signal("cancel", {"by": "ops", "reason": "the test is over"})
            except RPCError:
                continue  # it has ended
            try:
                await eventually(functools.partial(status_of, handle),
                                 lambda s: s.outcome is not None, timeout=10,
                                 what="the offboarding to end")
            except AssertionError:
                with contextlib.suppress(RPCError):
                    await handle.terminate("the test is over")


@asynccontextmanager
async def stub_world(env: WorkflowEnvironment) -> AsyncIterator[StubWorld]:
    stubs, queue = Stubs(), f"stubs-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=[ClientOffboarding],
                      activities=stubs.activities(), workflow_runner=workflow_runner()):
        world = StubWorld(env, stubs, queue)
        try:
            yield world
        finally:
            for gate in stubs.held.values():  # nothing stays held past its test
                gate.set()
            await world.end_all()
