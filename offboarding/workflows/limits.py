"""What a flood of messages may grow, and how far ahead a message may plan. Pure, like
``rules.py``, which asks it before an action's own rule; each answer is why a message is
refused, or None. The sizes themselves are in ``state.py``."""

from __future__ import annotations

from datetime import datetime

from offboarding.models.admission import HORIZON_YEARS
from offboarding.models.admission import horizon as horizon_from
from offboarding.models.messages import ACTIONS, ExtendNotice, Message, TerminateEarly
from offboarding.workflows import authority
from offboarding.workflows.state import MAX_DECISIONS_PER_ACTION, MAX_PROPOSALS, OffboardingState


def ops_decisions(s: OffboardingState, name: str) -> str | None:
    """Decisions are kept whole for the audit, so the ones a message can repeat (a contact
    changed back and forth, the end date moved again, a step retried) are bounded, each
    kind on its own: a first, shared budget let one name's flood of one kind block every
    other ops action. Cancelling is always possible, and approvers' decisions are bounded
    by the statement versions and exports they decide on."""
    if name == "cancel" or ACTIONS[name].family is not None:
        return None
    made = sum(1 for d in s.status.decisions if d.action.removesuffix(" (proposed)") == name)
    if made < MAX_DECISIONS_PER_ACTION:
        return None
    return (f"{name} refused: this offboarding has recorded {made} {name} decisions, the "
            "most it keeps of one kind; do the rest outside, or cancel and start again")


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
