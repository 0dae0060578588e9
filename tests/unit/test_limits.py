"""What a flood of messages can grow, without a server (issue 20, rows 3 and 5).

6,000 ``fix-contact`` signals from one name used to make 6,000 proposals and decisions:
the status passed Temporal's 2 MB payload limit, ``status`` failed and the server
terminated the offboarding at its archive step. Every list a message grows is bounded, and
the status stays under ``STATUS_BUDGET`` whatever arrives: generated floods of every kind,
and the worst case filled by hand. tests/integration/test_flood.py floods a real one."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offboarding.models.messages import (
    Adjustment,
    Cancel,
    CompleteTask,
    ExtendNotice,
    FixContact,
    Message,
    RejectData,
    RetryStep,
    SkipStep,
    TerminateEarly,
)
from offboarding.models.playbook import (
    MAX_DECIDERS,
    MAX_GATES,
    MAX_ROUNDS,
    MAX_TASKS,
    GateSpec,
    Playbook,
    TaskSpec,
)
from offboarding.models.records import DataPackage
from offboarding.models.settlement import compute_statement
from offboarding.models.stages import Wait
from offboarding.models.status import STATUS_BUDGET
from offboarding.workflows.rules import Rejected, apply, validate
from offboarding.workflows.state import (
    MAX_DECISIONS_PER_ACTION,
    MAX_EXPORTS,
    MAX_IGNORED,
    MAX_PROPOSALS,
    MAX_STATEMENT_VERSIONS,
    OffboardingState,
)
from tests.helpers import client_file

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
LONG = "x" * 5000  # the longest free text a message may carry


def _state(second_ops: bool = True, example: str = "contract-end") -> OffboardingState:
    return OffboardingState("offboarding-x", client_file(example), second_ops=second_ops)


def _send(s: OffboardingState, name: str, msg: Message) -> bool:
    """As the workflow takes an update: validated, then applied; False when refused."""
    try:
        validate(s, name, msg, "cli", NOW)
    except Rejected:
        return False
    apply(s, name, msg, "cli", NOW)
    return True


def _size(s: OffboardingState) -> int:
    return len(s.status.model_dump_json().encode())


def test_one_name_proposing_ever_new_addresses_keeps_one_proposal() -> None:
    """Row 3 as reported: one name, a new address each time. Each new proposal replaces
    the same person's earlier one, in the proposals and in the decisions alike."""
    s = _state()
    accepted = sum(_send(s, "fix-contact", FixContact(by="dana", role="billing",
                                                      email=f"ap{n}@evil.example"))
                   for n in range(500))
    assert accepted == 500
    assert len(s.status.proposals) == 1
    assert s.status.proposals[0].key == "fix-contact billing ap499@evil.example"
    assert [d.action for d in s.status.decisions] == ["fix-contact (proposed)"]


def test_one_kind_of_decision_used_up_blocks_no_other() -> None:
    """A first cap on all ops decisions together let one name's flood of fix-contact block
    every other ops action (retry-step, complete-task, meeting-held...): a message stopping
    an offboarding. Each kind has its own budget now."""
    s = _state(second_ops=False)
    billing = s.client.contacts.billing.email
    flips = [FixContact(by="dana", role="billing", email=a)
             for _ in range(MAX_DECISIONS_PER_ACTION) for a in ("x@evil.example", billing)]
    accepted = sum(_send(s, "fix-contact", f) for f in flips)
    assert accepted == MAX_DECISIONS_PER_ACTION, "then that one kind is refused"
    with pytest.raises(Rejected, match="fix-contact decisions, the most"):
        validate(s, "fix-contact", flips[accepted], "cli", NOW)
    s.raise_problem("access-crm", "access-revocation", "401", NOW)
    assert _send(s, "retry-step", RetryStep(by="ops", problem="access-crm"))
    assert _send(s, "complete-task", CompleteTask(by="ops", task="terms-met"))
    assert _send(s, "extend-notice", ExtendNotice(
        by="ops", new_end_date=s.status.contract_end + timedelta(days=5)))


def test_open_proposals_from_many_names_are_capped() -> None:
    s = _state()
    for n in range(MAX_PROPOSALS + 5):
        _send(s, "fix-contact", FixContact(by=f"ops{n}", role="billing",
                                           email=f"ap{n}@evil.example"))
    assert len(s.status.proposals) == MAX_PROPOSALS
    with pytest.raises(Rejected, match="proposals wait for a second person already"):
        validate(s, "fix-contact", FixContact(by="new", role="primary", email="p@x.example"),
                 "cli", NOW)
    confirm = FixContact(by="ops-lead", role="billing", email="ap0@evil.example")
    assert _send(s, "fix-contact", confirm), "confirming an open proposal is always possible"
    assert len(s.status.proposals) == MAX_PROPOSALS - 1


def test_exports_end_at_the_last_one() -> None:
    s = _state()
    steward = s.client.approvers.data_verification[0]
    s.start_wait(Wait.DATA_VERIFICATION, NOW, None)
    for attempt in range(1, MAX_EXPORTS + 1):
        s.status.data_packages.append(DataPackage(attempt=attempt, location="x",
                                                  manifest_sha256="ab" * 32, files=1, bytes=1))
    with pytest.raises(Rejected, match=f"export {MAX_EXPORTS} is the last one"):
        validate(s, "reject-data", RejectData(by=steward, reason="again"), "cli", NOW)


@pytest.mark.parametrize(("name", "msg", "field"), [
    ("extend-notice", ExtendNotice(by="ops", new_end_date=date(9999, 12, 31)), "new_end_date"),
    ("terminate-early", TerminateEarly(by="ops", cause="x", effective_date=date(9999, 12, 31)),
     "effective_date"),
])
def test_far_future_dates_are_refused_with_the_value(name: str, msg: Message, field: str) -> None:
    """Row 5: accepted, the first could not be moved back, the second left only cancel."""
    s = _state()
    with pytest.raises(Rejected, match=f"{field} 9999-12-31 is more than 10 years from today"):
        validate(s, name, msg, "cli", NOW)
    nearer = msg.model_copy(update={field: (NOW + timedelta(days=400)).date()})
    validate(s, name, nearer, "cli", NOW)


OPS_MESSAGES = st.one_of(
    st.builds(lambda by, role, n: ("fix-contact", FixContact(
        by=by, role=role, email=f"a{n}@evil.example")),
        st.sampled_from(["dana", "al", "DANA", "ops-lead"] + [f"p{n}" for n in range(30)]),
        st.sampled_from(["primary", "billing", "data_steward"]), st.integers(0, 10_000)),
    st.builds(lambda days: ("extend-notice", ExtendNotice(
        by="ops", new_end_date=(NOW + timedelta(days=days)).date())), st.integers(1, 3000)),
    st.builds(lambda key, note: ("complete-task", CompleteTask(by="ops", task=key, note=note)),
              st.sampled_from(["terms-met", "handover-session-held", "no-such-task"]),
              st.sampled_from(["", LONG])),
    st.builds(lambda by, reason: ("skip-step", SkipStep(by=by, problem="access-crm",
                                                        reason=reason)),
              st.sampled_from(["al", "bo"]), st.sampled_from(["r", LONG])),
    st.just(("cancel", Cancel(by="ops", reason=LONG))),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.lists(OPS_MESSAGES, min_size=1, max_size=400))
def test_any_flood_of_ops_messages_stays_within_the_limits(
    second_ops: bool, flood: list[tuple[str, Message]],
) -> None:
    s = _state(second_ops)
    s.raise_problem("access-crm", "access-revocation", "401 " + LONG, NOW)
    for name, msg in flood:
        _send(s, name, msg)
    kinds = Counter(d.action.removesuffix(" (proposed)") for d in s.status.decisions)
    assert max(kinds.values(), default=0) <= MAX_DECISIONS_PER_ACTION
    assert len(s.status.proposals) <= MAX_PROPOSALS
    assert all(len(d.detail) <= 300 for d in s.status.decisions)
    assert _size(s) < STATUS_BUDGET


def test_the_worst_case_status_is_under_the_budget() -> None:
    """Every list filled to its limit with the longest text each may hold."""
    s = _state(second_ops=True)
    _fill_to_the_limits(s)
    assert len(s.status.proposals) == MAX_PROPOSALS and len(s.status.ignored) == MAX_IGNORED
    assert _size(s) < STATUS_BUDGET, f"{_size(s)} bytes"


def _fill_to_the_limits(s: OffboardingState) -> None:
    cf = s.client
    worst = [Adjustment(description="d" * 200, amount=Decimal("-0.01"))] * 50
    for version in range(1, MAX_STATEMENT_VERSIONS + 1):
        s.add_statement(compute_statement(cf.account, version=version,
                                          issued=date(2026, 11, 1), adjustments=worst))
        s.decide(NOW, "dispute-settlement", "f" * 200, LONG, via="link", about="ab" * 32)
    for attempt in range(1, MAX_EXPORTS + 1):
        s.status.data_packages.append(DataPackage(
            attempt=attempt, location="l" * 1000, manifest_sha256="ab" * 32, files=1,
            bytes=1, skipped=[]))
        s.decide(NOW, "reject-data", "s" * 200, LONG, via="link", about="ab" * 32)
    for _ in range(MAX_IGNORED * 2):
        s.ignore(NOW, "n" * 1000, "b" * 1000, LONG)
    for task in s.status.tasks:
        _send(s, "complete-task", CompleteTask(by="o" * 200, task=task.key, note=LONG))
    for n in range(MAX_PROPOSALS):
        _send(s, "fix-contact", FixContact(by=f"{n}" + "o" * 190, role="billing",
                                           email=f"{n}{'a' * 60}@evil.example"))
    n = 0
    while _send(s, "extend-notice", ExtendNotice(
            by="o" * 200, new_end_date=(NOW + timedelta(days=60 + n)).date())):
        n += 1


def test_the_worst_case_status_with_a_playbook_is_under_the_budget() -> None:
    """The worst case above, plus a playbook at its limits: every gate asked in every
    round it may have, and every task completed, with the longest text each may hold."""
    deciders = [f"{n}{'d' * 60}@example.com" for n in range(MAX_DECIDERS)]
    playbook = Playbook(
        name="worst", sha256="ab" * 32,
        gates=[GateSpec(id=f"gate-{n}", title="t" * 200, after="settlement",
                        deciders=deciders, question="q" * 500, approve_label="a" * 40,
                        reject_label="r" * 40) for n in range(MAX_GATES)],
        tasks=[TaskSpec(key=f"task-{n}", title="t" * 200, owner=deciders[0],
                        after="settlement", instructions=LONG) for n in range(MAX_TASKS)])
    s = OffboardingState("offboarding-x", client_file(), playbook=playbook)
    _fill_to_the_limits(s)
    for gate in playbook.gates:
        for _ in range(MAX_ROUNDS):
            asked = s.ask_gate(s.gates[gate.id], "ab" * 32, NOW)
            s.decide(NOW, "reject-gate", deciders[0], LONG, via="link", about=asked.document)
    for task in playbook.tasks:
        _send(s, "complete-task", CompleteTask(by="o" * 200, task=task.key, note=LONG))
    assert _size(s) < STATUS_BUDGET, f"{_size(s)} bytes"
