"""The human decisions that steer an offboarding.

Each is accepted two ways with the same payload: as a **signal** (``temporal workflow
signal`` or the Web UI, a JSON object) and as an **update** (the CLI, which learns at once
whether it was accepted). The message name is the same for both, e.g. ``approve-settlement``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, ValidationError

from offboarding.models.client_file import Line, Text
from offboarding.models.money import Money
from offboarding.models.stages import Stage
from offboarding.models.text import person_name

MAX_ADJUSTMENTS = 50
"""Per dispute; with at most MAX_STATEMENT_VERSIONS versions a statement stays small."""


Person = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(person_name)]
"""Who acts, normalised so that one person has one spelling (models/text.py): compare two
with ``person_key``."""


class Message(BaseModel):
    # Attribute docstrings become the CLI's help for each flag.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    by: Person
    """Who acts: an email for approvers, a name or email for ops."""

    @property
    def via(self) -> Via:
        """How it arrived, as an update: through the CLI or any Temporal client. (A signal's
        handler records ``signal`` itself.)"""
        return "cli"


Family = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")]
"""Which decision a link is for: a gate's id (``settlement``, ``data``, or a playbook's
own gate, ``models/gates.py``) or ``task``."""
Via = Literal["cli", "link", "signal"]
"""How a decision arrived: an update without a link (the CLI, or any Temporal client),
an update carrying the approver's verified link (the approvals portal), or a signal."""
LINK_FIELD = "link"
"""Set by the portal only; the CLI offers no flag for it."""


class ApproverDecision(Message):
    """A decision that belongs to an approver, who may make it through their emailed link."""

    link: str | None = Field(default=None, max_length=1024)
    """The approver's signed link token (the portal puts it here; the workflow checks it)."""

    @property
    def via(self) -> Via:
        """An update carrying a link came from the portal; the workflow checks the link."""
        return "link" if self.link else "cli"


class ApproveSettlement(ApproverDecision):
    statement_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{12,64}$")]
    """The statement version approved (its SHA-256, or a prefix of at least 12 digits)."""


class Adjustment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: Line
    amount: Money
    """Positive adds to what the client owes; negative reduces it."""


class DisputeSettlement(ApproverDecision):
    statement_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{12,64}$")]
    """The statement version disputed (its SHA-256, or a prefix of at least 12 digits)."""
    reason: Text = Field(min_length=1)
    adjustments: list[Adjustment] = Field(default=[], max_length=MAX_ADJUSTMENTS)


class VerifyData(ApproverDecision):
    checksum: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    """The SHA-256 of the manifest the steward computed on their side."""


class RejectData(ApproverDecision):
    reason: Text = Field(min_length=1)


class ApproveGate(ApproverDecision):
    """A decider approves a playbook's gate (``models/gates.py``)."""

    gate: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")]
    """The gate's id, as the playbook names it."""
    document: Annotated[str, Field(pattern=r"^[0-9a-f]{12,64}$")]
    """What is decided on: the document of the gate's current round, as ``status`` shows
    it (or a prefix of at least 12 digits)."""


class RejectGate(ApproveGate):
    reason: Text = Field(min_length=1)


class CompleteTask(ApproverDecision):
    """Ops tick a task from the CLI; a playbook task's owner does it through their link."""

    task: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]
    note: Text = ""


class MeetingHeld(Message):
    notes: Text = ""


class RecordFeedback(Message):
    nps: int | None = Field(default=None, ge=0, le=10)
    csat: int | None = Field(default=None, ge=1, le=5)
    comment: Text = ""
    internal_note: Text = ""


class Renew(Message):
    note: Text = ""


class TerminateEarly(Message):
    cause: Line
    effective_date: date | None = None


class ExtendNotice(Message):
    new_end_date: date


class Cancel(Message):
    reason: Text = Field(min_length=1)


class FixContact(Message):
    """A contact's address was wrong: use this one from now on, and resend what bounced."""

    role: Literal["primary", "data_steward", "billing"]
    email: EmailStr


class RetryStep(Message):
    """The cause of a problem was fixed outside (a token, a disk): try the step again."""

    problem: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]
    """The problem's key, as ``status`` shows it."""


class SkipStep(Message):
    """Give up on a problem's step, recording why."""

    problem: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]
    """The problem's key, as ``status`` shows it."""
    reason: Text = Field(min_length=1)


@dataclass(frozen=True)
class Action:
    """One human action. Its name is stored by Temporal (the signal and update names), and
    the workflow's handlers and the CLI's verbs are generated from this table; its rule
    (when it is accepted and what it does) is in ``workflows/rules.py``."""

    model: type[Message]
    help: str
    """One line for the CLI: who acts and what it does."""
    flags: Mapping[str, str] = field(default_factory=dict)
    """CLI flags whose name differs from the field's."""
    family: str | None = None
    """For decisions a link may carry: its family (``gate``: the gate the message names)."""


ACTIONS: dict[str, Action] = {
    "approve-settlement": Action(ApproveSettlement, "finance: approve the current statement",
                                 {"statement_hash": "--statement"}, "settlement"),
    "dispute-settlement": Action(DisputeSettlement, "finance: dispute it, with adjustments",
                                 {"statement_hash": "--statement", "adjustments": "--adjust"},
                                 "settlement"),
    "verify-data": Action(VerifyData, "data steward: confirm the manifest checksum",
                          family="data"),
    "reject-data": Action(RejectData, "data steward: reject the export (it is redone)",
                          family="data"),
    "approve-gate": Action(ApproveGate, "decider: approve a playbook's gate",
                           family="gate"),
    "reject-gate": Action(RejectGate, "decider: reject a playbook's gate (ops then decide)",
                          family="gate"),
    "complete-task": Action(CompleteTask, "ops or its owner: mark a task or manual item done",
                            family="task"),
    "meeting-held": Action(MeetingHeld, "ops: record the final review meeting"),
    "record-feedback": Action(RecordFeedback, "ops: record the client's NPS / CSAT"),
    "renew": Action(Renew, "ops: the client renewed; end the offboarding"),
    "terminate-early": Action(TerminateEarly, "ops: switch to the termination path"),
    "extend-notice": Action(ExtendNotice, "ops: move the contract end date later"),
    "cancel": Action(Cancel, "ops: stop the offboarding, with a reason"),
    "fix-contact": Action(FixContact, "ops: correct a contact's address; bounced mail is resent"),
    "retry-step": Action(RetryStep, "ops: the cause of a problem is fixed; try its step again"),
    "skip-step": Action(SkipStep, "ops: give up on a problem's step, with a reason"),
}


def why_invalid(err: Exception) -> str:
    """Why a message was refused, on one line and without the message: what was sent is
    not repeated into the status (pydantic's own text quotes the input and links its
    docs)."""
    if isinstance(err, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'the input'}: {e['msg']}"
                         for e in err.errors(include_url=False, include_input=False))
    return str(err).replace("\n", " ")


class Ack(BaseModel):
    """What an accepted update answers (a refused one fails): the stage afterwards and
    what happened."""

    stage: Stage
    detail: str
