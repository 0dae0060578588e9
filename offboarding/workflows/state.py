"""The offboarding's bookkeeping: the checklist, the waits, problems, decisions. Pure
and deterministic (the caller passes the time), so the workflow can use it and the unit
tests exercise it without a server. Which messages are accepted when is ``rules.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from offboarding.models import gates
from offboarding.models.client_file import ClientFile
from offboarding.models.gates import TASK_FAMILY, Gate, digest
from offboarding.models.messages import (
    ApproverDecision,
    Cancel,
    ExtendNotice,
    MeetingHeld,
    RecordFeedback,
    Renew,
    TerminateEarly,
    Via,
)
from offboarding.models.playbook import Playbook
from offboarding.models.records import EmailReceipt
from offboarding.models.settlement import Statement
from offboarding.models.stages import WHO_ACTS, Stage, StepKey, Wait
from offboarding.models.status import (
    Decision,
    GateRound,
    Ignored,
    ManualTask,
    OffboardingStatus,
    Problem,
    Proposal,
    Step,
    StepState,
)

STEPS: list[tuple[StepKey, str]] = [
    (StepKey.CONTRACT_REVIEW, "Contract review"),
    (StepKey.NOTICE, "Notice of contract conclusion"),
    (StepKey.NOTICE_PERIOD, "Notice period"),
    (StepKey.REVIEW_MEETING, "Final review meeting"),
    (StepKey.SETTLEMENT, "Financial settlement"),
    (StepKey.DATA_TRANSFER, "Data transfer and verification"),
    (StepKey.ACCESS_REVOCATION, "Access revocation"),
    (StepKey.KNOWLEDGE_TRANSFER, "Knowledge transfer"),
    (StepKey.FEEDBACK, "Feedback"),
    (StepKey.ARCHIVE, "Archive"),
    (StepKey.FAREWELL, "Farewell"),
    (StepKey.DATA_RETENTION, "Deletion of our copy of the data"),
    (StepKey.KEEP_IN_TOUCH, "Keeping in touch"),
]
STEP_KEYS: frozenset[str] = frozenset(StepKey)
TASKS: list[tuple[str, str, str]] = [
    ("terms-met", "Contract terms met", "contract-review"),
    ("deliverables-addressed", "Outstanding deliverables addressed", "contract-review"),
    ("end-of-service-terms-confirmed", "End-of-service terms confirmed", "contract-review"),
    ("handover-session-held", "Handover session held", "knowledge-transfer"),
]
MAX_STATEMENT_VERSIONS = 20
"""A dispute beyond this is refused: settle the rest outside and approve the last one."""
MAX_IGNORED = 100
"""Ignored messages kept in the status: a flood of bad signals must not grow the status
query's answer (or the archive's input) towards Temporal's 2 MB payload limit."""
MAX_EXPORTS = 20
"""A rejection beyond this is refused: each export is a copy of the client's data."""
MAX_DECISIONS_PER_ACTION = 40
"""Decisions of one kind of ops action (its proposals included) an offboarding records:
fix-contact, extend-notice and retry-step can repeat. Each kind has its own budget, so
using one up blocks no other; cancel is always possible."""
MAX_PROPOSALS = 20
"""Open proposals waiting for a second person; one per person and thing."""
MAX_NOTE = 1000
"""Characters of a task's note kept in the status."""
MAX_DETAIL = 300
"""Characters of a decision's or an ignored message's text kept in the status: the full
text acts where it belongs (the statement, the task, the step), the log says who and how.
With the limits above, the status stays under ``models.status.STATUS_BUDGET``."""


@dataclass(frozen=True)
class Answer:
    """A gate's decision, accepted and not yet acted upon."""

    approved: bool
    msg: ApproverDecision


@dataclass
class Pending:
    """Decisions the workflow has accepted but not yet acted upon."""

    answers: dict[str, Answer] = field(default_factory=dict)
    """By gate id: the built-ins (``settlement``, ``data``) and a playbook's."""
    meeting: MeetingHeld | None = None
    feedback: RecordFeedback | None = None
    renew: Renew | None = None
    terminate: TerminateEarly | None = None
    extend: ExtendNotice | None = None
    cancel: Cancel | None = None
    waits: dict[str, datetime] = field(default_factory=dict)
    """A ``Wait``, or a playbook's gate or task."""


class OffboardingState:
    def __init__(self, workflow_id: str, client: ClientFile, *, second_ops: bool = True,
                 require_links: bool = False, playbook: Playbook | None = None) -> None:
        self.client = client
        self.second_ops = second_ops
        self.require_links = require_links
        self.playbook = playbook
        self.gates = gates.table(playbook.gates if playbook else [])
        """Every gate of this offboarding, by id (``models/gates.py``)."""
        self.link_keys: dict[str, str] = {}
        """Public keys of the approval links this offboarding has mailed, by key id."""
        self.pending = Pending()
        self.status = OffboardingStatus(
            workflow_id=workflow_id,
            client_id=client.client_id,
            client_name=client.client_name,
            reason=client.reason,
            stage=Stage.CONTRACT_REVIEW,
            contract_end=client.contract.end_date,
            effective_date=client.termination.effective_date if client.termination else None,
            steps=[Step(key=k, title=t) for k, t in _steps(playbook)],
            tasks=[ManualTask(key=k, title=t, step=s) for k, t, s in TASKS]
            + [ManualTask(key=t.key, title=t.title, step=t.after, owner=t.owner)
               for t in (playbook.tasks if playbook else [])],
            playbook=playbook.label if playbook else None,
        )

    # ----- checklist bookkeeping -------------------------------------------------------

    def mark(self, key: str, state: StepState, now: datetime, detail: str | None = None,
             by: str | None = None) -> None:
        step = self.status.step(key)
        step.state = state
        step.at = now
        if detail is not None:
            step.detail = detail
        if by is not None:
            step.by = by

    def enter(self, stage: Stage, now: datetime, detail: str = "") -> None:
        self.status.stage = stage
        if stage in STEP_KEYS:  # a stage that is also a step (the same string)
            self.mark(StepKey(stage), "active", now, detail)

    def add_statement(self, statement: Statement) -> None:
        """The new current statement; the one it replaces keeps its totals and hash only."""
        statements = self.status.statements
        if statements:
            statements[-1] = statements[-1].superseded()
        statements.append(statement)

    def decide(self, now: datetime, action: str, by: str, detail: str,
               proposed_by: str | None = None, via: Via | None = None,
               about: str | None = None) -> None:
        self.status.decisions.append(Decision(at=now, action=action, by=by,
                                              detail=clip(detail), proposed_by=proposed_by,
                                              via=via, about=about))

    def forget_proposal(self, proposal: Proposal) -> None:
        """Drop the decision that recorded ``proposal`` (replaced by its proposer's newer
        one before anyone confirmed it)."""
        recorded = next((d for d in reversed(self.status.decisions)
                         if d.action == f"{proposal.action} (proposed)"
                         and d.by == proposal.by and d.at == proposal.at), None)
        if recorded is not None:
            self.status.decisions.remove(recorded)

    def add_email(self, receipt: EmailReceipt) -> None:
        """A sent message; the key that signed its link (if any) is one links are checked
        with from now on."""
        self.status.emails.append(receipt)
        self.link_keys.update(receipt.link_keys)

    def ignore(self, now: datetime, action: str, by: str | None, why: str) -> None:
        kept = self.status.ignored[-(MAX_IGNORED - 1):]
        self.status.ignored = [*kept, Ignored(at=now, action=clip(action, 100),
                                              by=clip(by, 200) if by else by, why=clip(why))]
        self.status.ignored_total += 1

    def start_wait(self, what: str, now: datetime, overdue_at: datetime | None) -> None:
        self.pending.waits[what] = now
        self._refresh_waits(overdue_at)

    def end_wait(self, what: str) -> None:
        self.pending.waits.pop(what, None)
        self._refresh_waits(None)

    def end_all_waits(self) -> None:
        self.pending.waits.clear()
        self._refresh_waits(None)

    def _refresh_waits(self, overdue_at: datetime | None) -> None:
        waits = self.pending.waits
        self.status.waiting_for = ",".join(sorted(waits)) or None
        self.status.waiting_since = min(waits.values()) if waits else None
        if not waits:
            self.status.overdue_at, self.status.overdue = None, False
        elif overdue_at is not None:
            self.status.overdue_at = overdue_at

    def skip_remaining(self, now: datetime, why: str, state: StepState = "skipped") -> None:
        for step in self.status.steps:
            if step.state in ("pending", "active", "waiting"):
                step.state = state
                step.at, step.detail = now, why

    def details_markdown(self) -> str:
        """A short checklist for the Web UI's "current details": done, pending, who must act."""
        st = self.status
        paragraphs = [f"**Stage:** {st.stage}"]
        if st.playbook:
            paragraphs.append(f"**Playbook:** {st.playbook}")
        if st.waiting_for:
            waits = st.waiting_for.replace(",", ", ")
            paragraphs.append(f"**Waiting for:** {waits}"
                              + (" - **OVERDUE**" if st.overdue else ""))
            paragraphs.append(f"**Who must act:** {self.who_must_act()}")
        paragraphs.append("\n".join(
            f"- {s.title}: " + (s.state if s.state == "pending" else f"**{s.state}**")
            for s in st.steps))
        open_tasks = [t.title for t in st.tasks if not t.done]
        if open_tasks:
            paragraphs.append("**Manual items open:** " + "; ".join(open_tasks))
        return "\n\n".join(paragraphs)

    def who_must_act(self) -> str:
        def who(wait: str) -> str:
            if wait == Wait.OPS_ACTION:
                problems = "; ".join(p.why for p in self.open_problems())
                return f"{WHO_ACTS[Wait.OPS_ACTION]}: {problems}"
            if wait in WHO_ACTS:
                return WHO_ACTS[Wait(wait)]
            gate = next((g for g in self.gates.values() if g.wait == wait), None)
            if gate is not None:
                return gate.who_acts
            task = self.task(wait.removeprefix("task-"))
            return f"{task.owner} (complete-task --task {task.key})" if task else wait

        return "; ".join(who(w) for w in self.status.waits) or "nobody"

    def task(self, key: str) -> ManualTask | None:
        return next((t for t in self.status.tasks if t.key == key), None)

    @property
    def run_name(self) -> str:
        """What makes a document this run's own (a gate's round, a task): the run id,
        unique across clients and in the history, so a replay computes the same."""
        return self.status.run_id or self.status.workflow_id

    def task_document(self, key: str) -> str:
        """What the owner's link of the playbook task ``key`` names."""
        return digest(self.run_name, TASK_FAMILY, key)

    def ask_gate(self, gate: Gate, bound: str | None, now: datetime) -> GateRound:
        """A new round of a playbook's gate: its document names the run, the gate, the
        round and what it binds."""
        n = sum(1 for r in self.status.gates if r.gate == gate.id) + 1
        asked = GateRound(gate=gate.id, title=gate.title, round=n, bound=bound,
                          document=digest(self.run_name, gate.id, str(n), bound or ""),
                          question=gate.question,
                          labels=list(gate.labels), asked=gate.deciders_in(self.client), at=now)
        self.status.gates.append(asked)
        return asked

    def gate_round(self, gate: str) -> GateRound | None:
        """The current round of a playbook's gate."""
        return next((r for r in reversed(self.status.gates) if r.gate == gate), None)

    # ----- problems only people can fix ------------------------------------------------

    def open_problems(self) -> list[Problem]:
        return [p for p in self.status.problems if p.resolution is None]

    def problem(self, key: str) -> Problem | None:
        return next((p for p in self.open_problems() if p.key == key), None)

    def raise_problem(self, key: str, step: str, why: str, now: datetime) -> Problem:
        problem = Problem(key=key, step=step, why=why, since=now)
        self.status.problems.append(problem)
        self.start_wait(Wait.OPS_ACTION, now, None)
        return problem

    def end_ops_wait_if_clear(self) -> None:
        """Once no problem is open, the offboarding no longer waits for ops."""
        if not self.open_problems():
            self.end_wait(Wait.OPS_ACTION)

    def resolve(self, problem: Problem, how: Literal["retry", "skip"], by: str,
                now: datetime, note: str) -> None:
        problem.resolution = how
        problem.resolved_by, problem.resolved_at, problem.note = by, now, note

    def address(self, email: str) -> str:
        """An address as it is now, after any fix-contact."""
        seen = set()
        while email in self.status.contacts_fixed and email not in seen:
            seen.add(email)
            email = self.status.contacts_fixed[email]
        return email


def _steps(playbook: Playbook | None) -> list[tuple[str, str]]:
    """The checklist: a playbook's gates follow the step they are placed after (a gate
    after a gate follows that one)."""
    steps: list[tuple[str, str]] = list(STEPS)
    specs = playbook.gates if playbook else []
    ids = {g.id for g in specs}
    placed, pending = True, list(specs)
    while pending and placed:
        placed = False
        for gate in list(pending):
            keys = [k for k, _ in steps]
            if gate.after in keys:
                at = keys.index(gate.after) + 1
                while at < len(keys) and keys[at] in ids:
                    at += 1  # after the gates already placed there, in the file's order
                steps.insert(at, (gate.id, gate.title))
                pending.remove(gate)
                placed = True
    return steps


def clip(text: str, most: int = MAX_DETAIL) -> str:
    return text if len(text) <= most else text[:most - 1] + "…"
