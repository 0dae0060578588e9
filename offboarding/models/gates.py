"""Approval gates: one definition says everything about an approval, and everything that
deals with approvals reads it: the rules and link checks (``workflows/rules.py``,
``authority.py``), the one ask-wait-redo loop (``workflows/gate_loop.py``), the portal's
page and form, the Web UI's "who acts", the gauges and the demo's scripted people.

The final settlement and the data verification are the two built-in gates; a playbook
adds its own (``models/playbook.GateSpec``), decided with ``approve-gate`` / ``reject-gate``.
What histories and the outbox have stored stays as it was: the built-ins' action, wait,
problem and email names."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from offboarding.models.client_file import ClientFile
from offboarding.models.playbook import GateSpec, Role

TASK_FAMILY = "task"
"""The link family of a task's "mark it done" link."""


@dataclass(frozen=True)
class Gate:
    id: str
    """Also the family its links carry."""
    title: str
    step: str
    """The checklist step it holds."""
    wait: str
    """What the offboarding waits for meanwhile (the OffboardingWaitingFor search
    attribute, ``list --waiting-for``)."""
    who: str
    deciders: Role | tuple[str, ...]
    binds: Literal["statement", "export", "nothing"]
    approve: str
    """The action that approves, e.g. ``approve-settlement``."""
    reject: str
    choices: tuple[str, str]
    """The portal form's values for approve and reject."""
    labels: tuple[str, str]
    """The portal's buttons."""
    verbs: tuple[str, str]
    """What was done, as the portal says it: "approved", "disputed"."""
    on_reject: Literal["new-version", "ask-ops"]
    """A new version of the document is issued and asked about, or ops decide."""
    ask_template: str
    question: str = ""
    reminder_days: float = 3
    escalation_days: float = 10
    """Custom gates only: the built-ins' come from the offboarding's timings."""

    @property
    def who_acts(self) -> str:
        how = f"{self.approve} / {self.reject}"
        if self.approve == "approve-gate":
            how += f" --gate {self.id}"
        return f"{self.who} ({how})"

    @property
    def label(self) -> str:
        """The wait as messages name it: "settlement approval", or a playbook's title."""
        return self.wait.replace("-", " ") if self.id in BUILT_IN else self.title

    @property
    def actions(self) -> tuple[str, str]:
        return self.approve, self.reject

    def deciders_in(self, client: ClientFile) -> list[str]:
        if isinstance(self.deciders, tuple):
            return list(self.deciders)
        group, _, field = self.deciders.partition(".")
        if group == "approvers":
            return list(getattr(client.approvers, field))
        return [getattr(client.contacts, field).email]


SETTLEMENT = Gate(
    id="settlement", title="Final settlement", step="settlement",
    wait="settlement-approval", who="finance approver", deciders="approvers.finance",
    binds="statement", approve="approve-settlement", reject="dispute-settlement",
    choices=("approve", "dispute"), labels=("Approve", "Dispute"),
    verbs=("approved", "disputed"), on_reject="new-version",
    ask_template="settlement_approval")
DATA = Gate(
    id="data", title="Data export", step="data-transfer", wait="data-verification",
    who="data steward", deciders="approvers.data_verification", binds="export",
    approve="verify-data", reject="reject-data", choices=("verify", "reject"),
    labels=("The files match: confirm", "Reject: export again"),
    verbs=("verified", "rejected"), on_reject="new-version", ask_template="data_ready")
BUILT_IN: dict[str, Gate] = {g.id: g for g in (SETTLEMENT, DATA)}
RESERVED = frozenset({*BUILT_IN, TASK_FAMILY, "ops-action", "notice-period", "meeting",
                      "feedback", "settlement-approval", "data-verification"})
"""Names a playbook's gate or task cannot take: built-in families and waits."""


def custom(spec: GateSpec) -> Gate:
    deciders = spec.deciders if isinstance(spec.deciders, str) else tuple(spec.deciders)
    who = (deciders.split(".", 1)[1].replace("_", " ") if isinstance(deciders, str)
           else ", ".join(deciders))
    return Gate(id=spec.id, title=spec.title, step=spec.id, wait=spec.id, who=who,
                deciders=deciders, binds=spec.binds, approve="approve-gate",
                reject="reject-gate", choices=("approve", "reject"),
                labels=(spec.approve_label, spec.reject_label),
                verbs=("approved", "rejected"), on_reject="ask-ops",
                ask_template="gate_request", question=spec.question,
                reminder_days=spec.reminder_days, escalation_days=spec.escalation_days)


def table(specs: list[GateSpec]) -> dict[str, Gate]:
    """Every gate of one offboarding, by id: the built-ins and its playbook's."""
    return {**BUILT_IN, **{s.id: custom(s) for s in specs}}


def digest(*parts: str) -> str:
    """A document for what has no hash of its own (a playbook gate's round, a task): its
    links and decisions name it, and it differs between runs and rounds."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
