"""The final settlement: a statement to the client's billing contact and the finance
approvers, disputed (a new version with adjustments) until it is approved. A gate
(``models/gates.SETTLEMENT``) run by the one gate loop."""

from __future__ import annotations

from offboarding.models.gates import SETTLEMENT
from offboarding.models.messages import Adjustment, DisputeSettlement
from offboarding.models.settlement import compute_statement
from offboarding.models.stages import Stage, StepKey
from offboarding.workflows.context import Run
from offboarding.workflows.gate_loop import Issued, decide
from offboarding.workflows.mail import email
from offboarding.workflows.state import Answer


async def settlement(run: Run) -> None:
    s, t, clock = run.s, run.inp.timings, run.clock
    billing = run.client.contacts.billing.email
    run.enter(Stage.SETTLEMENT)
    adjustments: list[Adjustment] = []

    async def issue() -> Issued:
        version = len(s.status.statements) + 1
        statement = compute_statement(run.client.account, version=version,
                                      issued=clock.today(), adjustments=adjustments)
        s.add_statement(statement)
        shown = {"statement": statement.model_dump(mode="json")}
        await email(run, f"statement-v{version}", template="settlement_statement",
                    step=StepKey.SETTLEMENT, to=[billing], extra=shown)
        return Issued(
            document=statement.hash, key=f"statement-v{version}-approval", context=shown,
            told=SETTLEMENT.deciders_in(run.client),
            detail=f"statement v{version} ({statement.short_hash}) sent; balance "
                   f"{statement.currency} {statement.balance} owed by {statement.owed_by}",
            how=f"Approve or dispute statement {statement.short_hash}: offboarding "
                f"approve-settlement {run.workflow_id} --statement "
                f"{statement.short_hash} --by <you>")

    async def disputed(answer: Answer) -> bool:
        assert isinstance(answer.msg, DisputeSettlement)
        adjustments.extend(answer.msg.adjustments)
        return True

    result = await decide(run, SETTLEMENT, issue, disputed,
                          reminder_days=t.settlement_reminder_days,
                          escalation_days=t.settlement_escalation_days)
    assert result is not None
    statement, approved = s.status.statements[-1], result[1]
    await email(run, "settlement-confirmed", template="settlement_confirmed",
                step=StepKey.SETTLEMENT, to=[billing],
                extra={"statement": statement.model_dump(mode="json")})
    run.mark(StepKey.SETTLEMENT, "done",
             f"statement v{statement.version} ({statement.short_hash}) approved",
             by=approved.msg.by)
