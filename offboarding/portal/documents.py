"""What a link is about, read from the offboarding's own status: the gate it decides (a
built-in one, or a playbook's as its rounds show it) or the task it completes, the
document it was issued for, whether that is still the current one, and what was decided
on it.

The status carries a playbook gate's rounds, not the playbook: the portal rebuilds the
gate from its newest round through ``gates.custom``, so its choices, actions and verbs
are those every playbook gate has, and nothing here repeats them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from offboarding.models.gates import BUILT_IN, DATA, SETTLEMENT, TASK_FAMILY, Gate, custom
from offboarding.models.playbook import GateSpec
from offboarding.models.records import DataPackage
from offboarding.models.settlement import Statement
from offboarding.models.status import Decision, GateRound, ManualTask, OffboardingStatus
from offboarding.security.links import LinkClaims

WAITS = {g.id: g.wait for g in BUILT_IN.values()}
"""The built-in gates' waits; a playbook gate waits under its own id, a task under
``task-<key>``."""
COMPLETE_TASK = "complete-task"
TASK_VERBS = {COMPLETE_TASK: "marked done"}


class UnknownDocument(Exception):
    """A genuine link for a decision or document this offboarding never issued; the
    text says which, in words for the person holding the link."""


Document = Statement | DataPackage | GateRound | ManualTask


@dataclass(frozen=True)
class Subject:
    claims: LinkClaims
    status: OffboardingStatus
    gate: Gate | None
    """The gate decided; None for a task."""
    statement: Statement | None
    """The settlement link's statement, or the statement a playbook gate's round binds."""
    package: DataPackage | None
    """The data link's export, or the export a playbook gate's round binds."""
    round: GateRound | None
    """A playbook gate's round the link was issued for."""
    task: ManualTask | None
    current: bool
    """It is the newest statement, export or round (a task has one document)."""
    decision: Decision | None
    """What was decided on it, by whom, how and when."""
    newest: Document
    open: bool
    """The offboarding waits for this very decision now: the form is shown."""

    @property
    def document(self) -> Document:
        found = self.task or self.round or self.statement or self.package
        assert found is not None
        return found

    @property
    def title(self) -> str:
        return self.task.title if self.task else self.gate.title if self.gate else ""

    @property
    def version(self) -> str:
        return _label(self.document)

    @property
    def newest_version(self) -> str:
        return _label(self.newest)

    @property
    def verbs(self) -> dict[str, str]:
        """What each action did, as the page says it: "approved", "disputed"."""
        if self.gate is None:
            return TASK_VERBS
        return dict(zip(self.gate.actions, self.gate.verbs, strict=True))


def _label(document: Document) -> str:
    if isinstance(document, Statement):
        return f"statement v{document.version}"
    if isinstance(document, DataPackage):
        return f"export {document.attempt}"
    if isinstance(document, GateRound):
        return f"round {document.round}"
    return "the task"


def gate_of(status: OffboardingStatus, family: str) -> Gate | None:
    """The gate a link's family names: a built-in, a playbook gate this offboarding has
    asked about, or None (a task, or nothing this offboarding decides)."""
    if family in BUILT_IN:
        return BUILT_IN[family]
    newest = next((r for r in reversed(status.gates) if r.gate == family), None)
    if newest is None or family == TASK_FAMILY:
        return None
    bound = next((s for s in status.statements if s.hash == newest.bound), None) or next(
        (p for p in status.data_packages if p.manifest_sha256 == newest.bound), None)
    labels: dict[str, Any] = dict(zip(("approve_label", "reject_label"), newest.labels,
                                      strict=False))  # the playbook's defaults if missing
    # Built unvalidated: what the workflow wrote was checked when the playbook was read.
    return custom(GateSpec.model_construct(
        id=family, title=newest.title, deciders=list(newest.asked), question=newest.question,
        binds="statement" if isinstance(bound, Statement) else
        "export" if isinstance(bound, DataPackage) else "nothing", **labels))


def task_of(status: OffboardingStatus, document: str) -> ManualTask | None:
    """The task whose owner's link names ``document``."""
    return next((t for t in status.tasks if t.document == document), None)


def about(status: OffboardingStatus, claims: LinkClaims) -> Subject:
    if claims.f == TASK_FAMILY:
        return _task(status, claims)
    gate = gate_of(status, claims.f)
    if gate is None:
        raise UnknownDocument("the link is for a decision this offboarding does not have")
    statement = package = round_ = None
    newest: Document
    if gate is SETTLEMENT:
        statement = next((s for s in status.statements if s.hash == claims.d), None)
        if statement is None:
            raise UnknownDocument("the link names a statement this offboarding never issued")
        newest = status.statements[-1]
        current = newest.hash == claims.d
    elif gate is DATA:
        package = next((p for p in status.data_packages if p.manifest_sha256 == claims.d),
                       None)
        if package is None:
            raise UnknownDocument("the link names an export this offboarding never made")
        newest = status.data_packages[-1]
        current = newest.manifest_sha256 == claims.d
    else:
        rounds = [r for r in status.gates if r.gate == gate.id]
        round_ = next((r for r in rounds if r.document == claims.d), None)
        if round_ is None:
            raise UnknownDocument(f"the link names a round of {gate.title!r} this "
                                  "offboarding never asked")
        newest = rounds[-1]
        current = newest.document == claims.d
        statement = next((s for s in status.statements if s.hash == round_.bound), None)
        package = next((p for p in status.data_packages if p.manifest_sha256 == round_.bound),
                       None)
    decision = _decided(status, claims.d, gate.actions)
    waiting = gate.wait in status.waits and _live(status)
    return Subject(claims, status, gate=gate, statement=statement, package=package,
                   round=round_, task=None, current=current, decision=decision, newest=newest,
                   open=current and decision is None and waiting)


def _task(status: OffboardingStatus, claims: LinkClaims) -> Subject:
    task = task_of(status, claims.d)
    if task is None:
        raise UnknownDocument("the link names a task this offboarding never asked for")
    decision = _decided(status, claims.d, (COMPLETE_TASK,))
    if decision is None and task.done:  # the status knows who did it, if not how
        decision = Decision(at=task.at or datetime.min, action=COMPLETE_TASK,
                            by=task.by or "ops", detail=task.note or f"task {task.key} done")
    return Subject(claims, status, gate=None, statement=None, package=None, round=None,
                   task=task, current=True, decision=decision, newest=task,
                   open=not task.done and _live(status))


def _decided(status: OffboardingStatus, document: str,
             actions: tuple[str, ...]) -> Decision | None:
    return next((d for d in reversed(status.decisions)
                 if d.about == document and d.action in actions), None)


def _live(status: OffboardingStatus) -> bool:
    return status.outcome is None and status.ended_as is None
