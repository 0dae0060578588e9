"""The offboarding's bookkeeping: the checklist, and which human messages are acceptable
when. Pure and deterministic (the caller passes the time), so the workflow can use it
and tests can exercise every rule without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from offboarding.models.client_file import ClientFile
from offboarding.models.messages import (
    ApproveSettlement,
    Cancel,
    CompleteTask,
    DisputeSettlement,
    ExtendNotice,
    FixContact,
    MeetingHeld,
    Message,
    RecordFeedback,
    RejectData,
    Renew,
    RetryStep,
    SkipStep,
    TerminateEarly,
    VerifyData,
)
from offboarding.models.settlement import Statement
from offboarding.models.status import (
    Decision,
    Feedback,
    Ignored,
    ManualTask,
    OffboardingStatus,
    Problem,
    Proposal,
    Step,
    StepState,
)

STEPS: list[tuple[str, str]] = [
    ("contract-review", "Contract review"),
    ("notice", "Notice of contract conclusion"),
    ("notice-period", "Notice period"),
    ("review-meeting", "Final review meeting"),
    ("settlement", "Financial settlement"),
    ("data-transfer", "Data transfer and verification"),
    ("access-revocation", "Access revocation"),
    ("knowledge-transfer", "Knowledge transfer"),
    ("feedback", "Feedback"),
    ("archive", "Archive"),
    ("farewell", "Farewell"),
    ("data-retention", "Deletion of our copy of the data"),
    ("keep-in-touch", "Keeping in touch"),
]
TASKS: list[tuple[str, str, str]] = [
    ("terms-met", "Contract terms met", "contract-review"),
    ("deliverables-addressed", "Outstanding deliverables addressed", "contract-review"),
    ("end-of-service-terms-confirmed", "End-of-service terms confirmed", "contract-review"),
    ("handover-session-held", "Handover session held", "knowledge-transfer"),
]
BEFORE_SETTLEMENT = ("contract-review", "notice", "notice-period", "review-meeting")
MAX_STATEMENT_VERSIONS = 20
"""A dispute beyond this is refused: settle the rest outside and approve the last one."""
MAX_IGNORED = 100
"""Ignored messages kept in the status: a flood of bad signals must not grow the status
query's answer (or the archive's input) towards Temporal's 2 MB payload limit."""
TERMINATION_SKIPS = ("notice", "notice-period", "review-meeting", "feedback")
STAGES = ("starting", *(key for key, _ in STEPS if key != "data-retention"),
          "awaiting-termination", "termination", "completed", "renewed", "cancelled")
"""Every value the OffboardingStage search attribute takes."""
WAITS = ("notice-period", "meeting", "settlement-approval", "data-verification", "feedback",
         "ops-action")
"""Every value OffboardingWaitingFor holds."""


class Rejected(Exception):
    """A message that cannot be accepted now; the text says why, for the sender."""


@dataclass
class Pending:
    """Decisions the workflow has accepted but not yet acted upon."""

    approved: ApproveSettlement | None = None
    dispute: DisputeSettlement | None = None
    verified: VerifyData | None = None
    rejected: RejectData | None = None
    meeting: MeetingHeld | None = None
    feedback: RecordFeedback | None = None
    renew: Renew | None = None
    terminate: TerminateEarly | None = None
    extend: ExtendNotice | None = None
    cancel: Cancel | None = None
    waits: dict[str, datetime] = field(default_factory=dict)


class OffboardingState:
    def __init__(self, workflow_id: str, client: ClientFile, *, second_ops: bool = True) -> None:
        self.client = client
        self.second_ops = second_ops
        self.pending = Pending()
        self.status = OffboardingStatus(
            workflow_id=workflow_id,
            client_id=client.client_id,
            client_name=client.client_name,
            reason=client.reason,
            stage="contract-review",
            contract_end=client.contract.end_date,
            effective_date=client.termination.effective_date if client.termination else None,
            steps=[Step(key=k, title=t) for k, t in STEPS],
            tasks=[ManualTask(key=k, title=t, step=s) for k, t, s in TASKS],
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

    def enter(self, stage: str, now: datetime, detail: str = "") -> None:
        self.status.stage = stage
        if stage in dict(STEPS):
            self.mark(stage, "active", now, detail)

    def add_statement(self, statement: Statement) -> None:
        """The new current statement; the one it replaces keeps its totals and hash only."""
        statements = self.status.statements
        if statements:
            statements[-1] = statements[-1].superseded()
        statements.append(statement)

    def decide(self, now: datetime, action: str, by: str, detail: str,
               proposed_by: str | None = None) -> None:
        self.status.decisions.append(Decision(at=now, action=action, by=by, detail=detail,
                                              proposed_by=proposed_by))

    def ignore(self, now: datetime, action: str, by: str | None, why: str) -> None:
        kept = self.status.ignored[-(MAX_IGNORED - 1):]
        self.status.ignored = [*kept, Ignored(at=now, action=action, by=by, why=why)]
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
        who = {
            "settlement-approval": "finance approver (approve-settlement / dispute-settlement)",
            "data-verification": "data steward (verify-data / reject-data)",
            "meeting": "ops (meeting-held)",
            "feedback": "ops (record-feedback)",
            "notice-period": "nobody; ops may renew, terminate-early or extend-notice",
            "ops-action": "ops (retry-step / skip-step / fix-contact): "
                          + "; ".join(p.why for p in self.open_problems()),
        }
        waits = self.status.waiting_for.split(",") if self.status.waiting_for else []
        return "; ".join(who.get(w, w) for w in waits) or "nobody"

    # ----- problems only people can fix ------------------------------------------------

    def open_problems(self) -> list[Problem]:
        return [p for p in self.status.problems if p.resolution is None]

    def problem(self, key: str) -> Problem | None:
        return next((p for p in self.open_problems() if p.key == key), None)

    def raise_problem(self, key: str, step: str, why: str, now: datetime) -> Problem:
        problem = Problem(key=key, step=step, why=why, since=now)
        self.status.problems.append(problem)
        self.start_wait("ops-action", now, None)
        return problem

    def end_ops_wait_if_clear(self) -> None:
        """Once no problem is open, the offboarding no longer waits for ops."""
        if not self.open_problems():
            self.end_wait("ops-action")

    def address(self, email: str) -> str:
        """An address as it is now, after any fix-contact."""
        seen = set()
        while email in self.status.contacts_fixed and email not in seen:
            seen.add(email)
            email = self.status.contacts_fixed[email]
        return email

    # ----- messages --------------------------------------------------------------------

    def validate(self, name: str, msg: Message) -> None:
        """Raise Rejected if ``msg`` cannot be accepted now. Reads only."""
        st = self.status
        if st.outcome is not None:
            raise Rejected(f"the offboarding has already ended ({st.outcome})")
        check = getattr(self, "_check_" + name.replace("-", "_"))
        check(msg)

    def _in_stage(self, name: str, *stages: str) -> None:
        if self.status.stage not in stages:
            raise Rejected(f"{name} is not possible in stage {self.status.stage!r}; "
                           f"it is accepted in: {', '.join(stages)}")

    def _waiting(self, name: str, what: str) -> None:
        if what not in self.pending.waits:
            now_waiting = self.status.waiting_for or "nothing"
            raise Rejected(f"{name} is not expected now: the offboarding waits for {now_waiting}")

    def _approver(self, role: str, who: str) -> None:
        allowed = getattr(self.client.approvers, role)
        if who.lower() not in [a.lower() for a in allowed]:
            raise Rejected(f"{who} is not a {role.replace('_', ' ')} approver for this client")

    def _current_statement(self, statement_hash: str) -> None:
        current = self.status.statements[-1] if self.status.statements else None
        if current is None or not current.hash.startswith(statement_hash):
            raise Rejected(
                f"statement {statement_hash[:12]} is not the current statement"
                + (f" (v{current.version}, {current.hash[:12]})" if current else "")
            )

    def _check_approve_settlement(self, msg: ApproveSettlement) -> None:
        self._waiting("approve-settlement", "settlement-approval")
        self._approver("finance", msg.by)
        self._current_statement(msg.statement_hash)
        if self.pending.approved or self.pending.dispute:
            raise Rejected("a decision on this statement was already recorded")

    def _check_dispute_settlement(self, msg: DisputeSettlement) -> None:
        self._check_approve_settlement(ApproveSettlement(by=msg.by,
                                                         statement_hash=msg.statement_hash))
        if len(self.status.statements) >= MAX_STATEMENT_VERSIONS:
            raise Rejected(f"statement v{len(self.status.statements)} is the last version an "
                           f"offboarding issues (at most {MAX_STATEMENT_VERSIONS}); settle "
                           "what remains outside and approve it")

    def _check_verify_data(self, msg: VerifyData) -> None:
        self._waiting("verify-data", "data-verification")
        self._approver("data_verification", msg.by)
        package = self.status.data_packages[-1]
        if msg.checksum != package.manifest_sha256:
            raise Rejected(f"checksum {msg.checksum} does not match the manifest of export "
                           f"{package.attempt}; compute the SHA-256 of manifest.json again")
        if self.pending.verified or self.pending.rejected:
            raise Rejected("a decision on this export was already recorded")

    def _check_reject_data(self, msg: RejectData) -> None:
        self._waiting("reject-data", "data-verification")
        self._approver("data_verification", msg.by)
        if self.pending.verified or self.pending.rejected:
            raise Rejected("a decision on this export was already recorded")

    def _check_complete_task(self, msg: CompleteTask) -> None:
        task = next((t for t in self.status.tasks if t.key == msg.task), None)
        if task is None:
            raise Rejected(f"unknown task {msg.task!r}; tasks are: "
                           + ", ".join(t.key for t in self.status.tasks))
        if task.done:
            raise Rejected(f"task {msg.task} was already completed by {task.by}")

    def _check_meeting_held(self, msg: MeetingHeld) -> None:
        self._in_stage("meeting-held", "notice-period", "review-meeting")
        if self.status.reason != "contract_end":
            raise Rejected("a terminated offboarding has no review meeting")
        if self.pending.meeting:
            raise Rejected("the meeting was already recorded")

    def _check_record_feedback(self, msg: RecordFeedback) -> None:
        self._waiting("record-feedback", "feedback")
        if msg.nps is None and msg.csat is None and not msg.comment and not msg.internal_note:
            raise Rejected("record-feedback needs at least one of nps, csat, comment, "
                           "internal_note")

    def _check_renew(self, msg: Renew) -> None:
        self._in_stage("renew", "contract-review", "notice", "notice-period")
        if self.status.reason != "contract_end":
            raise Rejected("a terminated contract cannot be renewed from here")

    def _check_terminate_early(self, msg: TerminateEarly) -> None:
        self._in_stage("terminate-early", *BEFORE_SETTLEMENT)
        if self.status.reason != "contract_end" or self.pending.terminate:
            raise Rejected("the offboarding is already on the termination path")

    def _check_extend_notice(self, msg: ExtendNotice) -> None:
        self._in_stage("extend-notice", "contract-review", "notice", "notice-period")
        if msg.new_end_date <= self.status.contract_end:
            raise Rejected(f"new_end_date {msg.new_end_date} must be after the current end "
                           f"date {self.status.contract_end}")

    def _check_cancel(self, msg: Cancel) -> None:
        if self.pending.cancel:
            raise Rejected("a cancellation is already under way")

    def _check_fix_contact(self, msg: FixContact) -> None:
        current = self.address(getattr(self.client.contacts, msg.role).email)
        if current.lower() == msg.email.lower():
            raise Rejected(f"{msg.role} already uses {msg.email}")
        self._check_second_person(msg)

    # ----- actions two ops people must agree on ----------------------------------------

    def proposal_key(self, msg: Message) -> str | None:
        """What identifies an action that needs a second person, or None if it does not:
        redirecting a contact (where the client's mail goes) and skipping access
        revocation (accounts left open). Anyone with namespace access can type any
        ``--by``, so one person alone must not be able to do either."""
        if not self.second_ops:
            return None
        match msg:
            case FixContact():
                return f"fix-contact {msg.role} {msg.email.lower()}"
            case SkipStep() if msg.problem.startswith("access-"):
                return f"skip-step {msg.problem}"
        return None

    def _proposal(self, key: str) -> Proposal | None:
        return next((p for p in self.status.proposals if p.key == key), None)

    def _check_second_person(self, msg: Message) -> None:
        key = self.proposal_key(msg)
        proposal = self._proposal(key) if key else None
        if proposal is not None and proposal.by.casefold() == msg.by.casefold():
            raise Rejected(f"{proposal.by} proposed this already; a second ops person (a "
                           "different --by) must confirm it")

    def _open_problem(self, key: str) -> Problem:
        problem = self.problem(key)
        if problem is None:
            keys = ", ".join(p.key for p in self.open_problems()) or "none"
            raise Rejected(f"no open problem {key!r}; open problems: {keys}")
        return problem

    def _check_retry_step(self, msg: RetryStep) -> None:
        self._open_problem(msg.problem)

    def _check_skip_step(self, msg: SkipStep) -> None:
        self._open_problem(msg.problem)
        self._check_second_person(msg)

    def apply(self, name: str, msg: Message, now: datetime) -> str:
        """Record an accepted message; returns what happened, for the sender. An action
        that needs a second person is only proposed until a different one sends it too."""
        key = self.proposal_key(msg)
        proposed = self._proposal(key) if key else None
        if key is not None and proposed is None:
            detail = (f"{name} proposed by {msg.by}; a second ops person must confirm it by "
                      "sending the same command with their own --by")
            self.status.proposals.append(Proposal(key=key, action=name, by=msg.by, at=now,
                                                  detail=detail))
            self.decide(now, f"{name} (proposed)", msg.by, detail)
            return detail
        if proposed is not None:
            self.status.proposals.remove(proposed)
        detail = self._effect(name, msg, now)
        self.decide(now, name, msg.by, detail, proposed.by if proposed else None)
        return detail

    def _effect(self, name: str, msg: Message, now: datetime) -> str:
        p = self.pending
        detail: str
        match msg:
            case ApproveSettlement():
                p.approved, detail = msg, f"statement {msg.statement_hash[:12]} approved"
            case DisputeSettlement():
                p.dispute = msg
                detail = f"statement {msg.statement_hash[:12]} disputed: {msg.reason}"
            case VerifyData():
                p.verified, detail = msg, f"data verified with checksum {msg.checksum[:12]}"
            case RejectData():
                p.rejected, detail = msg, f"data rejected: {msg.reason}"
            case CompleteTask():
                task = next(t for t in self.status.tasks if t.key == msg.task)
                task.done, task.at, task.by, task.note = True, now, msg.by, msg.note
                detail = f"task {msg.task} completed"
            case MeetingHeld():
                p.meeting, detail = msg, "review meeting held"
                self.status.meeting_notes = msg.notes
            case RecordFeedback():
                p.feedback = msg
                self.status.feedback = Feedback(nps=msg.nps, csat=msg.csat, comment=msg.comment,
                                                internal_note=msg.internal_note, by=msg.by)
                detail = f"feedback recorded (NPS {msg.nps}, CSAT {msg.csat})"
            case Renew():
                p.renew, detail = msg, "contract renewed"
            case TerminateEarly():
                p.terminate, detail = msg, f"early termination: {msg.cause}"
            case ExtendNotice():
                p.extend = msg
                detail = f"end date moved from {self.status.contract_end} to {msg.new_end_date}"
                self.status.contract_end = msg.new_end_date
            case Cancel():
                p.cancel, detail = msg, f"cancel requested: {msg.reason}"
            case FixContact():
                old = self.address(getattr(self.client.contacts, msg.role).email)
                self.status.contacts_fixed[old] = msg.email
                detail = f"{msg.role} contact changed from {old} to {msg.email}"
                # Mail that bounced off the old address is sent again to the new one.
                for problem in self.open_problems():
                    if problem.key.startswith("mail-") and old in problem.why:
                        self._resolve(problem, "retry", msg.by, now, detail)
            case RetryStep():
                self._resolve(self._open_problem(msg.problem), "retry", msg.by, now, "")
                detail = f"retrying {msg.problem}"
            case SkipStep():
                self._resolve(self._open_problem(msg.problem), "skip", msg.by, now, msg.reason)
                detail = f"skipping {msg.problem}: {msg.reason}"
            case _:
                raise Rejected(f"unknown message {name}")
        return detail

    def _resolve(self, problem: Problem, how: Literal["retry", "skip"], by: str,
                 now: datetime, note: str) -> None:
        problem.resolution = how
        problem.resolved_by, problem.resolved_at, problem.note = by, now, note
