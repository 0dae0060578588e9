"""The one loop every approval gate runs (``models/gates.py``): issue a document, ask
the deciders (each their own link), wait with reminders and escalation, and on a
rejection let the gate decide what comes next (a new version, or ops). The final
settlement, the data verification and a playbook's gates are all this loop; a
playbook's tasks are here too, as they are asked and reminded the same way."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from offboarding.models.gates import TASK_FAMILY, Gate
from offboarding.models.playbook import GateSpec, TaskSpec
from offboarding.models.records import LinkRequest
from offboarding.workflows import asking
from offboarding.workflows.context import Run
from offboarding.workflows.mail import email
from offboarding.workflows.problems import ask_ops
from offboarding.workflows.state import Answer
from offboarding.workflows.waits import await_human


@dataclass
class Issued:
    """One version of what a gate's deciders are asked about."""

    document: str
    """What their links and decisions name."""
    key: str
    """The asking messages' key (each decider's is ``<key>-<n>``): never rename one."""
    detail: str
    """The checklist step's text while it waits."""
    how: str
    """How to decide without the link, for reminders."""
    told: list[str]
    """Who reminders go to in offboardings begun before links."""
    context: dict[str, Any] = field(default_factory=dict)
    tell: Callable[[bool], Awaitable[None]] | None = None
    """Sent after the deciders are asked (given whether they got links): the data
    steward's own message."""


async def decide(run: Run, gate: Gate, issue: Callable[[], Awaitable[Issued | None]],
                 rejected: Callable[[Answer], Awaitable[bool]], *, reminder_days: float,
                 escalation_days: float) -> tuple[Issued, Answer] | None:
    """Ask until the gate is approved: then the version approved and the decision. None
    when there is nothing to decide (``issue`` gave nothing) or the gate was given up
    after a rejection (``rejected`` returned False)."""
    answers = run.s.pending.answers
    while True:
        issued = await issue()
        if issued is None:
            return None
        deciders = gate.deciders_in(run.client)
        link = LinkRequest(family=gate.id, document=issued.document)
        if asking.links_on():
            await asking.ask(run, issued.key, gate.ask_template, gate.step, deciders, link,
                             issued.context)
        if issued.tell is not None:
            await issued.tell(asking.links_on())
        run.mark(gate.step, "waiting", issued.detail)
        await await_human(
            run, gate.wait, lambda: gate.id in answers, to=issued.told,
            remind=functools.partial(asking.remind, run, deciders, link, issued.told),
            reminder_every=reminder_days, escalate_after=escalation_days, how=issued.how,
            label=gate.label)
        answer = answers[gate.id]
        if answer.approved:
            return issued, answer
        del answers[gate.id]
        if not await rejected(answer):
            return None


async def playbook_gate(run: Run, spec: GateSpec) -> None:
    """A playbook's gate: its deciders asked by link about what it binds; a rejection
    stops it for ops (``retry-step`` asks again, ``skip-step`` goes on without it)."""
    s, gate = run.s, run.s.gates[spec.id]
    run.mark(gate.step, "active")
    deciders = gate.deciders_in(run.client)

    async def issue() -> Issued:
        bound = (s.status.statements[-1].hash if gate.binds == "statement"
                 and s.status.statements else s.status.data_packages[-1].manifest_sha256
                 if gate.binds == "export" and s.status.data_packages else None)
        asked = s.ask_gate(gate, bound, run.clock.now())
        document, n = asked.document, asked.round
        return Issued(
            document=document, key=f"gate-{gate.id}-{n}", told=deciders,
            detail=f"round {n} ({document[:12]}): asked {', '.join(deciders)}",
            how=f"offboarding approve-gate {run.workflow_id} --gate {gate.id} --document "
                f"{document[:12]} --by <you> (or reject-gate ... --reason ...)",
            context={"gate": asked.model_dump(mode="json")})

    async def rejected(answer: Answer) -> bool:
        why = f"{gate.title} rejected by {answer.msg.by}: {getattr(answer.msg, 'reason', '')}"
        then = "Agree with the deciders, then ask again"
        return await ask_ops(run, f"gate-{gate.id}", gate.step, why, then) == "retry"

    result = await decide(run, gate, issue, rejected, reminder_days=gate.reminder_days,
                          escalation_days=gate.escalation_days)
    if result is None:
        run.mark(gate.step, "skipped", "skipped by ops after a rejection")
    else:
        issued, answer = result
        run.mark(gate.step, "done", f"approved ({issued.document[:12]})", by=answer.msg.by)
    run.vis.publish()


async def playbook_task(run: Run, spec: TaskSpec) -> None:
    """A playbook's task: its owner gets a link to mark it done, reminders until then,
    and ops an alert once it is overdue. Ops may complete it for them at any time."""
    s, clock = run.s, run.clock
    task = s.task(spec.key)
    assert task is not None
    if task.done:
        return
    task.due = clock.now() + clock.days(spec.due_days)
    task.document = s.task_document(spec.key)
    link = LinkRequest(family=TASK_FAMILY, document=task.document)
    context = {"task": {**spec.model_dump(mode="json"), "due": clock.as_date(task.due)}}
    await email(run, f"task-{spec.key}", template="task_request", step=task.step,
                to=[spec.owner], extra=context, link=link)
    await await_human(
        run, f"task-{spec.key}", lambda: task.done, to=[spec.owner],
        remind=functools.partial(asking.remind, run, [spec.owner], link, [spec.owner]),
        reminder_every=spec.reminder_days, escalate_after=spec.due_days,
        how=f"offboarding complete-task {run.workflow_id} --task {spec.key} --by <you>",
        label=f"the task {spec.title!r}")

