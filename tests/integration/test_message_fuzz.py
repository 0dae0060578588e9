"""No message stops an offboarding or the worker (issue 20, "The class, not the rows"):
generated messages against running offboardings in several stages, on a real worker
process that holds the payload and link keys.

Each example sends one signal or update, under a declared action's name or an unknown one,
with 0 to 3 raw arguments (tests/fuzz_support.py: valid messages, valid ones with one field
replaced, payloads whose metadata lies, messages carrying genuine, altered, expired,
foreign-run and non-canonical links), past the codec, so the worker sees exactly that.
After each: the worker is the same process and alive, ``status`` answers, and the status
is unchanged unless the message was accepted (an update's outcome says so; a signal's new
decision does). A refused update leaves no trace; a refused signal leaves one more
``ignored`` entry with its reason. What the fuzzer knows must be refused (an unknown name,
0 or 2+ arguments, lying metadata, a field the model refuses, a bad link in an update) is
never accepted. At the end every history replays.

``FUZZ_EXAMPLES`` sets the number of examples (500 by default, under a minute on two
cores; ``make fuzz-deep`` runs 3,000); ``FUZZ_SEED`` draws another sequence than the
default, fixed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, note, seed
from hypothesis import settings as fuzz_settings
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import RawValue
from temporalio.converter import PayloadCodec
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from devtools.mailcapture import MailCapture
from devtools.procs import start_logged, stop
from devtools.scim import ScimServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.client_file import ClientFile
from offboarding.models.messages import Ack, ApproveSettlement, TerminateEarly
from offboarding.models.status import OffboardingStatus
from offboarding.security.codec import (
    EncryptionCodec,
    ForgivingCodec,
    data_converter,
    load_keys,
    new_key_file,
)
from offboarding.security.links import LinkKeys, load_link_keys
from offboarding.temporal import connect
from offboarding.worker import workflow_runner
from offboarding.workflows.offboarding import ClientOffboarding
from tests.conftest import ROOT
from tests.fuzz_support import (
    Built,
    Context,
    Example,
    Lying,
    Valid,
    build,
    examples,
    expected_refusal,
    today_utc,
)
from tests.helpers import client_file, wait_until, worker_env

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
FUZZ_SEED = os.environ.get("FUZZ_SEED")
VERBOSE = os.environ.get("FUZZ_VERBOSE") == "1"
"""Print every example's outcome (with pytest -s)."""
SIGNAL_WAIT = 10.0
"""Seconds a signal has to show up as a decision or as ignored."""
UPDATE_WAIT = 15.0
"""Seconds an update has to complete (accepted or rejected)."""

TARGETS: dict[str, Callable[[OffboardingStatus], bool]] = {
    "settlement": lambda s: "settlement-approval" in s.waits,
    "data": lambda s: "data-verification" in s.waits and "settlement-approval" not in s.waits,
    "notice-period": lambda s: s.stage == "notice-period",
    "terminated-early": lambda s: s.stage == "awaiting-termination",
}
"""The stages fuzzed, each by the predicate its offboarding must meet to stay the target
(an accepted message may move it on: a new one is started in its place)."""


class SendAsIs(PayloadCodec):
    """The fuzzer's client codec: what it sends goes out byte for byte (garbage stays
    garbage; a genuine encrypted message is encrypted beforehand), and what comes back
    (the Ack, a failure's message) is decrypted."""

    def __init__(self, codec: EncryptionCodec) -> None:
        self.inner = ForgivingCodec(codec)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return await self.inner.decode(payloads)


@dataclass
class Target:
    kind: str
    wid: str
    run_id: str
    client: ClientFile
    dirty: bool = True
    """Changed (or maybe changed) by the last example: wait until it is quiet again."""


@dataclass
class Outcome:
    result: str
    """accepted, rejected, ignored, not-delivered or timeout."""
    detail: str = ""
    after: OffboardingStatus | None = None


def _dump(st: OffboardingStatus, *, without_ignored: bool = False) -> dict[str, Any]:
    exclude = {"ignored", "ignored_total"} if without_ignored else set()
    return st.model_dump(mode="json", exclude=exclude)


def _describe_payload(p: Payload) -> str:
    meta = {k: v[:40] for k, v in p.metadata.items()}
    return f"metadata={meta} data[{len(p.data)}]={p.data[:160]!r}"


@dataclass
class Fleet:
    """The worker process and one running offboarding per stage."""

    ops: Client
    raw: Client
    settings: Settings
    scim: ScimServer
    codec: EncryptionCodec
    links: LinkKeys
    worker_args: dict[str, Any]
    worker: subprocess.Popen[bytes]
    targets: dict[str, Target] = field(default_factory=dict)
    started: list[tuple[str, str]] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    restarts: int = 0

    @property
    def cli(self) -> OffboardingClient:
        return OffboardingClient(self.ops, self.settings.task_queue)

    def handle(self, t: Target, *, raw: bool = False) -> WorkflowHandle[Any, Any]:
        return (self.raw if raw else self.ops).get_workflow_handle(t.wid, run_id=t.run_id)

    def worker_log(self) -> str:
        return Path(self.worker_args["log"]).read_text(errors="replace")[-3000:]

    async def status(self, t: Target) -> OffboardingStatus:
        st: OffboardingStatus = await self.handle(t).query(
            ClientOffboarding.status, rpc_timeout=timedelta(seconds=10))
        return st

    # ----- targets ---------------------------------------------------------------------

    async def _start(self, kind: str) -> Target:
        if kind in ("settlement", "data"):
            cf = client_file("termination", scim=self.scim)
        else:
            cf = client_file("contract-end", scim=self.scim,
                             end_in_days=20 if kind == "notice-period" else 90)
        wid = await self.cli.start(cf)
        handle = self.ops.get_workflow_handle(wid)
        run_id = (await handle.describe()).run_id
        assert run_id is not None
        self.started.append((wid, run_id))
        if kind == "data":
            st = await wait_until(handle, TARGETS["settlement"], what="settlement")
            await self.cli.send(wid, "approve-settlement", ApproveSettlement(
                by=cf.approvers.finance[0], statement_hash=st.statements[-1].short_hash))
        if kind == "terminated-early":
            await wait_until(handle, lambda s: s.stage == "notice", what="notice")
            await self.cli.send(wid, "terminate-early", TerminateEarly(
                by="ops.alice", cause="Budget cut",
                effective_date=today_utc() + timedelta(days=30)))
        await wait_until(handle, TARGETS[kind], what=kind)
        return Target(kind, wid, run_id, cf)

    async def quiet(self, t: Target, timeout: float = 15.0) -> OffboardingStatus | None:
        """The status once nothing moves (no activity or workflow task pending, the status
        the same twice), or None if the run has closed or does not come to rest."""
        deadline, previous = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            desc = await self.handle(t).describe()
            if desc.raw_description.workflow_execution_info.status != \
                    WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING:
                return None
            st = await self.status(t)
            raw = desc.raw_description
            busy = bool(raw.pending_activities) or raw.HasField("pending_workflow_task")
            if not busy and previous is not None and _dump(st) == _dump(previous):
                return st
            previous = st
            await asyncio.sleep(0.1)
        return None

    async def ready(self, kind: str) -> tuple[Target, OffboardingStatus]:
        """The target for ``kind`` at rest, and its status. One that moved on (an accepted
        message), ended, or does not answer or come to rest (an earlier example broke it,
        and failed for it) is terminated and a new one started in its place."""
        t = self.targets.get(kind)
        if t is not None:
            try:
                st: OffboardingStatus | None = await self.status(t)
                if t.dirty and st is not None and st.outcome is None and TARGETS[kind](st):
                    st = await self.quiet(t)
            except RPCError:
                st = None
            if st is not None and st.outcome is None and TARGETS[kind](st):
                t.dirty = False
                return t, st
            self.stats[f"replaced {kind}"] += 1
            with contextlib.suppress(RPCError):  # closed already
                await self.handle(t).terminate("the fuzzer replaces it")
        t = self.targets[kind] = await self._start(kind)
        st = await self.quiet(t)
        assert st is not None, f"a new {kind} offboarding {t.wid} does not come to rest"
        t.dirty = False
        return t, st

    async def ensure_worker(self) -> None:
        """A worker killed by an earlier example is started again, so that the next
        example (or Hypothesis's shrinking) starts from a healthy worker."""
        if self.worker.poll() is not None:
            self.restarts += 1
            args = self.worker_args
            self.worker = await asyncio.to_thread(
                start_logged, [sys.executable, "worker.py"], args["log"], "worker polling",
                env=args["env"], cwd=ROOT)

    # ----- sending -----------------------------------------------------------------------

    async def send_update(self, t: Target, name: str, built: list[Built]) -> Outcome:
        handle = self.handle(t, raw=True)
        args = [RawValue(b.payload) for b in built]
        for attempt in range(6):
            try:
                ack = await asyncio.wait_for(
                    handle.execute_update(name, args=args, result_type=Ack), UPDATE_WAIT)
                return Outcome("accepted", repr(ack))
            except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
                return Outcome("timeout", f"the update did not complete within {UPDATE_WAIT} s")
            except WorkflowUpdateFailedError as err:
                cause = err.cause
                return Outcome("rejected", getattr(cause, "message", None) or str(cause))
            except RPCError as err:
                retry = (err.status == RPCStatusCode.FAILED_PRECONDITION
                         and b"WorkflowNotReadyFailure" in (err.raw_grpc_status or b""))
                if not retry or attempt == 5:
                    return Outcome("not-delivered", f"{err.status.name}: {err.message}")
                await asyncio.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    async def send_signal(self, t: Target, name: str, built: list[Built],
                          before: OffboardingStatus) -> Outcome:
        try:
            await self.handle(t, raw=True).signal(
                name, args=[RawValue(b.payload) for b in built],
                rpc_timeout=timedelta(seconds=10))
        except RPCError as err:
            return Outcome("not-delivered", f"{err.status.name}: {err.message}")
        deadline = time.monotonic() + SIGNAL_WAIT
        while True:
            try:
                after = await self.status(t)
            except RPCError as err:
                return Outcome("timeout", f"status does not answer after the signal: {err}")
            if after.ignored_total != before.ignored_total or \
                    after.decisions != before.decisions:
                ignored = after.ignored_total != before.ignored_total
                return Outcome("ignored" if ignored else "accepted",
                               after.ignored[-1].why if ignored else after.decisions[-1].detail,
                               after)
            if time.monotonic() > deadline:
                return Outcome("timeout", f"the signal was neither applied nor ignored "
                                          f"within {SIGNAL_WAIT} s")
            await asyncio.sleep(0.03)

    # ----- one example -------------------------------------------------------------------

    async def run(self, ex: Example, note: Callable[[str], None]) -> None:
        """One example; ``note`` collects what a failure report shows."""
        await self.ensure_worker()
        t, before = await self.ready(ex.target)
        pid = self.worker.pid
        fixed = before.contacts_fixed
        primary = t.client.contacts.primary.email
        ctx = Context(status=before, finance=t.client.approvers.finance[0],
                      steward=t.client.approvers.data_verification[0],
                      emails={"primary": fixed.get(primary, primary)}, run_id=t.run_id,
                      link_keys=self.links, codec=self.codec, now=datetime.now(UTC))
        built = [await build(ctx, ex.name, arg) for arg in ex.args]
        must_refuse = expected_refusal(ex, built)
        note(f"target {t.kind}: {t.wid} run {t.run_id}, stage {before.stage}, "
             f"waiting for {before.waiting_for}, worker pid {pid}")
        for i, b in enumerate(built):
            note(f"argument {i}: {_describe_payload(b.payload)}")
        note(f"must be refused: {must_refuse}")
        t.dirty = True  # until proven unchanged
        if ex.channel == "update":
            outcome = await self.send_update(t, ex.name, built)
        else:
            outcome = await self.send_signal(t, ex.name, built, before)
        note(f"outcome: {outcome.result}: {outcome.detail[:500]}")
        if VERBOSE:
            print(f"{t.kind} {ex.channel} {ex.name[:40]!r} x{len(ex.args)} "
                  f"[{must_refuse and must_refuse[:60]}] -> {outcome.result}: "
                  f"{outcome.detail[:150]!r}")
        self.stats[f"{ex.channel} {outcome.result}"] += 1

        assert self.worker.poll() is None, \
            f"the worker process died (exit {self.worker.returncode}):\n{self.worker_log()}"
        assert self.worker.pid == pid, "the worker is another process"
        assert outcome.result != "timeout", f"{outcome.detail}; worker log:\n{self.worker_log()}"
        try:
            after = await self.status(t)
        except RPCError as err:
            raise AssertionError(f"status does not answer: {err}") from None

        if outcome.result == "accepted":
            assert must_refuse is None, (
                f"{ex.channel} {ex.name!r} was accepted although it must be refused "
                f"({must_refuse}): {outcome.detail}")
            assert after.decisions and after.decisions != before.decisions, \
                "accepted without a decision"
            assert after.decisions[-1].action.startswith(ex.name), after.decisions[-1]
            assert after.ignored_total == before.ignored_total, "accepted and ignored"
            return  # it may change the offboarding: the target stays dirty
        if outcome.result == "ignored":
            assert after.ignored_total == before.ignored_total + 1, \
                f"ignored_total went from {before.ignored_total} to {after.ignored_total}"
            last = after.ignored[-1]
            assert last.why.strip(), "ignored without a reason"
            assert last.action == ex.name[:100], last
            assert _dump(after, without_ignored=True) == _dump(before, without_ignored=True), \
                "an ignored signal changed the offboarding"
        else:  # rejected or not delivered: no trace at all
            assert outcome.detail.strip(), "rejected without a reason"
            assert _dump(after) == _dump(before), f"a {outcome.result} update changed the status"
        t.dirty = False


def _explicit() -> list[Example]:
    """Examples always run first, whatever the profile: one of each class of the issue's
    rows 1 and 2 and of the lying payloads, each the smallest of its kind."""
    steward = (("by", "$steward"), ("checksum", "$checksum"))
    settle = (("by", "$finance"), ("statement_hash", "$hash"))
    ops = (("by", "ops.alice"), ("reason", "x"))
    return [
        Example("data", "update", "verify-data", (Valid((*steward, ("link", "@row-1-forgery"))),)),
        Example("settlement", "update", "approve-settlement",
                (Valid((*settle, ("link", "@foreign-run"))),)),
        Example("settlement", "signal", "complete-task", ()),
        Example("settlement", "signal", "cancel", (Valid(ops), Valid(ops))),
        Example("settlement", "update", "cancel", (Lying("binary-null", ops),)),
        Example("settlement", "signal", "approve-settlement",
                (Lying("encrypted-garbage", settle),)),
        Example("settlement", "update", "approve-settlement",
                (Lying("unknown-key-ciphertext", settle),)),
    ]


@pytest.mark.timeout(600 + 3 * FUZZ_EXAMPLES)
async def test_no_generated_message_stops_an_offboarding_or_the_worker(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
    tmp_path: Path,
) -> None:
    keys = tmp_path / "codec-keys.json"
    new_key_file(keys)
    codec = load_keys(keys, None, None)
    links = load_link_keys(settings.link_key_file, None, None)
    assert codec is not None and links is not None
    address = dev_env.client.service_client.config.target_host
    log = tmp_path / "worker.log"
    env = {**worker_env(settings, address), "OFFBOARDING_CODEC_KEY_FILE": str(keys)}
    worker = await asyncio.to_thread(start_logged, [sys.executable, "worker.py"], log,
                                     "worker polling", env=env, cwd=ROOT)
    fleet = Fleet(ops=await connect(address, codec), raw=await connect(address, SendAsIs(codec)),
                  settings=settings, scim=scim, codec=codec, links=links,
                  worker_args={"log": log, "env": env}, worker=worker)
    loop = asyncio.get_running_loop()
    began = time.monotonic()
    count = 0

    def on_loop(ex: Example) -> None:
        nonlocal count
        count += 1
        notes: list[str] = []  # Hypothesis's note() works in its own thread only
        try:
            asyncio.run_coroutine_threadsafe(fleet.run(ex, notes.append), loop).result(180)
        finally:
            for line in notes:
                note(line)

    profile = fuzz_settings(
        max_examples=FUZZ_EXAMPLES, deadline=None, database=None, print_blob=False,
        derandomize=FUZZ_SEED is None, suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink])
    fuzz = profile(given(ex=examples(list(TARGETS)))(on_loop))
    for ex in _explicit():
        fuzz = example(ex=ex)(fuzz)
    if FUZZ_SEED is not None:
        fuzz = seed(int(FUZZ_SEED))(fuzz)
    try:
        for kind in TARGETS:
            await fleet.ready(kind)
        await asyncio.to_thread(fuzz)
    finally:
        elapsed = time.monotonic() - began
        print(f"\nmessage fuzz: {count} examples in {elapsed:.0f} s "
              f"({FUZZ_EXAMPLES} asked), {len(fleet.started)} offboardings, "
              f"worker restarts {fleet.restarts}; {dict(sorted(fleet.stats.items()))}")
        for wid, run_id in fleet.started:
            with contextlib.suppress(RPCError):  # closed already
                await fleet.ops.get_workflow_handle(wid, run_id=run_id).terminate("fuzz over")
        stop(fleet.worker, timeout=30)
    assert fleet.restarts == 0
    replayer = Replayer(workflows=[ClientOffboarding], workflow_runner=workflow_runner(),
                        data_converter=data_converter(ForgivingCodec(codec)))
    failures = []
    for wid, run_id in fleet.started:
        history = await fleet.ops.get_workflow_handle(wid, run_id=run_id).fetch_history()
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            failures.append(f"{wid}: {result.replay_failure}")
    assert not failures, "histories that do not replay:\n" + "\n".join(failures)
