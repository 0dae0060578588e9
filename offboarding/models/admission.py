"""Rules a client file must meet to *start* an offboarding, beyond its shape.

They live apart from the model's validators on purpose: the model also decodes the inputs
of offboardings already recorded in Temporal's histories, which must keep decoding after a
rule is added (tests/replay/test_replay.py), and some rules need today's date, which a workflow
may not read. ``load_client_file`` (the CLI's validate and start) applies them.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import PurePosixPath

from offboarding.models.client_file import ClientFile

HORIZON_YEARS = 10
"""How far ahead an offboarding may plan: its end date and a termination's effective date.
Further is a typo (9999-12-31) rather than a plan, and would hold a workflow open forever."""


def horizon(today: date) -> date:
    return today + timedelta(days=HORIZON_YEARS * 365 + HORIZON_YEARS // 4)


def admission_problems(client: ClientFile, today: date) -> list[str]:
    """One line per rule broken, as ``field: why``; empty when the file may start."""
    problems: list[str] = []
    limit = horizon(today)
    if client.contract.end_date > limit:
        problems.append(f"contract.end_date: {client.contract.end_date} is more than "
                        f"{HORIZON_YEARS} years from today (after {limit})")
    effective = client.termination.effective_date if client.termination else None
    if effective is not None and effective > limit:
        problems.append(f"termination.effective_date: {effective} is more than "
                        f"{HORIZON_YEARS} years from today (after {limit})")
    own = client.client_id
    for n, data_set in enumerate(client.data_sets):
        if PurePosixPath(data_set.path).parts[0] != own:
            problems.append(
                f"data_sets.{n}.path: {data_set.path!r} is not in the client's own folder; "
                f"data sets of {own} live under {own}/ in the client data root")
    return problems
