"""Scripted people, for the demo and the benchmark: what ops, finance and the data steward
of the example client answer to each wait, and what a playbook's people answer to theirs
(its gate's first decider approves, a task's owner marks it done). The answer carries a
key that makes each one happen once (a statement version, an export attempt, a gate's
round) and the CLI flags a person would type for it."""

from __future__ import annotations

from dataclasses import dataclass

from offboarding.models.messages import (
    Adjustment,
    ApproveGate,
    ApproveSettlement,
    CompleteTask,
    DisputeSettlement,
    MeetingHeld,
    Message,
    RecordFeedback,
    VerifyData,
)
from offboarding.models.stages import Wait
from offboarding.models.status import OffboardingStatus

FINANCE = "finance.lead@example.com"
STEWARD = "tom.becker@acme-analytics.example"
NEEDS_STATUS = (Wait.SETTLEMENT_APPROVAL, Wait.DATA_VERIFICATION)
"""The answers that depend on the offboarding's status (which version, which checksum)."""


@dataclass(frozen=True)
class Answer:
    once: tuple[str, ...]
    action: str
    message: Message
    flags: str


def answer(wait: str, st: OffboardingStatus | None, *, ops: str = "ops",
           dispute_first: bool = False) -> Answer | None:
    """What a person answers to ``wait`` (a ``Wait``, or a playbook's gate or task as
    ``status.waits`` names them); ``st`` is needed for all but ops' own waits."""
    if wait == Wait.MEETING:
        return Answer((wait,), "meeting-held", MeetingHeld(by=ops, notes="Reviewed KPIs"),
                      f"--by {ops} --notes 'Reviewed KPIs'")
    if wait == Wait.FEEDBACK:
        return Answer((wait,), "record-feedback", RecordFeedback(
            by=ops, nps=9, csat=5, comment="Great partnership"),
            f"--by {ops} --nps 9 --csat 5 --comment 'Great partnership'")
    if st is None or wait not in st.waits:
        return None
    if wait == Wait.SETTLEMENT_APPROVAL:
        stmt = st.statements[-1]
        once = (wait, str(stmt.version))
        if dispute_first and stmt.version == 1:
            return Answer(once, "dispute-settlement", DisputeSettlement(
                by=FINANCE, statement_hash=stmt.short_hash, reason="Late fee waived",
                adjustments=[Adjustment(description="Waived late fee", amount="-150.00")]),
                f"--by {FINANCE} --statement {stmt.short_hash} --reason 'Late fee waived' "
                "--adjust 'Waived late fee=-150.00'")
        return Answer(once, "approve-settlement",
                      ApproveSettlement(by=FINANCE, statement_hash=stmt.short_hash),
                      f"--by {FINANCE} --statement {stmt.short_hash}")
    if wait == Wait.DATA_VERIFICATION:
        pkg = st.data_packages[-1]
        checksum = pkg.manifest_sha256  # the steward's own check is played by the demo's links
        return Answer((wait, str(pkg.attempt)), "verify-data",
                      VerifyData(by=STEWARD, checksum=checksum),
                      f"--by {STEWARD} --checksum {checksum}")
    return _playbook(wait, st)


def _playbook(wait: str, st: OffboardingStatus) -> Answer | None:
    """A playbook gate's newest round, approved by the first person it asked; a task,
    marked done by its owner."""
    rounds = [r for r in st.gates if r.gate == wait]
    if rounds and rounds[-1].asked:
        r = rounds[-1]
        who, document = r.asked[0], r.document[:12]
        return Answer((wait, str(r.round)), "approve-gate",
                      ApproveGate(by=who, gate=r.gate, document=document),
                      f"--gate {r.gate} --document {document} --by {who}")
    key = wait.removeprefix("task-")
    task = next((t for t in st.tasks if wait.startswith("task-") and t.key == key), None)
    if task is not None and task.owner and not task.done:
        return Answer((wait,), "complete-task",
                      CompleteTask(by=task.owner, task=key, note="Done"),
                      f"--task {key} --by {task.owner} --note Done")
    return None
