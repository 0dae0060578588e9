"""Two tiny workflows that prove the servers work, separate from the product's workflow."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from offboarding.activities.email import Mailer
    from offboarding.models.records import EmailReceipt, EmailRequest


@workflow.defn
class SleepForDays:
    @workflow.run
    async def run(self, days: int) -> str:
        await workflow.sleep(timedelta(days=days), summary=f"sleep {days} days")
        return f"slept {days} days"


@workflow.defn
class SendOneEmail:
    @workflow.run
    async def run(self, req: EmailRequest) -> EmailReceipt:
        return await workflow.execute_activity_method(
            Mailer.send_email, req, start_to_close_timeout=timedelta(seconds=30))
