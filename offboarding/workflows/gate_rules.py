"""The rules of approval gates (``models/gates.py``): the built-in settlement and data
verification, a playbook's gates, and tasks, which their owners complete by link too.
Pure, like ``rules.py``, which holds every other action's rule and applies these."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from offboarding.models import gates
from offboarding.models.gates import DATA, SETTLEMENT, Gate
from offboarding.models.messages import (
    ApproveGate,
    ApproveSettlement,
    CompleteTask,
    DisputeSettlement,
    RejectData,
    RejectGate,
    VerifyData,
)
from offboarding.models.playbook import MAX_ROUNDS
from offboarding.workflows.rejection import Rejected, waiting
from offboarding.workflows.state import (
    MAX_EXPORTS,
    MAX_NOTE,
    MAX_STATEMENT_VERSIONS,
    Answer,
    OffboardingState,
    clip,
)


def _decider(s: OffboardingState, gate: Gate, who: str) -> None:
    # A contact's address after a fix-contact is the one their link was minted for.
    deciders = [a for d in gate.deciders_in(s.client) for a in (d, s.address(d))]
    if who.lower() not in [a.lower() for a in deciders]:
        if gate.id in gates.BUILT_IN:
            role = str(gate.deciders).split(".")[-1].replace("_", " ")
            raise Rejected(f"{who} is not a {role} approver for this client")
        raise Rejected(f"{who} is not one who decides {gate.title!r} for this client")


def _gate_decision(s: OffboardingState, name: str, gate: Gate, by: str) -> None:
    """What every gate's decision needs: the gate waits, the sender decides it, and it
    is not decided yet."""
    waiting(s, name, gate.wait)
    _decider(s, gate, by)


def _undecided(s: OffboardingState, gate: Gate, noun: str) -> None:
    if gate.id in s.pending.answers:
        raise Rejected(f"a decision on this {noun} was already recorded")


def _check_approve(s: OffboardingState, msg: ApproveSettlement | DisputeSettlement) -> None:
    _gate_decision(s, "approve-settlement", SETTLEMENT, msg.by)
    current = s.status.statements[-1] if s.status.statements else None
    if current is None or not current.hash.startswith(msg.statement_hash):
        raise Rejected(f"statement {msg.statement_hash[:12]} is not the current statement"
                       + (f" (v{current.version}, {current.hash[:12]})" if current else ""))
    _undecided(s, SETTLEMENT, "statement")


def _approve(s: OffboardingState, msg: ApproveSettlement, now: datetime) -> str:
    s.pending.answers[SETTLEMENT.id] = Answer(True, msg)
    return f"statement {msg.statement_hash[:12]} approved"


def _check_dispute(s: OffboardingState, msg: DisputeSettlement) -> None:
    _check_approve(s, msg)
    if len(s.status.statements) >= MAX_STATEMENT_VERSIONS:
        raise Rejected(f"statement v{len(s.status.statements)} is the last version an "
                       f"offboarding issues (at most {MAX_STATEMENT_VERSIONS}); settle what "
                       "remains outside and approve it")


def _dispute(s: OffboardingState, msg: DisputeSettlement, now: datetime) -> str:
    s.pending.answers[SETTLEMENT.id] = Answer(False, msg)
    return f"statement {msg.statement_hash[:12]} disputed: {msg.reason}"


def _check_verify(s: OffboardingState, msg: VerifyData) -> None:
    _gate_decision(s, "verify-data", DATA, msg.by)
    package = s.status.data_packages[-1]
    if msg.checksum != package.manifest_sha256:
        raise Rejected(f"checksum {msg.checksum} does not match the manifest of export "
                       f"{package.attempt}; compute the SHA-256 of manifest.json again")
    _undecided(s, DATA, "export")


def _verify(s: OffboardingState, msg: VerifyData, now: datetime) -> str:
    s.pending.answers[DATA.id] = Answer(True, msg)
    return f"data verified with checksum {msg.checksum[:12]}"


def _check_reject(s: OffboardingState, msg: RejectData) -> None:
    _gate_decision(s, "reject-data", DATA, msg.by)
    _undecided(s, DATA, "export")
    if len(s.status.data_packages) >= MAX_EXPORTS:
        raise Rejected(f"export {len(s.status.data_packages)} is the last one an offboarding "
                       f"makes (at most {MAX_EXPORTS}); agree on the rest with ops and "
                       "verify it")


def _reject(s: OffboardingState, msg: RejectData, now: datetime) -> str:
    s.pending.answers[DATA.id] = Answer(False, msg)
    return f"data rejected: {msg.reason}"


def _playbook_gate(s: OffboardingState, name: str, msg: ApproveGate) -> Gate:
    gate = s.gates.get(msg.gate)
    if gate is None or gate.id in gates.BUILT_IN:
        own = [g for g in s.gates if g not in gates.BUILT_IN]
        raise Rejected(f"{name}: no playbook gate {msg.gate!r} in this offboarding; its "
                       f"gates are: {', '.join(own) or 'none'}"
                       + (f" ({msg.gate} is decided with {gate.approve} / {gate.reject})"
                          if gate else ""))
    _gate_decision(s, name, gate, msg.by)
    current = s.gate_round(gate.id)
    if current is None or not current.document.startswith(msg.document):
        raise Rejected(f"{msg.document[:12]} is not the current round of {gate.id}"
                       + (f" (round {current.round}, {current.document[:12]})"
                          if current else ""))
    _undecided(s, gate, "gate")
    return gate


def _check_approve_gate(s: OffboardingState, msg: ApproveGate) -> None:
    _playbook_gate(s, "approve-gate", msg)


def _approve_gate(s: OffboardingState, msg: ApproveGate, now: datetime) -> str:
    s.pending.answers[msg.gate] = Answer(True, msg)
    return f"{s.gates[msg.gate].title} approved"


def _check_reject_gate(s: OffboardingState, msg: RejectGate) -> None:
    _playbook_gate(s, "reject-gate", msg)
    current = s.gate_round(msg.gate)
    if current is not None and current.round >= MAX_ROUNDS:
        raise Rejected(f"round {current.round} is the last one a gate asks (at most "
                       f"{MAX_ROUNDS}); agree on the rest with ops and approve it")


def _reject_gate(s: OffboardingState, msg: RejectGate, now: datetime) -> str:
    s.pending.answers[msg.gate] = Answer(False, msg)
    return f"{s.gates[msg.gate].title} rejected: {msg.reason}"


def _check_task(s: OffboardingState, msg: CompleteTask) -> None:
    task = s.task(msg.task)
    if task is None:
        raise Rejected(f"unknown task {msg.task!r}; tasks are: "
                       + ", ".join(t.key for t in s.status.tasks))
    if task.done:
        raise Rejected(f"task {msg.task} was already completed by {task.by}")


def _complete_task(s: OffboardingState, msg: CompleteTask, now: datetime) -> str:
    task = s.task(msg.task)
    assert task is not None
    task.done, task.at, task.by, task.note = True, now, msg.by, clip(msg.note, MAX_NOTE)
    return f"task {msg.task} completed"


RULES: dict[str, tuple[Callable[[OffboardingState, Any], None],
                        Callable[[OffboardingState, Any, datetime], str]]] = {
    "approve-settlement": (_check_approve, _approve),
    "dispute-settlement": (_check_dispute, _dispute),
    "verify-data": (_check_verify, _verify),
    "reject-data": (_check_reject, _reject),
    "approve-gate": (_check_approve_gate, _approve_gate),
    "reject-gate": (_check_reject_gate, _reject_gate),
    "complete-task": (_check_task, _complete_task),
}
