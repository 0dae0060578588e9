"""The course of an offboarding under a playbook, step by step, for ``offboarding playbook
show``: the built-in steps of each path in the order the workflow runs them, the
playbook's gates and tasks where it places them, and the steps it switched off.

A gate or task follows its ``after`` step as ``workflows/playbook_steps.then`` runs them:
the tasks placed after a step are opened (their owners work beside the offboarding),
then its gates are decided one after another, each followed by what is placed after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from offboarding.models.playbook import GateSpec, Playbook, TaskSpec
from offboarding.models.stages import StepKey
from offboarding.workflows.state import STEPS

TITLES: dict[str, str] = {str(key): title for key, title in STEPS}
CONTRACT_END: list[str | tuple[str, str]] = [str(k) for k in StepKey]
"""Every built-in step, one after the other."""
TERMINATION: list[str | tuple[str, str]] = [
    StepKey.CONTRACT_REVIEW, "effective-date", StepKey.ACCESS_REVOCATION,
    (StepKey.SETTLEMENT, StepKey.DATA_TRANSFER), StepKey.KNOWLEDGE_TRANSFER,
    StepKey.ARCHIVE, StepKey.FAREWELL, StepKey.DATA_RETENTION, StepKey.KEEP_IN_TOUCH]
"""A termination skips the notice, its period, the review meeting and the feedback; a
pair runs side by side."""
PATHS = {"contract end": CONTRACT_END, "termination": TERMINATION}


@dataclass(frozen=True)
class Row:
    kind: str
    """``step``, ``wait``, ``gate`` or ``task``."""
    key: str
    title: str
    depth: int = 0
    """0 for a built-in step; a gate or task one more than what it follows."""
    off: bool = False
    """A step the playbook switched off: marked skipped when the offboarding gets there."""
    detail: str = ""


def deciders(gate: GateSpec) -> str:
    if isinstance(gate.deciders, list):
        return ", ".join(gate.deciders)
    group, _, role = gate.deciders.partition(".")
    who = role.replace("_", " ")
    return (f"the client file's {who} approvers ({gate.deciders})" if group == "approvers"
            else f"the client file's {who} contact ({gate.deciders})")


def _days(n: float) -> str:
    return f"{n:g} day" + ("" if n == 1 else "s")


def _gate(gate: GateSpec, depth: int) -> Row:
    binds = "" if gate.binds == "nothing" else f"; binds the {gate.binds}"
    return Row("gate", gate.id, gate.title, depth, detail=(
        f"decided by {deciders(gate)}{binds}; reminders every {_days(gate.reminder_days)}, "
        f"ops alerted after {_days(gate.escalation_days)}"))


def _task(task: TaskSpec, depth: int) -> Row:
    return Row("task", task.key, task.title, depth, detail=(
        f"owner {task.owner}; due in {_days(task.due_days)}, reminders every "
        f"{_days(task.reminder_days)}"))


def followers(playbook: Playbook | None, after: str, depth: int = 1) -> list[Row]:
    """What the playbook places after ``after``, in the order it runs."""
    if playbook is None:
        return []
    rows = [_task(t, depth) for t in playbook.tasks_after(after)]
    for gate in playbook.gates_after(after):
        rows += [_gate(gate, depth), *followers(playbook, gate.id, depth + 1)]
    return rows


def _step(playbook: Playbook | None, key: str, detail: str = "") -> list[Row]:
    off = playbook is not None and not playbook.on(key)
    return [Row("step", key, TITLES[key], off=off, detail=detail),
            *followers(playbook, key)]


def outline(playbook: Playbook | None) -> dict[str, list[Row]]:
    """Each path's rows in order; ``None`` is the built-in way."""
    paths: dict[str, list[Row]] = {}
    for name, steps in PATHS.items():
        rows: list[Row] = []
        for entry in steps:
            if entry == "effective-date":
                rows.append(Row("wait", "effective-date", "Wait for the effective date",
                                detail="at once when the termination has none"))
            elif isinstance(entry, tuple):
                first, second = entry
                rows += _step(playbook, first, f"side by side with {second}")
                rows += _step(playbook, second, f"side by side with {first}")
            else:
                rows += _step(playbook, str(entry))
        paths[name] = rows
    return paths
