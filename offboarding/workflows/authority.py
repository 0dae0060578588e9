"""Who may decide, and how they proved it. Pure, like ``rules.py``, which asks it before
an action's own rule.

- An approver's decision names its channel (``via``). An update carrying a link comes
  from the approvals portal: the link must be genuine (signed by a key this offboarding's
  own mail receipts named), unexpired, and issued for this offboarding, this decision,
  the current document and the person named in ``by``.
- Some ops actions need a second, different ops person to confirm them."""

from __future__ import annotations

from datetime import datetime

from offboarding.models.gates import DATA, SETTLEMENT, TASK_FAMILY
from offboarding.models.messages import (
    ACTIONS,
    ApproveGate,
    ApproverDecision,
    ApproveSettlement,
    CompleteTask,
    DisputeSettlement,
    FixContact,
    Message,
    SkipStep,
    VerifyData,
    Via,
)
from offboarding.models.status import Proposal
from offboarding.models.text import person_key
from offboarding.security.links import BadLink, parse
from offboarding.workflows.state import OffboardingState


def family_of(name: str, msg: Message) -> str | None:
    """The link family that may carry this decision: its gate's id, or ``task``."""
    family = ACTIONS[name].family
    if family == "gate" and isinstance(msg, ApproveGate):
        return msg.gate
    return family


def document(s: OffboardingState, family: str | None, msg: Message) -> str | None:
    """What the decision is about now: the current statement, export or round of a
    playbook's gate, or the task (once its owner was asked)."""
    if family == SETTLEMENT.id and s.status.statements:
        return s.status.statements[-1].hash
    if family == DATA.id and s.status.data_packages:
        return s.status.data_packages[-1].manifest_sha256
    if family == TASK_FAMILY and isinstance(msg, CompleteTask):
        task = s.task(msg.task)
        return task.document if task else None
    current = s.gate_round(family) if family else None
    return current.document if current else None


def refusal(s: OffboardingState, name: str, msg: Message, via: Via,
            now: datetime) -> str | None:
    """Why an approver decision cannot be taken through the channel it came by, or None.
    Other actions (ops' own) are not channel-bound."""
    family = family_of(name, msg)
    if family is None or not isinstance(msg, ApproverDecision):
        return None
    if via != "link":
        if s.require_links and family != TASK_FAMILY:  # ops may tick a task
            return (f"{name} is accepted only through the approver's own link (this "
                    "offboarding requires links): the approver opens the link in their "
                    "email; ops cannot decide for them")
        return None
    assert msg.link is not None
    try:
        claims = parse(msg.link, s.link_keys, now)
    except BadLink as err:
        return f"{name} refused: {err}"
    if claims.w != s.status.workflow_id or claims.f != family:
        return f"{name} refused: the link is for another offboarding or decision"
    if s.status.run_id is not None and claims.r != s.status.run_id:
        return (f"{name} refused: the link was issued in an earlier offboarding of this "
                "client; use the link in the newest mail")
    if claims.e.casefold() != msg.by.casefold():
        return f"{name} refused: the link was issued to {claims.e}, not {msg.by}"
    sent = (msg.statement_hash if isinstance(msg, ApproveSettlement | DisputeSettlement)
            else msg.checksum if isinstance(msg, VerifyData)
            else msg.document if isinstance(msg, ApproveGate) else claims.d)
    if claims.d != document(s, family, msg) or sent != claims.d:
        return (f"{name} refused: the link is for a {family} document that has been "
                "replaced; the newest one was emailed to the approvers")
    return None


# ----- actions two ops people must agree on -------------------------------------------

def proposal_key(s: OffboardingState, msg: Message) -> str | None:
    """What identifies an action that needs a second person, or None if it does not:
    redirecting a contact (where the client's mail goes) and skipping access revocation
    (accounts left open). Anyone with namespace access can type any ``--by``, so one
    person alone must not be able to do either."""
    if not s.second_ops:
        return None
    match msg:
        case FixContact():
            return f"fix-contact {msg.role} {msg.email.lower()}"
        case SkipStep() if msg.problem.startswith("access-"):
            return f"skip-step {msg.problem}"
    return None


def same_slot(p: Proposal, key: str, by: str) -> bool:
    """``p`` is ``by``'s own proposal for what ``key`` is about: the same contact for a
    fix-contact (whatever the address), the same problem for a skip."""
    def slot(k: str) -> str:
        return k.rsplit(" ", 1)[0] if k.startswith("fix-contact ") else k

    return person_key(p.by) == person_key(by) and slot(p.key) == slot(key)


def proposal(s: OffboardingState, key: str) -> Proposal | None:
    return next((p for p in s.status.proposals if p.key == key), None)


def second_person(s: OffboardingState, msg: Message) -> str | None:
    """Why the sender cannot confirm this proposal (they made it), or None."""
    key = proposal_key(s, msg)
    proposed = proposal(s, key) if key else None
    # One person however they spell their name: "dana", "Dana", "dana" with a zero-width
    # space or a Latin alpha are one ops person.
    if proposed is not None and person_key(proposed.by) == person_key(msg.by):
        return (f"{proposed.by} proposed this already; a second ops person (a different "
                "--by) must confirm it")
    return None
