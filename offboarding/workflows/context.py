"""What every stage of one offboarding works with: its input, its state, its calendar,
its visibility, and the interruptions ops can cause (renew, cancel, terminate early).
The workflow class makes one; the stages receive it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from opentelemetry.context import Context
from temporalio import workflow

from offboarding.models.client_file import ClientFile
from offboarding.models.stages import Stage
from offboarding.models.status import OffboardingInput, StepState
from offboarding.workflows.clock import Clock
from offboarding.workflows.state import OffboardingState
from offboarding.workflows.visibility import Visibility


class Interrupted(Exception):
    """Unwinds the run when ops renew or cancel."""


class SwitchToTermination(Exception):
    """Unwinds the contract-end path when ops terminate early."""


@dataclass
class Run:
    inp: OffboardingInput
    s: OffboardingState
    clock: Clock
    vis: Visibility
    retention: asyncio.Task[None] | None = field(default=None)
    """Deleting our copy of the data waits for the retention period, beside the rest."""
    background: list[asyncio.Task[None]] = field(default_factory=list)
    """A playbook's tasks, each waiting for its owner beside the rest."""
    cause: Context | None = field(default=None)
    """The trace context of the latest accepted decision, until a wait follows it
    (``causes.py``)."""

    @property
    def client(self) -> ClientFile:
        return self.inp.client

    @property
    def workflow_id(self) -> str:
        return workflow.info().workflow_id

    def enter(self, stage: Stage, detail: str = "") -> None:
        self.s.enter(stage, self.clock.now(), detail)
        workflow.logger.info("stage %s", stage, extra={"step": str(stage)})

    def mark(self, key: str, state: StepState, detail: str | None = None,
             by: str | None = None) -> None:
        self.s.mark(key, state, self.clock.now(), detail, by)

    # ----- ops' interruptions ----------------------------------------------------------

    def interrupted(self) -> bool:
        p = self.s.pending
        switching = p.terminate is not None and self.s.status.reason == "contract_end"
        return p.cancel is not None or p.renew is not None or switching

    def check_interrupts(self) -> None:
        """Unwind to the workflow's run when ops renewed, cancelled or terminated early."""
        p = self.s.pending
        if p.cancel is not None or p.renew is not None:
            raise Interrupted()
        if p.terminate is not None and self.s.status.reason == "contract_end":
            raise SwitchToTermination()
