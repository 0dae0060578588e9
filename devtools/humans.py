"""Scripted people, for the demo and the benchmark: what ops, finance and the data steward
of the example client answer to each wait. The answer carries a key that makes each
one happen once (a statement version, an export attempt) and the CLI flags a person would
type for it."""

from __future__ import annotations

from dataclasses import dataclass

from offboarding.models.messages import (
    Adjustment,
    ApproveSettlement,
    DisputeSettlement,
    MeetingHeld,
    Message,
    RecordFeedback,
    VerifyData,
)
from offboarding.models.stages import Wait
from offboarding.models.status import OffboardingStatus

FINANCE = "finance.lead@example.com"
STEWARD = "tom.becker@acme-analytics.example"
NEEDS_STATUS = (Wait.SETTLEMENT_APPROVAL, Wait.DATA_VERIFICATION)
"""The answers that depend on the offboarding's status (which version, which checksum)."""


@dataclass(frozen=True)
class Answer:
    once: tuple[str, ...]
    action: str
    message: Message
    flags: str


def answer(wait: Wait, st: OffboardingStatus | None, *, ops: str = "ops",
           dispute_first: bool = False) -> Answer | None:
    """What a person answers to ``wait``; ``st`` is needed for NEEDS_STATUS only."""
    if wait is Wait.MEETING:
        return Answer((wait,), "meeting-held", MeetingHeld(by=ops, notes="Reviewed KPIs"),
                      f"--by {ops} --notes 'Reviewed KPIs'")
    if wait is Wait.FEEDBACK:
        return Answer((wait,), "record-feedback", RecordFeedback(
            by=ops, nps=9, csat=5, comment="Great partnership"),
            f"--by {ops} --nps 9 --csat 5 --comment 'Great partnership'")
    if st is None or wait not in st.waits:
        return None
    if wait is Wait.SETTLEMENT_APPROVAL:
        stmt = st.statements[-1]
        once = (wait, str(stmt.version))
        if dispute_first and stmt.version == 1:
            return Answer(once, "dispute-settlement", DisputeSettlement(
                by=FINANCE, statement_hash=stmt.short_hash, reason="Late fee waived",
                adjustments=[Adjustment(description="Waived late fee", amount="-150.00")]),
                f"--by {FINANCE} --statement {stmt.short_hash} --reason 'Late fee waived' "
                "--adjust 'Waived late fee=-150.00'")
        return Answer(once, "approve-settlement",
                      ApproveSettlement(by=FINANCE, statement_hash=stmt.short_hash),
                      f"--by {FINANCE} --statement {stmt.short_hash}")
    if wait is Wait.DATA_VERIFICATION:
        pkg = st.data_packages[-1]
        checksum = pkg.manifest_sha256  # the steward's own check is played by the demo's links
        return Answer((wait, str(pkg.attempt)), "verify-data",
                      VerifyData(by=STEWARD, checksum=checksum),
                      f"--by {STEWARD} --checksum {checksum}")
    return None
