"""Asking approvers for a decision: one message per person, each carrying that person's
own signed link to the approvals portal (the mailer signs it; see security/links.py).

Offboardings that began before links existed go on as they started: they mailed the
statement to billing only and one reminder to all approvers, and replaying them must
issue the same commands. ``workflow.patched(patches.APPROVAL_LINKS)`` tells the two apart."""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from offboarding.models.records import LinkRequest
from offboarding.workflows import patches
from offboarding.workflows.context import Run
from offboarding.workflows.mail import email
from offboarding.workflows.sending import notify
from offboarding.workflows.waits import together

"""Stored in histories as a marker: never rename it."""


def links_on() -> bool:
    return workflow.patched(patches.APPROVAL_LINKS)


def unique(people: list[str]) -> list[str]:
    """The people in order, each once (addresses compared without case)."""
    first: dict[str, str] = {}
    for person in people:
        first.setdefault(person.casefold(), person)
    return list(first.values())


async def ask(run: Run, key: str, template: str, step: str, people: list[str],
              link: LinkRequest, extra: dict[str, Any]) -> None:
    """Each person their own message (key ``<key>-<n>``, n counting from 1 in the order
    the client file lists them), sent side by side."""
    await together(*(email(run, f"{key}-{n}", template=template, step=step, to=[person],
                           extra=extra, link=link) for n, person in enumerate(unique(people), 1)))


async def remind(run: Run, people: list[str], link: LinkRequest, before: list[str],
                 key: str, context: dict[str, Any]) -> None:
    """A reminder: with links, one per person with a fresh link; in offboardings begun
    before links, one message to ``before``, as they always did."""
    if not links_on():
        await notify(run, key, "reminder", before, extra=context)
        return
    await together(*(notify(run, f"{key}-{n}", "reminder", [person], extra=context, link=link)
                     for n, person in enumerate(unique(people), 1)))
