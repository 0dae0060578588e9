"""One client offboarded again and again (issue 20, rows 4 and 10), as a model-based test.

The workflow id is the client's, so a later offboarding of the same client is another run
of the same id. Run 2 used to send no mail at all (the outbox, keyed by the workflow id,
answered ``already_sent`` with run 1's receipts), reuse run 1's export, accept run 1's
steward link, and fail at its archive step ("already exists with other contents"); a
cancelled run kept its export downloadable forever.

Hypothesis chooses the order of the endings (cancel early, cancel while the steward
decides, renew, terminate and complete); after each run: its mail is its own (new
Message-IDs, naming the run), its export holds the data as it is now, a completed run has
an archive of its own, an earlier run's links decide nothing, and a cancel deletes the
run's exports. ``LIFECYCLE_EXAMPLES`` deepens it (default: a few walks)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import uuid
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devtools.mailcapture import MailCapture
from devtools.scim import ScimServer
from offboarding.activities.stores import safe_key
from offboarding.client import OffboardingClient, Refused
from offboarding.config import Settings
from offboarding.models.client_file import ClientFile
from offboarding.models.messages import (
    ApproveSettlement,
    Cancel,
    Message,
    Renew,
    TerminateEarly,
    VerifyData,
)
from offboarding.models.status import OffboardingResult, OffboardingStatus, Timings
from tests.helpers import CLIENT_DATA, client_file, links_to, new_worker, wait_until, waiting_for

T = TypeVar("T")
FAST = Timings(day_length=timedelta(milliseconds=100), settlement_reminder_days=1000,
               settlement_escalation_days=1000, data_reminder_days=1000,
               data_escalation_days=1000, meeting_deadline_days=1000,
               feedback_deadline_days=1000)
EXAMPLES = int(os.environ.get("LIFECYCLE_EXAMPLES", "1"))
walks: list[list[str]] = []
"""The outcomes of each walk's runs, to show which orders were walked."""


class Lifecycles(RuleBasedStateMachine):
    """The model: what earlier runs of this client sent, exported, archived and linked."""

    loop: ClassVar[asyncio.AbstractEventLoop]
    env: ClassVar[WorkflowEnvironment]
    cli: ClassVar[OffboardingClient]
    mail: ClassVar[MailCapture]
    scim: ClassVar[ScimServer]
    worker_settings: ClassVar[Settings]

    def __init__(self) -> None:
        super().__init__()
        cf = client_file(end_in_days=100, scim=self.scim, retention_days=1, follow_up_days=1)
        # A notice period of 90 days (9 s): where every ending begins, and long enough to
        # be seen there on a busy machine (30 days, 3 s, were missed once).
        self.cf: ClientFile = cf.model_copy(update={
            "contract": cf.contract.model_copy(update={"notice_days": 90})})
        self.runs: list[str] = []
        self.endings: list[str] = []
        self.message_ids: set[str] = set()
        self.archives: set[str] = set()
        self.links: list[str] = []
        """Approval link tokens of earlier runs, to any approver."""

    # ----- plumbing ----------------------------------------------------------------------

    def _await(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def _start(self) -> WorkflowHandle[Any, Any]:
        """A new run, with the data set as it is now (a file naming the run)."""
        marker = CLIENT_DATA / self.cf.data_sets[0].path / "lifecycle.txt"
        self.marker = f"run {len(self.runs) + 1} {uuid.uuid4().hex}\n"
        marker.write_text(self.marker)
        self.mail_before = len(self.mail.messages)
        wid = self._await(self.cli.start(self.cf, FAST))
        handle = self.env.client.get_workflow_handle(wid)
        return handle

    def _in_the_notice_period(self) -> WorkflowHandle[Any, Any]:
        """A new run, once it waits out its notice period (where every ending may begin)."""
        handle = self._start()
        self._until(handle, "notice-period")
        return handle

    def _send(self, handle: WorkflowHandle[Any, Any], name: str, msg: Message) -> None:
        self._await(self.cli.send(handle.id, name, msg))

    def _until(self, handle: WorkflowHandle[Any, Any], what: str) -> OffboardingStatus:
        return self._await(wait_until(handle, waiting_for(what), timeout=60, what=what))

    def _end(self, handle: WorkflowHandle[Any, Any], outcome: str) -> OffboardingResult:
        typed = self.env.client.get_workflow_handle(handle.id, result_type=OffboardingResult)
        result: OffboardingResult = self._await(typed.result())
        assert result.outcome == outcome
        st = result.status
        assert st.run_id is not None and st.run_id not in self.runs
        self.runs.append(st.run_id)
        self.endings.append(outcome)
        self._check_own_mail(st)
        return result

    def _check_own_mail(self, st: OffboardingStatus) -> None:
        """Every message of this run is new, and names the run in its Message-ID."""
        sent = self.mail.messages[self.mail_before:]
        assert sent, "each run sends its own mail"
        ids = [m.message_id for m in sent]
        assert not set(ids) & self.message_ids, "a message of an earlier run was reused"
        assert all(safe_key(st.run_id or "") in i for i in ids), ids
        assert {e.message_id for e in st.emails} <= set(ids)
        assert not any(e.already_sent for e in st.emails)
        self.message_ids |= set(ids)
        self.links += [link.rsplit("/", 1)[1] for a in self._approvers()
                       for link in links_to(self.mail, a, "")]

    def _approvers(self) -> list[str]:
        return [*self.cf.approvers.finance, *self.cf.approvers.data_verification]

    def _export_is_current(self, st: OffboardingStatus) -> None:
        package = Path(st.data_packages[-1].location)
        assert st.run_id is not None and safe_key(st.run_id) in str(package)
        manifest = json.loads((package / "manifest.json").read_text())
        lifecycle = [f for f in manifest["files"] if f["path"].endswith("/lifecycle.txt")]
        assert [f["sha256"] for f in lifecycle] == \
            [hashlib.sha256(self.marker.encode()).hexdigest()], "the data as it is now"

    def _earlier_links_decide_nothing(self, handle: WorkflowHandle[Any, Any],
                                      st: OffboardingStatus) -> None:
        for token in self.links[-4:]:
            msgs = [("approve-settlement", ApproveSettlement(
                by=self.cf.approvers.finance[0], link=token,
                statement_hash=st.statements[-1].hash)) if st.statements else None,
                ("verify-data", VerifyData(
                    by=self.cf.approvers.data_verification[0], link=token,
                    checksum=st.data_packages[-1].manifest_sha256))
                if st.data_packages else None]
            for name, msg in [m for m in msgs if m is not None]:
                with pytest.raises(Refused, match="refused"):
                    self._await(self.cli.send(handle.id, name, msg))
        assert not [d for d in self._await(self.cli.status(handle.id)).decisions
                    if d.via == "link"], "no earlier link decided anything"

    def _settle_and_verify(self, handle: WorkflowHandle[Any, Any]) -> None:
        st = self._until(handle, "settlement-approval")
        self._await(self.cli.send(handle.id, "approve-settlement", ApproveSettlement(
            by=self.cf.approvers.finance[0], statement_hash=st.statements[-1].hash)))
        st = self._until(handle, "data-verification")
        self._export_is_current(st)
        self._earlier_links_decide_nothing(handle, st)
        self._await(self.cli.send(handle.id, "verify-data", VerifyData(
            by=self.cf.approvers.data_verification[0],
            checksum=st.data_packages[-1].manifest_sha256)))

    # ----- the endings -------------------------------------------------------------------

    @rule()
    def cancel_in_the_notice_period(self) -> None:
        handle = self._in_the_notice_period()
        self._send(handle, "cancel", Cancel(by="ops", reason="mistake"))
        self._end(handle, "cancelled")

    @rule()
    def renew(self) -> None:
        handle = self._in_the_notice_period()
        self._send(handle, "renew", Renew(by="ops", note="12 more months"))
        self._end(handle, "renewed")

    @rule()
    def cancel_while_the_steward_decides(self) -> None:
        """Row 10: the export made so far is deleted by the cancel."""
        handle = self._in_the_notice_period()
        self._send(handle, "terminate-early", TerminateEarly(by="ops", cause="budget"))
        st = self._until(handle, "data-verification")
        self._export_is_current(st)
        self._earlier_links_decide_nothing(handle, st)
        package = Path(st.data_packages[-1].location)
        assert (package / "data.zip").exists()
        self._send(handle, "cancel", Cancel(by="ops", reason="stop"))
        result = self._end(handle, "cancelled")
        assert not package.exists(), "a cancel deletes the run's exports"
        assert result.status.step("data-retention").detail.startswith("cancelled; deleted:")
        assert (CLIENT_DATA / self.cf.data_sets[0].path).exists(), \
            "the client's data stays: the retention had not begun"

    @rule()
    def terminate_and_complete(self) -> None:
        handle = self._in_the_notice_period()
        self._send(handle, "terminate-early", TerminateEarly(by="ops", cause="budget"))
        self._settle_and_verify(handle)
        result = self._end(handle, "completed")
        archive = result.status.archive
        assert archive is not None and archive.location not in self.archives
        self.archives.add(archive.location)
        record = json.loads((Path(archive.location) / "record.json").read_text())
        assert record["run_id"] == result.status.run_id
        self._restore_data()

    def _restore_data(self) -> None:
        """A completed run deleted our copy at retention: the next run has data again."""
        for data_set in self.cf.data_sets:
            (CLIENT_DATA / data_set.path).mkdir(parents=True, exist_ok=True)

    @invariant()
    def every_run_was_its_own(self) -> None:
        assert len(set(self.runs)) == len(self.runs)

    def teardown(self) -> None:
        walks.append(self.endings)


ENDINGS = ("cancel_in_the_notice_period", "renew", "cancel_while_the_steward_decides",
           "terminate_and_complete")


def every_pair(n: int) -> list[int]:
    """A de Bruijn sequence B(n, 2), closed: every ordered pair of n endings, once."""
    seq: list[int] = []
    a = [0] * (2 * n)

    def db(t: int, p: int) -> None:
        if t > 2:
            if 2 % p == 0:
                seq.extend(a[1:p + 1])
            return
        a[t] = a[t - p]
        db(t + 1, p)
        for j in range(a[t - p] + 1, n):
            a[t] = j
            db(t + 1, t)

    db(1, 1)
    return [*seq, seq[0]]


def test_the_walk_holds_every_ordered_pair_of_endings() -> None:
    walk = every_pair(len(ENDINGS))
    assert len(walk) == len(ENDINGS) ** 2 + 1
    assert set(itertools.pairwise(walk)) == \
        {(a, b) for a in range(len(ENDINGS)) for b in range(len(ENDINGS))}


async def test_each_offboarding_of_one_client_is_its_own(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
) -> None:
    """Every ending followed by every ending (a walk of 17 runs of one client), then
    ``LIFECYCLE_EXAMPLES`` walks that Hypothesis chooses."""
    machine = type("Walk", (Lifecycles,), {
        "loop": asyncio.get_running_loop(), "env": dev_env, "mail": mail, "scim": scim,
        "cli": OffboardingClient(dev_env.client, settings.task_queue),
        "worker_settings": settings})
    async with new_worker(dev_env.client, settings):
        walker = machine()

        def walk() -> None:
            for ending in every_pair(len(ENDINGS)):
                getattr(walker, ENDINGS[ending])()
                walker.every_run_was_its_own()
            walker.teardown()

        await asyncio.to_thread(walk)
        assert walks == [[{"renew": "renewed", "terminate_and_complete": "completed"}.get(
            ENDINGS[e], "cancelled") for e in every_pair(len(ENDINGS))]]
        if EXAMPLES:
            await asyncio.to_thread(run_state_machine_as_test, machine,
                                    settings=settings_for_walks(EXAMPLES))
    print(f"lifecycle walks: {walks}")


def settings_for_walks(examples: int) -> settings:
    return settings(max_examples=examples, stateful_step_count=4, deadline=None,
                    database=None, suppress_health_check=list(HealthCheck))
