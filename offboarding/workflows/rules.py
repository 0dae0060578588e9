"""When each human action is accepted and what it does: one ``Rule`` per entry of
``models.messages.ACTIONS``. Pure (the time is passed in), so every action is tested against
every stage without a server (tests/unit/test_actions.py). ``validate`` only reads: a
refused update leaves no trace in history, a refused signal is recorded as ignored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from offboarding.models.messages import (
    Cancel,
    ExtendNotice,
    FixContact,
    MeetingHeld,
    Message,
    RecordFeedback,
    Renew,
    RetryStep,
    SkipStep,
    TerminateEarly,
    Via,
)
from offboarding.models.stages import Stage, Wait
from offboarding.models.status import Feedback, Problem, Proposal
from offboarding.workflows import authority, gate_rules, limits
from offboarding.workflows.rejection import Rejected as Rejected
from offboarding.workflows.rejection import waiting
from offboarding.workflows.state import (
    OffboardingState,
)

M = TypeVar("M", bound=Message)

BEFORE_SETTLEMENT = (Stage.CONTRACT_REVIEW, Stage.NOTICE, Stage.NOTICE_PERIOD,
                     Stage.REVIEW_MEETING)
BEFORE_NOTICE_ENDS = (Stage.CONTRACT_REVIEW, Stage.NOTICE, Stage.NOTICE_PERIOD)


@dataclass(frozen=True)
class Rule(Generic[M]):
    check: Callable[[OffboardingState, M], None]
    """Raises Rejected when the message cannot be accepted now. Reads only."""
    effect: Callable[[OffboardingState, M, datetime], str]
    """Records the accepted message; returns what happened, for the sender."""


def validate(s: OffboardingState, name: str, msg: Message, via: Via, now: datetime) -> None:
    if s.status.outcome is not None:
        raise Rejected(f"the offboarding has already ended ({s.status.outcome})")
    if why := authority.refusal(s, name, msg, via, now):
        raise Rejected(why)
    if why := limits.ops_decisions(s, name) or limits.horizon(msg, now):
        raise Rejected(why)
    RULES[name].check(s, msg)


def apply(s: OffboardingState, name: str, msg: Message, via: Via, now: datetime) -> str:
    """Record an accepted message. An action that needs a second person is only proposed
    until a different one sends it too."""
    key = authority.proposal_key(s, msg)
    proposed = authority.proposal(s, key) if key else None
    if key is not None and proposed is None:
        detail = (f"{name} proposed by {msg.by}; a second ops person must confirm it by "
                  "sending the same command with their own --by")
        # A person's new proposal for the same thing (another address for the same
        # contact) replaces their earlier one, in the proposals and in the decisions: it was
        # never applied, and one name's flood must not grow either list.
        for old in [p for p in s.status.proposals if authority.same_slot(p, key, msg.by)]:
            s.status.proposals.remove(old)
            s.forget_proposal(old)
        s.status.proposals.append(Proposal(key=key, action=name, by=msg.by, at=now,
                                           detail=detail))
        s.decide(now, f"{name} (proposed)", msg.by, detail, via=via)
        return detail
    if proposed is not None:
        s.status.proposals.remove(proposed)
    about = authority.document(s, authority.family_of(name, msg), msg)
    detail = RULES[name].effect(s, msg, now)
    s.decide(now, name, msg.by, detail, proposed.by if proposed else None, via, about)
    return detail


# ----- shared conditions --------------------------------------------------------------

def _in_stage(s: OffboardingState, name: str, *stages: Stage) -> None:
    if s.status.stage not in stages:
        raise Rejected(f"{name} is not possible in stage {str(s.status.stage)!r}; "
                       f"it is accepted in: {', '.join(stages)}")


def _contract_end_path(s: OffboardingState, why: str) -> None:
    if s.status.reason != "contract_end":
        raise Rejected(why)


def _open_problem(s: OffboardingState, key: str) -> Problem:
    problem = s.problem(key)
    if problem is None:
        keys = ", ".join(p.key for p in s.open_problems()) or "none"
        raise Rejected(f"no open problem {key!r}; open problems: {keys}")
    return problem


def _check_meeting(s: OffboardingState, msg: MeetingHeld) -> None:
    _in_stage(s, "meeting-held", Stage.NOTICE_PERIOD, Stage.REVIEW_MEETING)
    _contract_end_path(s, "a terminated offboarding has no review meeting")
    if s.pending.meeting:
        raise Rejected("the meeting was already recorded")


def _meeting(s: OffboardingState, msg: MeetingHeld, now: datetime) -> str:
    s.pending.meeting = msg
    s.status.meeting_notes = msg.notes
    return "review meeting held"


def _check_feedback(s: OffboardingState, msg: RecordFeedback) -> None:
    waiting(s, "record-feedback", Wait.FEEDBACK)
    if msg.nps is None and msg.csat is None and not msg.comment and not msg.internal_note:
        raise Rejected("record-feedback needs at least one of nps, csat, comment, "
                       "internal_note")


def _feedback(s: OffboardingState, msg: RecordFeedback, now: datetime) -> str:
    s.pending.feedback = msg
    s.status.feedback = Feedback(nps=msg.nps, csat=msg.csat, comment=msg.comment,
                                 internal_note=msg.internal_note, by=msg.by)
    return f"feedback recorded (NPS {msg.nps}, CSAT {msg.csat})"


# ----- the course of the offboarding --------------------------------------------------

def _check_renew(s: OffboardingState, msg: Renew) -> None:
    _in_stage(s, "renew", *BEFORE_NOTICE_ENDS)
    _contract_end_path(s, "a terminated contract cannot be renewed from here")


def _renew(s: OffboardingState, msg: Renew, now: datetime) -> str:
    s.pending.renew = msg
    return "contract renewed"


def _check_terminate(s: OffboardingState, msg: TerminateEarly) -> None:
    _in_stage(s, "terminate-early", *BEFORE_SETTLEMENT)
    if s.status.reason != "contract_end" or s.pending.terminate:
        raise Rejected("the offboarding is already on the termination path")


def _terminate(s: OffboardingState, msg: TerminateEarly, now: datetime) -> str:
    s.pending.terminate = msg
    return f"early termination: {msg.cause}"


def _check_extend(s: OffboardingState, msg: ExtendNotice) -> None:
    _in_stage(s, "extend-notice", *BEFORE_NOTICE_ENDS)
    if msg.new_end_date <= s.status.contract_end:
        raise Rejected(f"new_end_date {msg.new_end_date} must be after the current end "
                       f"date {s.status.contract_end}")


def _extend(s: OffboardingState, msg: ExtendNotice, now: datetime) -> str:
    s.pending.extend = msg
    detail = f"end date moved from {s.status.contract_end} to {msg.new_end_date}"
    s.status.contract_end = msg.new_end_date
    return detail


def _check_cancel(s: OffboardingState, msg: Cancel) -> None:
    if s.pending.cancel:
        raise Rejected("a cancellation is already under way")


def _cancel(s: OffboardingState, msg: Cancel, now: datetime) -> str:
    s.pending.cancel = msg
    return f"cancel requested: {msg.reason}"


def _check_fix_contact(s: OffboardingState, msg: FixContact) -> None:
    current = s.address(getattr(s.client.contacts, msg.role).email)
    if current.lower() == msg.email.lower():
        raise Rejected(f"{msg.role} already uses {msg.email}")
    _second_person(s, msg)


def _second_person(s: OffboardingState, msg: Message) -> None:
    if why := authority.second_person(s, msg) or limits.proposals(s, msg):
        raise Rejected(why)


def _fix_contact(s: OffboardingState, msg: FixContact, now: datetime) -> str:
    old = s.address(getattr(s.client.contacts, msg.role).email)
    s.status.contacts_fixed[old] = msg.email
    detail = f"{msg.role} contact changed from {old} to {msg.email}"
    # Mail that bounced off the old address is sent again to the new one.
    for problem in s.open_problems():
        if problem.key.startswith("mail-") and old in problem.why:
            s.resolve(problem, "retry", msg.by, now, detail)
    return detail


def _check_retry(s: OffboardingState, msg: RetryStep) -> None:
    _open_problem(s, msg.problem)


def _retry(s: OffboardingState, msg: RetryStep, now: datetime) -> str:
    s.resolve(_open_problem(s, msg.problem), "retry", msg.by, now, "")
    return f"retrying {msg.problem}"


def _check_skip(s: OffboardingState, msg: SkipStep) -> None:
    _open_problem(s, msg.problem)
    _second_person(s, msg)


def _skip(s: OffboardingState, msg: SkipStep, now: datetime) -> str:
    s.resolve(_open_problem(s, msg.problem), "skip", msg.by, now, msg.reason)
    return f"skipping {msg.problem}: {msg.reason}"


RULES: dict[str, Rule[Any]] = {
    **{name: Rule(check, effect) for name, (check, effect) in gate_rules.RULES.items()},
    "meeting-held": Rule(_check_meeting, _meeting),
    "record-feedback": Rule(_check_feedback, _feedback),
    "renew": Rule(_check_renew, _renew),
    "terminate-early": Rule(_check_terminate, _terminate),
    "extend-notice": Rule(_check_extend, _extend),
    "cancel": Rule(_check_cancel, _cancel),
    "fix-contact": Rule(_check_fix_contact, _fix_contact),
    "retry-step": Rule(_check_retry, _retry),
    "skip-step": Rule(_check_skip, _skip),
}
