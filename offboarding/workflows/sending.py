"""Sending one email through the Mailer activity, with the context every template
shares. Mail that a checklist step depends on goes through ``mail.email``, which turns a
refused recipient into a problem for ops; what is here is the sending itself and the
best-effort ``notify`` for reminders and alerts, which belong to no step."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError

from offboarding.activities.email import Mailer
from offboarding.models.records import Attachment, EmailReceipt, EmailRequest, LinkRequest
from offboarding.workflows.context import Run

RETRY_FOREVER = RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                            maximum_interval=timedelta(minutes=10))
"""Transient faults are retried until they pass; faults only people can fix are raised
non-retryable by the activities and become problems (``problems.until_done``)."""


def base_context(run: Run, extra: dict[str, Any] | None) -> dict[str, Any]:
    status = run.s.status
    return {**run.client.mail_context(end_date=status.contract_end,
                                      short_notice=status.short_notice,
                                      workflow_id=run.workflow_id),
            **(extra or {})}


def send(run: Run, key: str, template: str, to: list[str], *, cc: list[str] | None = None,
         context: dict[str, Any], attachments: list[Attachment] | None = None,
         to_ops: bool = False, link: LinkRequest | None = None) -> Awaitable[EmailReceipt]:
    """One try of one message. Addresses are read now, so a fix-contact applies to the
    next try."""
    s, playbook = run.s, run.inp.playbook
    req = EmailRequest(
        workflow_id=run.workflow_id, run_id=s.status.run_id, key=key, template=template,
        to=[s.address(a) for a in to], cc=[s.address(a) for a in cc or []],
        to_ops=to_ops, context=context, attachments=attachments or [], link=link)
    if playbook is not None:  # its words, carried with the input: no file is read here
        req.template_text = playbook.templates.get(template)
        req.sender_name, req.reply_to = playbook.sender_name, playbook.reply_to
    return workflow.execute_activity_method(
        Mailer.send_email, req,
        # Short, so a send lost with a crashed worker is retried within a minute.
        start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY_FOREVER,
        summary=f"email {key}",
    )


async def notify(run: Run, key: str, template: str, to: list[str], *,
                 extra: dict[str, Any] | None = None, to_ops: bool = False,
                 link: LinkRequest | None = None) -> None:
    """A reminder or an alert: a failure is recorded and the offboarding moves on."""
    context = base_context(run, extra)
    try:
        run.s.add_email(await send(run, key, template, to, context=context, to_ops=to_ops,
                                   link=link))
    except ActivityError as err:
        if cancelled(err):
            raise
        run.s.ignore(run.clock.now(), f"email {key}", None, f"not delivered: {cause(err)}")
        run.vis.publish()


def cancelled(err: ActivityError) -> bool:
    """We stopped the activity ourselves (a cancel): not a failure to report."""
    return isinstance(err.cause, CancelledError)


def cause(err: BaseException) -> str:
    inner = err.__cause__ or err
    return getattr(inner, "message", None) or str(inner)
