"""Where a playbook changes the course of an offboarding (``models/playbook.py``): its
gates and tasks follow the step they are placed after, and the optional steps it
switched off are skipped. Without a playbook none of this issues a command, so every
offboarding recorded before playbooks replays as it ran."""

from __future__ import annotations

import asyncio
import contextlib

from offboarding.models.stages import Stage, StepKey
from offboarding.workflows.context import Run
from offboarding.workflows.gate_loop import playbook_gate, playbook_task
from offboarding.workflows.waits import together


async def then(run: Run, step: str) -> None:
    """What the playbook placed after ``step``: its tasks are opened (their owners work
    beside the offboarding), its gates are decided one after the other."""
    playbook = run.inp.playbook
    if playbook is None:
        return
    for task in playbook.tasks_after(step):
        run.background.append(asyncio.create_task(playbook_task(run, task)))
    for gate in playbook.gates_after(step):
        await playbook_gate(run, gate)
        await then(run, gate.id)


def switched_off(run: Run, step: str) -> bool:
    """The playbook switched this optional step off: it is marked skipped, saying so."""
    playbook = run.inp.playbook
    if playbook is None or playbook.on(step):
        return False
    run.mark(step, "skipped", f"switched off by playbook {playbook.label}")
    return True


async def tasks_done(run: Run) -> None:
    """The archive records the whole checklist: every task opened must be done first."""
    open_tasks = [t.key for t in run.s.status.tasks if t.owner and not t.done]
    if open_tasks:
        run.enter(Stage.ARCHIVE)
        run.mark(StepKey.ARCHIVE, "waiting", "for the tasks: " + ", ".join(open_tasks))
        run.vis.publish()
    if run.background:
        await together(*run.background)


async def stop_tasks(run: Run) -> None:
    """Ops renewed or cancelled: the tasks' waits end with the offboarding."""
    for task in run.background:
        task.cancel()
    for task in run.background:
        with contextlib.suppress(BaseException):
            await task
    for manual in run.s.status.tasks:
        run.s.end_wait(f"task-{manual.key}")
