"""Mail a checklist step cannot go on without. A refused recipient or an unbuildable
message holds that step up for ops (fix-contact, retry-step or skip-step); the caller
names the step because the stage cannot: in a termination, settlement and data transfer
run side by side."""

from __future__ import annotations

from typing import Any

from offboarding.models.records import Attachment, LinkRequest
from offboarding.workflows.context import Run
from offboarding.workflows.problems import until_done
from offboarding.workflows.sending import base_context, send


async def email(run: Run, key: str, *, template: str, step: str, to: list[str],
                cc: list[str] | None = None, extra: dict[str, Any] | None = None,
                attachments: list[Attachment] | None = None,
                link: LinkRequest | None = None) -> None:
    """``key`` makes the Message-ID and the outbox record (exactly-once): never rename one.
    ``template`` names the files in activities/templates, ``step`` the checklist step a
    refused recipient holds up."""
    context = base_context(run, extra)
    receipt = await until_done(run, f"mail-{key}", step, lambda: send(
        run, key, template, to, cc=cc, context=context, attachments=attachments, link=link))
    s = run.s
    if receipt is None:
        s.ignore(run.clock.now(), f"email {key}", None, "skipped by ops")
        return
    s.add_email(receipt)
    if receipt.refused:
        s.ignore(run.clock.now(), f"email {key}", None,
                 "not delivered to " + ", ".join(receipt.refused))
        run.vis.publish()
