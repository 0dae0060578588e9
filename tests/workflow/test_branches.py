"""Every branch of the process on the time-skipping server, with the activities stubbed by
name (stubs.py): the dispute loop, the rejection loop, renew / extend / terminate early /
cancel from every stage that allows them (``workflows/rules.py``), reminders and the
escalation to ops, and a notice given late. Weeks of calendar in seconds of wall time.

Decisions arrive as signals with JSON payloads, as the Web UI and ``temporal workflow
signal`` send them (updates are not reliable on this server). What is asserted is what a
person sees: the status query (stage, steps, decisions) and what the workflow asked the
world to do (which mail went to whom, which accounts were revoked, which data deleted).
The same paths with real mail, SCIM, storage and the portal run end to end in
tests/integration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from offboarding.models.client_file import ClientFile
from offboarding.models.stages import Stage
from offboarding.models.status import OffboardingStatus
from tests.helpers import (
    client_file,
    eventually,
    record_history,
    status_of,
    wait_until,
    waiting_for,
)
from tests.workflow.stubs import StubWorld, manifest

END_IN_DAYS = 45
"""A contract end 45 days away: the notice (30 days before) on day 15, the end on day 45."""
REASON = "test over"

EMAIL_FOR_EACH_STAGE = ("notice", "meeting-proposal", "statement-v1", "data-ready-1-1",
                        "access-revoked", "knowledge-transfer", "feedback-survey", "farewell",
                        "check-in")


@dataclass
class Offboarding:
    """One offboarding under test, driven as ops and approvers would drive it."""

    world: StubWorld
    cf: ClientFile
    handle: WorkflowHandle[Any, Any]

    @property
    def env(self) -> WorkflowEnvironment:
        return self.world.env

    async def signal(self, name: str, **payload: Any) -> OffboardingStatus:
        """Send a decision and wait until the workflow has either taken or ignored it."""
        before = await self.status()
        seen = len(before.decisions), before.ignored_total
        await self.handle.signal(name, {"by": "ops", **payload})
        return await self.until(lambda s: (len(s.decisions), s.ignored_total) != seen,
                                f"{name} to be recorded")

    async def status(self) -> OffboardingStatus:
        return await status_of(self.handle)

    async def until(self, predicate: Callable[[OffboardingStatus], bool],
                    what: str = "") -> OffboardingStatus:
        return await wait_until(self.handle, predicate, what=what)

    async def sleep(self, days: float, hours: float = 1) -> None:
        """Let calendar time pass on the server (an hour past the day, by default)."""
        await self.env.sleep(timedelta(days=days, hours=hours))

    async def sleep_past(self, day: date) -> None:
        """Let calendar time pass until an hour into ``day``."""
        now = await self.env.get_current_time()
        await self.env.sleep(datetime.combine(day, time(1), tzinfo=UTC) - now)

    async def ended(self) -> OffboardingStatus:
        """The status once the offboarding has ended (its outcome set: the run returns
        it). Asked by query: waiting on ``result()`` lets this server skip time freely."""
        return await self.until(lambda s: s.outcome is not None, "the end")

    async def today(self) -> date:
        return (await self.env.get_current_time()).date()

    async def reach(self, stage: Stage) -> OffboardingStatus:
        """Drive a contract end (END_IN_DAYS away) to ``stage``, deciding as people would:
        the meeting held, the statement approved, the data verified, feedback given."""
        st = await self.until(lambda s: s.step("notice").state == "waiting",
                              "the notice to be scheduled")
        if stage is Stage.NOTICE:
            return st
        await self.sleep(END_IN_DAYS - 30)
        st = await self.until(waiting_for("notice-period"))
        if stage is Stage.NOTICE_PERIOD:
            return st
        await self.sleep(30)
        st = await self.until(waiting_for("meeting"))
        if stage is Stage.REVIEW_MEETING:
            return st
        await self.signal("meeting-held", notes="held")
        st = await self.until(waiting_for("settlement-approval"))
        if stage is Stage.SETTLEMENT:
            return st
        await self.signal("approve-settlement", by=self.cf.approvers.finance[0],
                          statement_hash=st.statements[-1].short_hash)
        st = await self.until(waiting_for("data-verification"))
        if stage is Stage.DATA_TRANSFER:
            return st
        await self.signal("verify-data", by=self.cf.approvers.data_verification[0],
                          checksum=manifest(1))
        st = await self.until(waiting_for("feedback"))
        if stage is Stage.FEEDBACK:
            return st
        await self.signal("record-feedback", nps=9)
        st = await self.until(lambda s: s.stage == "keep-in-touch")
        assert stage is Stage.KEEP_IN_TOUCH, stage
        return st


async def start(world: StubWorld, example: str = "contract-end", *,
                start_signal: tuple[str, dict[str, Any]] | None = None,
                **changes: Any) -> Offboarding:
    today = (await world.env.get_current_time()).date()
    changes.setdefault("end_in_days", END_IN_DAYS)
    cf = client_file(example, today=today, **changes)
    if start_signal is None:
        handle = await world.start(cf)
    else:
        name, payload = start_signal
        handle = await world.start(cf, start_signal=name,
                                   start_signal_args=[{"by": "ops", **payload}])
    return Offboarding(world, cf, handle)


def states(st: OffboardingStatus) -> dict[str, str]:
    return {s.key: s.state for s in st.steps}


def open_steps(st: OffboardingStatus) -> list[str]:
    return [s.key for s in st.steps if s.state in ("pending", "active", "waiting")]


# ----- the settlement and the data: loops until the approver agrees ----------------------

async def test_a_disputed_statement_is_issued_again_and_the_new_version_approved(
        world: StubWorld) -> None:
    o = await start(world)
    finance, billing = o.cf.approvers.finance, o.cf.contacts.billing.email
    st = await o.reach(Stage.SETTLEMENT)
    v1 = st.statements[-1]
    # The statement to billing; each finance approver their own request with a link.
    assert o.world.stubs.email("statement-v1").to == [billing]
    for n, person in enumerate(finance, 1):
        ask = o.world.stubs.email(f"statement-v1-approval-{n}")
        assert ask.to == [person] and ask.template == "settlement_approval"
        assert ask.link is not None and ask.link.document == v1.hash

    st = await o.signal("dispute-settlement", by=finance[0], statement_hash=v1.short_hash,
                        reason="the SLA credit is too low",
                        adjustments=[{"description": "Goodwill", "amount": "-250.00"}])
    st = await o.until(lambda s: len(s.statements) == 2 and bool(s.waits), "statement v2")
    v2 = st.statements[-1]
    assert v2.version == 2 and v2.adjustments == Decimal("-250.00")
    assert v2.balance == v1.balance - Decimal("250.00") and v2.hash != v1.hash
    assert st.statements[0].lines == [], "the superseded version keeps its totals only"
    assert o.world.stubs.email("statement-v2").context["statement"]["hash"] == v2.hash
    assert [d.action for d in st.decisions][-1] == "dispute-settlement"
    assert st.waits == ["settlement-approval"] and st.step("settlement").state == "waiting"

    # An approval of the version that was disputed is refused, and says why.
    st = await o.signal("approve-settlement", by=finance[1], statement_hash=v1.short_hash)
    assert "is not the current statement" in st.ignored[-1].why
    assert st.step("settlement").state == "waiting"

    st = await o.signal("approve-settlement", by=finance[1], statement_hash=v2.short_hash)
    st = await o.until(waiting_for("data-verification"))
    assert st.step("settlement").state == "done" and st.step("settlement").by == finance[1]
    assert f"statement v2 ({v2.short_hash}) approved" in st.step("settlement").detail
    confirmed = o.world.stubs.email("settlement-confirmed")
    assert confirmed.to == [billing] and confirmed.context["statement"]["version"] == 2
    assert [(d.action, d.via) for d in st.decisions] == [
        ("meeting-held", "signal"), ("dispute-settlement", "signal"),
        ("approve-settlement", "signal")]


async def test_rejected_data_is_exported_again_and_the_new_export_verified(
        world: StubWorld) -> None:
    o = await start(world)
    steward = o.cf.approvers.data_verification[0]
    st = await o.reach(Stage.DATA_TRANSFER)
    assert [e.attempt for e in o.world.stubs.exports] == [1]
    assert o.world.stubs.email("data-ready-1-1").link is not None

    st = await o.signal("reject-data", by=steward, reason="the reports folder is missing")
    st = await o.until(lambda s: len(s.data_packages) == 2 and bool(s.waits), "export 2")
    assert [e.attempt for e in o.world.stubs.exports] == [1, 2]
    ask = o.world.stubs.email("data-ready-2-1")
    assert ask.to == [steward] and ask.template == "data_ready"
    assert ask.link is not None and ask.link.document == manifest(2)
    assert st.waits == ["data-verification"]
    assert st.step("data-transfer").detail.startswith("export 2:")

    # The checksum of the rejected export does not verify the new one.
    st = await o.signal("verify-data", by=steward, checksum=manifest(1))
    assert "does not match the manifest of export 2" in st.ignored[-1].why

    await o.signal("verify-data", by=steward, checksum=manifest(2))
    st = await o.until(waiting_for("feedback"))
    assert st.step("data-transfer").state == "done" and st.step("data-transfer").by == steward
    assert st.step("data-retention").state == "waiting"
    assert [d.action for d in st.decisions][-2:] == ["reject-data", "verify-data"]


# ----- ops' course changes, from every stage that allows them ---------------------------

async def _stop_at(world: StubWorld, stage: Stage, action: str,
                   payload: dict[str, Any]) -> tuple[Offboarding, OffboardingStatus]:
    """An offboarding in ``stage`` that has just been sent ``action``. The contract
    review takes no time: a decision reaches it only with the start (signal-with-start)."""
    if stage is Stage.CONTRACT_REVIEW:
        o = await start(world, start_signal=(action, payload))
        st = await o.until(lambda s: bool(s.decisions or s.ignored), f"{action} at start")
        return o, st
    o = await start(world)
    await o.reach(stage)
    return o, await o.signal(action, **payload)


@pytest.mark.parametrize("stage", [Stage.CONTRACT_REVIEW, Stage.NOTICE, Stage.NOTICE_PERIOD],
                         ids=str)
async def test_renew_ends_the_offboarding_with_a_confirmation(
        world: StubWorld, stage: Stage) -> None:
    o, _ = await _stop_at(world, stage, "renew", {"note": "12 months more"})
    result = await o.ended()
    assert result.outcome == "renewed" and result.stage == "renewed"
    [decision] = result.decisions
    assert (decision.action, decision.by, decision.detail) == ("renew", "ops",
                                                               "contract renewed")
    confirmation = o.world.stubs.email("renewal-confirmation")
    assert confirmation.to == [o.cf.contacts.primary.email]
    assert confirmation.context["note"] == "12 months more"
    done = ["contract-review", "notice"] if stage is Stage.NOTICE_PERIOD else ["contract-review"]
    assert o.world.stubs.sent() == [k for k in done if k == "notice"] + ["renewal-confirmation"]
    assert open_steps(result) == []
    skipped = {k for k, v in states(result).items() if v == "skipped"}
    assert skipped == set(states(result)) - set(done)
    assert all(s.detail == "contract renewed" for s in result.steps
               if s.key in skipped)
    assert o.world.stubs.revocations == [] and o.world.stubs.exports == []


@pytest.mark.parametrize("stage", [Stage.CONTRACT_REVIEW, Stage.NOTICE, Stage.NOTICE_PERIOD],
                         ids=str)
async def test_extend_notice_moves_the_end_and_the_timers_with_it(
        world: StubWorld, stage: Stage) -> None:
    today = (await world.env.get_current_time()).date()
    old_end = today + timedelta(days=END_IN_DAYS)
    new_end = old_end + timedelta(days=20)
    o, st = await _stop_at(world, stage, "extend-notice", {"new_end_date": str(new_end)})
    assert st.decisions[-1].detail == f"end date moved from {old_end} to {new_end}"
    assert st.contract_end == new_end
    if stage is Stage.NOTICE_PERIOD:
        st = await o.until(lambda s: s.step("notice-period").detail == f"until {new_end}")
        await o.sleep(30)  # past the old end date
        st = await o.status()
        assert st.waits == ["notice-period"], "still in the notice period"
    else:
        new_notice = new_end - timedelta(days=30)
        st = await o.until(
            lambda s: s.step("notice").detail == f"scheduled for {new_notice}")
        await o.sleep(END_IN_DAYS - 30)  # past the old notice date
        assert (await o.status()).step("notice").state == "waiting"
        assert o.world.stubs.sent() == [], "no notice on the old date"
        await o.sleep_past(new_notice)
        st = await o.until(waiting_for("notice-period"))
        assert o.world.stubs.email("notice").context["end_date"] == str(new_end)
    await o.sleep_past(new_end)
    st = await o.until(waiting_for("meeting"), "the meeting after the new end date")
    assert st.step("notice-period").detail == f"ended {new_end}"
    await o.signal("cancel", reason=REASON)
    assert (await o.ended()).outcome == "cancelled"


@pytest.mark.parametrize("stage", [Stage.CONTRACT_REVIEW, Stage.NOTICE, Stage.NOTICE_PERIOD,
                                   Stage.REVIEW_MEETING], ids=str)
async def test_terminate_early_switches_to_the_termination_path(
        world: StubWorld, stage: Stage) -> None:
    o, st = await _stop_at(world, stage, "terminate-early", {"cause": "Breach of contract"})
    assert st.decisions[-1].detail == "early termination: Breach of contract"
    # No effective date: access ends at once, then settlement and data side by side.
    st = await o.until(lambda s: {"settlement-approval", "data-verification"} <= set(s.waits),
                       "both approvals at once")
    assert st.reason == "termination"
    assert st.contract_end == await o.today()
    assert sorted(r.system for r in o.world.stubs.revocations) == ["crm", "wiki"]
    assert st.step("access-revocation").state == "done"
    done_before = {Stage.NOTICE_PERIOD: {"notice"},
                   Stage.REVIEW_MEETING: {"notice", "notice-period"}}.get(stage, set())
    for key in ("notice", "notice-period", "review-meeting", "feedback"):
        step = st.step(key)
        if key in done_before:
            assert step.state == "done", key
        else:
            assert (step.state, step.detail) == ("skipped", "not part of a termination"), key
    calls = o.world.stubs.calls
    assert calls.index("email access-revoked") < calls.index("email statement-v1")
    assert "email meeting-proposal" not in calls[calls.index("revoke crm"):]
    await o.signal("cancel", reason=REASON)
    assert (await o.ended()).outcome == "cancelled"


async def test_terminate_early_with_a_date_waits_for_it(world: StubWorld) -> None:
    o = await start(world)
    await o.reach(Stage.NOTICE_PERIOD)
    effective = await o.today() + timedelta(days=5)
    await o.signal("terminate-early", cause="Breach", effective_date=str(effective))
    st = await o.until(lambda s: s.stage == "awaiting-termination")
    assert st.effective_date == effective and o.world.stubs.revocations == []
    await o.sleep(4, hours=0)
    assert o.world.stubs.revocations == [], "nothing is revoked before the effective date"
    await o.sleep(1)
    st = await o.until(waiting_for("settlement-approval"))
    assert st.contract_end == effective
    assert sorted(r.system for r in o.world.stubs.revocations) == ["crm", "wiki"]
    await o.signal("cancel", reason=REASON)
    await o.ended()


@pytest.mark.parametrize(("stage", "action"), [
    (Stage.REVIEW_MEETING, "renew"), (Stage.REVIEW_MEETING, "extend-notice"),
    (Stage.SETTLEMENT, "terminate-early"), (Stage.DATA_TRANSFER, "renew"),
], ids=lambda v: str(v))
async def test_a_course_change_too_late_is_refused_and_nothing_changes(
        world: StubWorld, stage: Stage, action: str) -> None:
    o = await start(world)
    later = o.cf.contract.end_date + timedelta(days=60)
    payload = {"renew": {}, "terminate-early": {"cause": "Breach"},
               "extend-notice": {"new_end_date": str(later)}}[action]
    before = await o.reach(stage)
    st = await o.signal(action, **payload)
    assert f"{action} is not possible in stage {str(stage)!r}" in st.ignored[-1].why
    assert (st.stage, st.waits, st.reason, st.decisions) == (
        before.stage, before.waits, before.reason, before.decisions)
    await o.signal("cancel", reason=REASON)
    await o.ended()


# ----- cancel, anywhere ------------------------------------------------------------------

CANCEL_IN = [Stage.CONTRACT_REVIEW, Stage.NOTICE, Stage.NOTICE_PERIOD, Stage.REVIEW_MEETING,
             Stage.SETTLEMENT, Stage.DATA_TRANSFER, Stage.FEEDBACK, Stage.KEEP_IN_TOUCH]


@pytest.mark.parametrize("stage", CANCEL_IN, ids=str)
async def test_cancel_stops_a_contract_end_in_any_stage(
        world: StubWorld, stage: Stage) -> None:
    o, _ = await _stop_at(world, stage, "cancel", {"reason": REASON})
    result = await o.ended()
    _assert_cancelled(result, was=stage)
    purges = o.world.stubs.purges
    if stage is Stage.DATA_TRANSFER:
        # The export is deleted (its link then finds nothing); our copy was not handed
        # over yet, so it stays.
        [purge] = purges
        assert purge.data_sets == []
        assert result.step("data-retention").detail == "cancelled; deleted: nothing left"
    elif stage in (Stage.FEEDBACK, Stage.KEEP_IN_TOUCH):
        # The data was handed over and its retention was counting: deleted at once.
        [purge] = purges
        assert [name for name, _ in purge.data_sets] == [d.name for d in o.cf.data_sets]
        assert result.step("data-retention").state == "done"
    else:
        assert purges == []
    assert "check-in" not in o.world.stubs.sent()
    if stage is Stage.KEEP_IN_TOUCH:
        assert result.step("farewell").state == "done"


def _assert_cancelled(st: OffboardingStatus, *, was: Stage) -> None:
    assert st.outcome == "cancelled" and st.stage == "cancelled"
    assert st.decisions[-1].action == "cancel" and st.decisions[-1].by == "ops"
    assert open_steps(st) == [], states(st)
    cancelled = [s for s in st.steps if s.state == "cancelled"]
    assert cancelled, f"nothing left to cancel in {was}?"
    assert all(s.detail == f"cancelled by ops: {REASON}" for s in cancelled)


async def test_cancel_while_awaiting_a_termination_revokes_nothing(world: StubWorld) -> None:
    today = (await world.env.get_current_time()).date()
    o = await start(world, "termination", end_in_days=None, termination={
        "cause": "Breach", "effective_date": str(today + timedelta(days=10))})
    await o.until(lambda s: s.stage == "awaiting-termination")
    await o.signal("cancel", reason=REASON)
    result = await o.ended()
    _assert_cancelled(result, was=Stage.AWAITING_TERMINATION)
    assert o.world.stubs.calls == [], "no account revoked, no mail sent"


async def test_cancel_while_ops_must_fix_a_refused_token(world: StubWorld) -> None:
    o = await start(world, "termination", end_in_days=None)
    o.world.stubs.refuse_revoke.add("crm")
    st = await o.until(waiting_for("ops-action"), "the refused token")
    assert [p.key for p in st.problems] == ["access-crm"]
    await o.signal("cancel", reason=REASON)
    result = await o.ended()
    _assert_cancelled(result, was=Stage.ACCESS_REVOCATION)
    assert result.step("access-revocation").state == "cancelled"
    assert "access-revoked" not in o.world.stubs.sent()


async def test_cancel_during_the_archive_ends_before_the_farewell(world: StubWorld) -> None:
    """The archive activity is held while the cancel arrives: what was under way
    finishes, and the offboarding stops before the farewell (which used to go out to the
    client after the cancel) and the check-in."""
    gate = asyncio.Event()
    world.stubs.held["archive_offboarding"] = gate
    o = await start(world)
    await o.reach(Stage.FEEDBACK)
    await o.signal("record-feedback", nps=9)
    await eventually(lambda: _calls(world), lambda c: "archive" in c, what="the archive")
    st = await o.signal("cancel", reason=REASON)
    assert st.stage == "archive" and st.decisions[-1].action == "cancel"
    gate.set()
    result = await o.ended()
    await record_history(o.handle, "cancel-during-archive")
    _assert_cancelled(result, was=Stage.ARCHIVE)
    assert result.step("archive").state == "done"
    assert result.step("farewell").state == "cancelled"
    assert result.step("keep-in-touch").state == "cancelled"
    assert "farewell" not in o.world.stubs.sent() and "check-in" not in o.world.stubs.sent()


async def _calls(world: StubWorld) -> list[str]:
    return list(world.stubs.calls)


# ----- people who do not act: reminders, then ops --------------------------------------

@pytest.mark.parametrize("wait", ["settlement-approval", "data-verification"])
async def test_an_approver_who_does_not_act_is_reminded_then_ops_are_alerted(
        world: StubWorld, wait: str) -> None:
    o = await start(world)
    stage = Stage.SETTLEMENT if wait == "settlement-approval" else Stage.DATA_TRANSFER
    st = await o.reach(stage)
    people = (o.cf.approvers.finance if stage is Stage.SETTLEMENT
              else o.cf.approvers.data_verification)
    family = "settlement" if stage is Stage.SETTLEMENT else "data"
    assert st.overdue_at is not None and not st.overdue

    def reminders() -> list[str]:
        return o.world.stubs.sent(f"{wait}-reminder-")

    await o.sleep(2, hours=23)
    assert reminders() == [], "no reminder before 3 days"
    await o.sleep(0, hours=2)
    await eventually(_reminders(o, wait), lambda r: len(r) == len(people),
                     what="the first reminders")
    for n, person in enumerate(people, 1):
        reminder = o.world.stubs.email(f"{wait}-reminder-1-{n}")
        assert reminder.to == [person] and reminder.template == "reminder"
        assert reminder.link is not None and reminder.link.family == family
    assert not (await o.status()).overdue

    # Reminded on days 3, 6 and 9; overdue on day 10: ops are alerted once.
    await o.sleep(7)
    st = await o.until(lambda s: s.overdue, "overdue")
    alert = o.world.stubs.email(f"{wait}-overdue")
    assert alert.to_ops and alert.template == "ops_alert" and alert.to == []
    assert alert.context["what"] == wait.replace("-", " ")
    assert alert.context["reminders"] == 3
    assert len(reminders()) == 3 * len(people)
    assert st.waits == [wait] and st.waiting_since is not None
    assert st.overdue_at == st.waiting_since + timedelta(days=10)

    # Still reminded while overdue, never alerted twice; the decision ends it all.
    await o.sleep(3)
    await eventually(_reminders(o, wait), lambda r: len(r) == 4 * len(people),
                     what="the fourth reminders")
    assert o.world.stubs.sent(f"{wait}-overdue") == [f"{wait}-overdue"]
    if stage is Stage.SETTLEMENT:
        await o.signal("approve-settlement", by=people[0],
                       statement_hash=st.statements[-1].short_hash)
    else:
        await o.signal("verify-data", by=people[0], checksum=manifest(1))
    st = await o.until(lambda s: wait not in s.waits)
    assert not st.overdue and st.overdue_at is None
    await o.signal("cancel", reason=REASON)
    await o.ended()


def _reminders(o: Offboarding, wait: str) -> Callable[[], Any]:
    async def look() -> list[str]:
        return o.world.stubs.sent(f"{wait}-reminder-")
    return look


async def test_nobody_at_the_meeting_and_no_feedback_are_skipped_at_their_deadlines(
        world: StubWorld) -> None:
    o = await start(world)
    await o.reach(Stage.REVIEW_MEETING)
    assert o.world.stubs.email("meeting-proposal").to == [o.cf.contacts.primary.email]
    await o.sleep(6, hours=0)  # the meeting was proposed at midnight, 7 days to go
    assert (await o.status()).waits == ["meeting"]
    await o.sleep(1)
    st = await o.until(waiting_for("settlement-approval"))
    assert (st.step("review-meeting").state, st.step("review-meeting").detail) == (
        "skipped", "no meeting by the deadline")
    await o.signal("approve-settlement", by=o.cf.approvers.finance[0],
                   statement_hash=st.statements[-1].short_hash)
    await o.until(waiting_for("data-verification"))
    await o.signal("verify-data", by=o.cf.approvers.data_verification[0],
                   checksum=manifest(1))
    await o.until(waiting_for("feedback"))
    await o.sleep(14)
    st = await o.until(lambda s: s.stage == "keep-in-touch")
    assert (st.step("feedback").state, st.step("feedback").detail) == (
        "skipped", "no feedback by the deadline")
    await o.signal("cancel", reason=REASON)
    await o.ended()


# ----- a notice given late ----------------------------------------------------------------

@pytest.mark.parametrize(("end_in_days", "short"), [(10, True), (30, False)])
async def test_a_contract_ending_sooner_than_its_notice_days_gets_notice_at_once(
        world: StubWorld, end_in_days: int, short: bool) -> None:
    o = await start(world, end_in_days=end_in_days)
    st = await o.until(waiting_for("notice-period"), "the notice sent at once")
    assert st.short_notice is short
    notice = o.world.stubs.email("notice")
    assert notice.to == [o.cf.contacts.primary.email]
    assert notice.cc == [o.cf.contacts.billing.email]
    assert notice.context["short_notice"] is short
    end = await o.today() + timedelta(days=end_in_days)
    assert st.step("notice").detail == ("short notice: " if short else "") + \
        f"sent for end date {end}"
    # The notice period still runs to the contract's end, not 30 days.
    await o.sleep(end_in_days - 1)
    assert (await o.status()).waits == ["notice-period"]
    await o.sleep(1)
    await o.until(waiting_for("meeting"))
    await o.signal("cancel", reason=REASON)
    await o.ended()


# ----- the whole way, every stage's mail in order ----------------------------------------

async def test_a_contract_end_completes_with_each_stage_mail_in_order(
        world: StubWorld) -> None:
    o = await start(world)
    await o.reach(Stage.KEEP_IN_TOUCH)
    await o.sleep(o.cf.follow_up_days)
    result = await o.ended()
    assert result.outcome == "completed"
    assert set(states(result).values()) == {"done"}
    keys = o.world.stubs.sent()
    order = [keys.index(k) for k in EMAIL_FOR_EACH_STAGE]
    assert order == sorted(order), keys
    assert [p.data_sets != [] for p in o.world.stubs.purges] == [True], "retention, once"
