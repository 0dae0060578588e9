"""The checklist: the one source of truth about an offboarding, returned by the
``status`` query and archived at the end. Search attributes only help find workflows."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from offboarding.models.client_file import ClientFile
from offboarding.models.messages import Via
from offboarding.models.playbook import Playbook
from offboarding.models.records import (
    ArchiveReceipt,
    DataPackage,
    EmailReceipt,
    SystemRevocation,
    records_key,
)
from offboarding.models.settlement import Statement
from offboarding.models.stages import Stage

STATUS_BUDGET = 512 * 1024
"""Bytes of the status as JSON, whatever anyone sends: the answer of the ``status`` query
and the archive's input, well under Temporal's 2 MB payload limit. The limits that keep
it there are in ``workflows/state.py``; tests/unit/test_limits.py fills every list to
them and tests/integration/test_flood.py floods a real offboarding."""

StepState = Literal["pending", "active", "waiting", "done", "skipped", "cancelled"]
Outcome = Literal["completed", "renewed", "cancelled"]


class Step(BaseModel):
    key: str
    title: str
    state: StepState = "pending"
    at: datetime | None = None
    by: str | None = None
    detail: str = ""


class ManualTask(BaseModel):
    key: str
    title: str
    step: str
    done: bool = False
    at: datetime | None = None
    by: str | None = None
    note: str = ""
    owner: str | None = None
    """A playbook's task: who does it (mailed a link to mark it done)."""
    due: datetime | None = None
    document: str | None = None
    """What its owner's link names (``OffboardingState.task_document``); set once it is
    asked."""


class GateRound(BaseModel):
    """One time a gate's deciders were asked: a playbook's gate, for its links and page."""

    gate: str
    title: str
    round: int
    document: str
    """What its links name and a decision must quote: a hash of the gate, the round and
    the bound document."""
    bound: str | None = None
    """The statement's hash or the manifest's checksum it is about, if any."""
    question: str = ""
    labels: list[str] = []
    asked: list[str] = []
    at: datetime


class Decision(BaseModel):
    at: datetime
    action: str
    by: str
    detail: str
    proposed_by: str | None = None
    """For actions two ops people must agree on: who proposed it (``by`` confirmed it)."""
    via: Via | None = None
    """How it arrived (None in offboardings recorded before channels were)."""
    about: str | None = None
    """For approver decisions: the statement hash or manifest checksum decided on."""


class Proposal(BaseModel):
    """An ops action waiting for a second, different person to confirm it."""

    key: str
    action: str
    by: str
    at: datetime
    detail: str


class Ignored(BaseModel):
    at: datetime
    action: str
    by: str | None
    why: str


class Problem(BaseModel):
    """Something only a person can fix, holding up a step until they retry or skip it."""

    key: str
    step: str
    why: str
    since: datetime
    resolution: Literal["retry", "skip"] | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    note: str = ""


class Feedback(BaseModel):
    nps: int | None = None
    csat: int | None = None
    comment: str = ""
    internal_note: str = ""
    by: str


class OffboardingStatus(BaseModel):
    workflow_id: str
    run_id: str | None = None
    """The run this offboarding of the client started as (its first run id); None in
    offboardings started before runs were named (their records are kept under the
    workflow id alone: ``records_key``)."""
    client_id: str
    client_name: str
    reason: Literal["contract_end", "termination"]
    stage: Stage
    waiting_for: str | None = None
    """The waits under way, comma-joined (the wire shape); ``waits`` is the typed list."""
    waiting_since: datetime | None = None
    overdue_at: datetime | None = None
    overdue: bool = False
    short_notice: bool = False
    contract_end: date
    effective_date: date | None = None
    outcome: Outcome | None = None
    ended_as: str | None = None
    """Set by the reader, never by the workflow: how Temporal closed an offboarding that
    ended without an outcome of its own (``terminated``, ``timed_out``, ``failed``). Its
    last status still shows a stage and waits, which nobody can act on any more."""
    steps: list[Step]
    tasks: list[ManualTask]
    decisions: list[Decision] = []
    ignored: list[Ignored] = []
    """The latest MAX_IGNORED messages ignored; ``ignored_total`` counts them all."""
    ignored_total: int = 0
    proposals: list[Proposal] = []
    problems: list[Problem] = []
    contacts_fixed: dict[str, str] = {}
    """Addresses replaced by fix-contact: old -> new."""
    emails: list[EmailReceipt] = []
    statements: list[Statement] = []
    data_packages: list[DataPackage] = []
    data_purged: list[str] = []
    revocations: list[SystemRevocation] = []
    feedback: Feedback | None = None
    meeting_notes: str | None = None
    archive: ArchiveReceipt | None = None
    playbook: str | None = None
    """``name@hash`` of the playbook it runs by; None: the built-in way."""
    gates: list[GateRound] = []

    @property
    def records_key(self) -> str:
        return records_key(self.workflow_id, self.run_id)

    @property
    def waits(self) -> list[str]:
        """A ``Wait``, or a playbook's gate or task (``task-<key>``)."""
        return self.waiting_for.split(",") if self.waiting_for else []

    def step(self, key: str) -> Step:
        for s in self.steps:
            if s.key == key:
                return s
        raise KeyError(key)


class Timings(BaseModel):
    """How long people get, in (scaled) days. Defaults follow the usual checklists."""

    meeting_deadline_days: float = Field(default=7, gt=0)
    settlement_reminder_days: float = Field(default=3, gt=0)
    settlement_escalation_days: float = Field(default=10, gt=0)
    data_reminder_days: float = Field(default=3, gt=0)
    data_escalation_days: float = Field(default=10, gt=0)
    feedback_deadline_days: float = Field(default=14, gt=0)
    day_length: timedelta | None = None
    """None: real calendar days. Set (e.g. 2 seconds) to run a whole offboarding fast
    for a demo, a benchmark or an end-to-end test; every date is then counted in these."""


class OffboardingInput(BaseModel):
    client: ClientFile
    timings: Timings = Timings()
    second_ops: bool = True
    """Redirecting a contact and skipping access revocation need a second ops person's
    confirmation (OFFBOARDING_REQUIRE_SECOND_OPS). Fixed at start, like the timings."""
    require_links: bool = False
    """Approver decisions only through the approver's own link (OFFBOARDING_REQUIRE_LINKS)."""
    playbook: Playbook | None = None
    """The company's own steps, gates, tasks and mail (``models/playbook.py``), resolved by
    the CLI at start; None is the built-in way."""


class OffboardingResult(BaseModel):
    outcome: Outcome
    summary: str
    status: OffboardingStatus
