"""What a flood of messages may grow, and how far ahead a message may plan. Pure, like
``rules.py``, which asks it before an action's own rule; each answer is why a message is
refused, or None. The sizes themselves are in ``state.py``."""

from __future__ import annotations

from datetime import datetime

from offboarding.models.admission import HORIZON_YEARS
from offboarding.models.admission import horizon as horizon_from
from offboarding.models.messages import ACTIONS, ExtendNotice, Message, TerminateEarly
from offboarding.workflows import authority
from offboarding.workflows.state import MAX_OPS_DECISIONS, MAX_PROPOSALS, OffboardingState


def ops_decisions(s: OffboardingState, name: str) -> str | None:
    """Ops' decisions are the one list that every accepted message grows (fix-contact to
    ever new addresses, proposals under ever new names, extensions): kept whole for the
    audit, and so bounded. Cancelling is always possible, and approvers' decisions are
    bounded by the statement versions and exports they decide on."""
    if name == "cancel" or ACTIONS[name].family is not None:
        return None
    ops = sum(1 for d in s.status.decisions if not _by_approver(d.action))
    if ops < MAX_OPS_DECISIONS:
        return None
    return (f"{name} refused: this offboarding has recorded {ops} ops decisions, the most "
            "one keeps; finish it outside, or cancel it and start again")


def _by_approver(action: str) -> bool:
    known = ACTIONS.get(action.removesuffix(" (proposed)"))
    return known is not None and known.family is not None


def proposals(s: OffboardingState, msg: Message) -> str | None:
    """A new proposal when MAX_PROPOSALS wait already (a person's new proposal for the
    same thing replaces their own, so it always fits; confirming one always fits)."""
    key = authority.proposal_key(s, msg)
    if key is None or authority.proposal(s, key) is not None:
        return None
    others = [p for p in s.status.proposals if not authority.same_slot(p, key, msg.by)]
    if len(others) < MAX_PROPOSALS:
        return None
    return (f"{len(others)} proposals wait for a second person already, the most an "
            "offboarding keeps open; confirm or withdraw some first")


def horizon(msg: Message, now: datetime) -> str | None:
    """The same horizon as a client file's dates at start: 9999-12-31 is a typo, not a
    plan, and a date there cannot be moved back (only later) or waited out."""
    field, when = (("new_end_date", msg.new_end_date) if isinstance(msg, ExtendNotice) else
                   ("effective_date", msg.effective_date) if isinstance(msg, TerminateEarly)
                   else ("", None))
    limit = horizon_from(now.date())
    if when is None or when <= limit:
        return None
    return f"{field} {when} is more than {HORIZON_YEARS} years from today (after {limit})"
