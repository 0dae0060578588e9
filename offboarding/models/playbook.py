"""A company's playbook: its own way of offboarding, written as data.

The file (YAML, ``PlaybookFile``) is read and checked by the CLI (``playbooks.py``) and
resolved into a ``Playbook``: what travels in the workflow input, with its email
templates by content and a hash of all of it. An offboarding keeps the playbook it
started with however long it sleeps: nothing here is read from a file by workflow code.

A playbook can switch optional built-in steps off, set the default timings, add gates
(an approval decided by link, ``models/gates.py``) and tasks (a piece of work for a named
person) after a named step, and replace email templates. No playbook is today's
behaviour exactly.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from offboarding.models.client_file import Line, Text
from offboarding.models.text import printable_line, printable_text

SLUG = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
Slug = Annotated[str, Field(pattern=SLUG.pattern)]

OptionalStep = Literal["review-meeting", "feedback", "knowledge-transfer", "keep-in-touch"]
"""Built-in steps a playbook may switch off; the others carry the offboarding itself."""
OPTIONAL_STEPS: tuple[OptionalStep, ...] = ("review-meeting", "feedback", "knowledge-transfer",
                                            "keep-in-touch")

Anchor = Literal["settlement", "data-transfer", "access-revocation", "knowledge-transfer"]
"""The steps a gate or task may follow: those both paths (a contract end and a termination)
run, once the decision to part is final. Earlier steps belong to the contract end alone
(a termination skips them) and later ones come after the archive, which records the
gates and tasks."""
ANCHORS: tuple[Anchor, ...] = ("settlement", "data-transfer", "access-revocation",
                               "knowledge-transfer")

Role = Literal["approvers.finance", "approvers.data_verification", "contacts.billing",
               "contacts.data_steward", "contacts.primary"]
"""Who in the client file decides: a list of approvers or one contact."""

MAX_GATES = 10
MAX_TASKS = 20
MAX_DECIDERS = 10
MAX_TEMPLATE_BYTES = 20_000
MAX_TEMPLATES = 30
MAX_ROUNDS = 5
"""Rounds of one custom gate: a rejection asks ops, and each retry asks again. With the
other limits here a playbook at its limits keeps the status under its budget
(tests/unit/test_limits.py)."""


class Strict(BaseModel):
    """Unknown keys are refused: a misspelt field must not silently do nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Days = Annotated[float, Field(gt=0, le=365)]
Label = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(printable_line)]


class GateSpec(Strict):
    """An approval the playbook adds: its deciders get their own link in a message, are
    reminded, ops are alerted once it is overdue, and a rejection stops the gate for ops
    (``retry-step`` asks again, ``skip-step`` goes on without it)."""

    id: Slug
    """Names the gate everywhere: its checklist step, its wait, its links, its problem."""
    title: Line
    after: Anchor | Slug
    """A built-in step both paths run (``ANCHORS``) or another gate."""
    deciders: Role | Annotated[list[EmailStr], Field(min_length=1, max_length=MAX_DECIDERS)]
    binds: Literal["statement", "export", "nothing"] = "nothing"
    """What the decision is about: the approved statement, the verified export, or the
    gate alone."""
    question: Annotated[str, Field(max_length=500), AfterValidator(printable_text)] = ""
    """What the deciders are asked, in the message and on the page (kept with each round)."""
    approve_label: Label = "Approve"
    """The portal's buttons."""
    reject_label: Label = "Reject"
    reminder_days: Days = 3
    escalation_days: Days = 10


class TaskSpec(Strict):
    """A named piece of work for a named person: mailed a link to mark it done once a step
    is over, reminded until then, with ops alerted when it is overdue. The archive waits
    for every task (ops can ``complete-task`` one for its owner)."""

    key: Slug
    title: Line
    owner: EmailStr
    after: Anchor | Slug
    """A built-in step both paths run, or a gate."""
    instructions: Text = ""
    due_days: Days = 7
    reminder_days: Days = 3


class PlaybookTimings(Strict):
    """Defaults for this company; a client file's own value wins where it gives one."""

    notice_days: int | None = Field(default=None, ge=14, le=90)
    meeting_deadline_days: Days | None = None
    settlement_reminder_days: Days | None = None
    settlement_escalation_days: Days | None = None
    data_reminder_days: Days | None = None
    data_escalation_days: Days | None = None
    feedback_deadline_days: Days | None = None
    retention_days: int | None = Field(default=None, ge=0, le=3650)
    follow_up_days: int | None = Field(default=None, ge=1, le=730)


class MailSettings(Strict):
    sender_name: Annotated[str, Field(min_length=1, max_length=100),
                           AfterValidator(printable_line)] | None = None
    reply_to: EmailStr | None = None
    templates: Annotated[str, Field(min_length=1, max_length=500),
                         AfterValidator(printable_line)] | None = None
    """A folder, relative to the playbook file: a ``NAME.txt`` there replaces the packaged
    template of that name; the others are used as they are."""


class PlaybookFile(Strict):
    """The file as ops write it."""

    name: Slug
    description: Text = ""
    steps: dict[OptionalStep, bool] = {}
    """Optional built-in steps on (true, the default) or off."""
    timings: PlaybookTimings = PlaybookTimings()
    gates: list[GateSpec] = Field(default=[], max_length=MAX_GATES)
    tasks: list[TaskSpec] = Field(default=[], max_length=MAX_TASKS)
    mail: MailSettings = MailSettings()


class Playbook(Strict):
    """A playbook resolved for one offboarding: what travels in the workflow input."""

    name: Slug
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    """Of the file and every template it brings: two offboardings with the same hash ran
    by the same rules and words."""
    off: list[OptionalStep] = []
    gates: list[GateSpec] = []
    tasks: list[TaskSpec] = []
    sender_name: str | None = None
    reply_to: str | None = None
    templates: dict[str, str] = {}
    """Template name (without ``.txt``) -> its text."""
    timings: PlaybookTimings = PlaybookTimings()
    """The company's defaults, merged at start (``playbooks.apply_timings``) where the CLI's
    settings and the client file say nothing: the workflow reads the merged values from
    the input's timings and client file, never these."""

    @property
    def label(self) -> str:
        """``name@hash``: the search attribute, and what ``status`` shows."""
        return f"{self.name}@{self.sha256[:12]}"

    def on(self, step: str) -> bool:
        return step not in self.off

    def gates_after(self, anchor: str) -> list[GateSpec]:
        return [g for g in self.gates if g.after == anchor]

    def tasks_after(self, anchor: str) -> list[TaskSpec]:
        return [t for t in self.tasks if t.after == anchor]
