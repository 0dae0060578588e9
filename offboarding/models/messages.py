"""The human decisions that steer an offboarding.

Each is accepted two ways with the same payload: as a **signal** (``temporal workflow
signal`` or the Web UI, a JSON object) and as an **update** (the CLI, which learns at once
whether it was accepted). The message name is the same for both, e.g. ``approve-settlement``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from offboarding.models.client_file import Line, Text
from offboarding.models.money import Money

MAX_ADJUSTMENTS = 50
"""Per dispute; with at most MAX_STATEMENT_VERSIONS versions a statement stays small."""


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    by: Line
    """Who acts: an email for approvers, a name or email for ops."""


class ApproveSettlement(Message):
    statement_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{12,64}$")]
    """The statement version approved (its SHA-256, or a prefix of at least 12 digits)."""


class Adjustment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: Line
    amount: Money
    """Positive adds to what the client owes; negative reduces it."""


class DisputeSettlement(Message):
    statement_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{12,64}$")]
    reason: Text = Field(min_length=1)
    adjustments: list[Adjustment] = Field(default=[], max_length=MAX_ADJUSTMENTS)


class VerifyData(Message):
    checksum: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    """The SHA-256 of the manifest the steward computed on their side."""


class RejectData(Message):
    reason: Text = Field(min_length=1)


class CompleteTask(Message):
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


class SkipStep(Message):
    """Give up on a problem's step, recording why."""

    problem: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]
    reason: Text = Field(min_length=1)


MESSAGE_TYPES: dict[str, type[Message]] = {
    "approve-settlement": ApproveSettlement,
    "dispute-settlement": DisputeSettlement,
    "verify-data": VerifyData,
    "reject-data": RejectData,
    "complete-task": CompleteTask,
    "meeting-held": MeetingHeld,
    "record-feedback": RecordFeedback,
    "renew": Renew,
    "terminate-early": TerminateEarly,
    "extend-notice": ExtendNotice,
    "cancel": Cancel,
    "fix-contact": FixContact,
    "retry-step": RetryStep,
    "skip-step": SkipStep,
}


class Ack(BaseModel):
    """What an accepted update answers: the stage afterwards and what happened."""

    accepted: bool = True
    stage: str
    detail: str


__all__ = ["MESSAGE_TYPES", "Ack"]
