"""The final settlement: a statement to the client's billing contact and the finance
approvers, disputed (a new version with adjustments) until it is approved."""

from __future__ import annotations

import functools

from offboarding.models.messages import Adjustment
from offboarding.models.records import LinkRequest
from offboarding.models.settlement import compute_statement
from offboarding.models.stages import Stage, StepKey, Wait
from offboarding.workflows import asking
from offboarding.workflows.context import Run
from offboarding.workflows.mail import email
from offboarding.workflows.waits import await_human


async def settlement(run: Run) -> None:
    s, p, t, clock = run.s, run.s.pending, run.inp.timings, run.clock
    billing = run.client.contacts.billing.email
    run.enter(Stage.SETTLEMENT)
    adjustments: list[Adjustment] = []
    while True:
        version = len(s.status.statements) + 1
        statement = compute_statement(run.client.account, version=version,
                                      issued=clock.today(), adjustments=adjustments)
        s.add_statement(statement)
        await email(run, f"statement-v{version}", template="settlement_statement",
                    step=StepKey.SETTLEMENT, to=[billing],
                    extra={"statement": statement.model_dump(mode="json")})
        finance = list(run.client.approvers.finance)
        link = LinkRequest(family="settlement", document=statement.hash)
        if asking.links_on():
            await asking.ask(run, f"statement-v{version}-approval", "settlement_approval",
                             StepKey.SETTLEMENT, finance, link,
                             {"statement": statement.model_dump(mode="json")})
        run.mark(StepKey.SETTLEMENT, "waiting",
                 f"statement v{version} ({statement.short_hash}) sent; balance "
                 f"{statement.currency} {statement.balance} owed by {statement.owed_by}")
        await await_human(
            run, Wait.SETTLEMENT_APPROVAL,
            lambda: p.approved is not None or p.dispute is not None,
            to=finance, remind=functools.partial(asking.remind, run, finance, link, finance),
            reminder_every=t.settlement_reminder_days,
            escalate_after=t.settlement_escalation_days,
            how=f"Approve or dispute statement {statement.short_hash}: offboarding "
                f"approve-settlement {run.workflow_id} --statement "
                f"{statement.short_hash} --by <you>",
        )
        if p.dispute is None:
            break
        adjustments += p.dispute.adjustments
        p.dispute = None
    assert p.approved is not None
    await email(run, "settlement-confirmed", template="settlement_confirmed",
                step=StepKey.SETTLEMENT, to=[billing],
                extra={"statement": statement.model_dump(mode="json")})
    run.mark(StepKey.SETTLEMENT, "done",
             f"statement v{statement.version} ({statement.short_hash}) approved",
             by=p.approved.by)
