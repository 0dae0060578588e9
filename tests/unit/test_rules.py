"""The offboarding's rules on their own, without a server (workflows/state.py is pure):
what two ops people must agree on, and what keeps the status small."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from offboarding.activities.archive import Archiver
from offboarding.config import Settings
from offboarding.models.client_file import ClientFile
from offboarding.models.messages import (
    Adjustment,
    ApproveSettlement,
    DisputeSettlement,
    FixContact,
    SkipStep,
    why_invalid,
)
from offboarding.models.settlement import compute_statement
from offboarding.models.stages import Wait
from offboarding.workflows.rules import Rejected, apply, validate
from offboarding.workflows.state import MAX_IGNORED, MAX_STATEMENT_VERSIONS, OffboardingState
from tests.helpers import client_file

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def _state(second_ops: bool = True) -> tuple[OffboardingState, ClientFile]:
    cf = client_file("termination")
    return OffboardingState("offboarding-x", cf, second_ops=second_ops), cf


def test_one_person_cannot_redirect_a_contact_alone() -> None:
    """Issue 10, row 15: ``fix-contact --by anyone`` sent the next statement to an
    attacker's address."""
    s, cf = _state()
    attacker = FixContact(by="anyone", role="billing", email="attacker@evil.example")
    validate(s, "fix-contact", attacker, "cli", NOW)
    detail = apply(s, "fix-contact", attacker, "cli", NOW)
    assert "proposed by anyone; a second ops person must confirm it" in detail
    assert s.address(cf.contacts.billing.email) == cf.contacts.billing.email, "not applied"
    with pytest.raises(Rejected, match="anyone proposed this already; a second ops person"):
        validate(s, "fix-contact", attacker.model_copy(update={"by": "ANYONE"}), "cli", NOW)
    confirm = attacker.model_copy(update={"by": "ops-lead"})
    validate(s, "fix-contact", confirm, "cli", NOW)
    apply(s, "fix-contact", confirm, "cli", NOW)
    assert s.address(cf.contacts.billing.email) == "attacker@evil.example"
    assert s.status.proposals == []
    [proposed, applied] = s.status.decisions
    assert proposed.action == "fix-contact (proposed)" and proposed.by == "anyone"
    assert applied.by == "ops-lead" and applied.proposed_by == "anyone"
    html = Archiver(Settings(_env_file=None)).env.get_template("closure_report.html").render(
        r=s.status, generated=NOW)
    assert "ops-lead (proposed by anyone)" in html


def test_skipping_access_revocation_needs_a_second_person_other_skips_do_not() -> None:
    s, _ = _state()
    access = s.raise_problem("access-crm", "access-revocation", "401", NOW)
    mail = s.raise_problem("mail-farewell", "farewell", "refused", NOW)
    apply(s, "skip-step", SkipStep(by="al", problem="mail-farewell", reason="gone"), "cli", NOW)
    assert mail.resolution == "skip", "an ordinary skip needs one person"
    apply(s, "skip-step", SkipStep(by="al", problem="access-crm", reason="later"), "cli", NOW)
    assert access.resolution is None
    with pytest.raises(Rejected, match="a second ops person"):
        validate(s, "skip-step", SkipStep(by="al", problem="access-crm", reason="later"),
                 "cli", NOW)
    apply(s, "skip-step", SkipStep(by="bo", problem="access-crm", reason="later"), "cli", NOW)
    assert access.resolution == "skip" and access.resolved_by == "bo"


def test_the_second_person_rule_can_be_turned_off() -> None:
    s, cf = _state(second_ops=False)
    apply(s, "fix-contact", FixContact(by="al", role="billing", email="ap@new.example"), "cli", NOW)
    assert s.address(cf.contacts.billing.email) == "ap@new.example"


def test_disputes_end_at_the_last_statement_version() -> None:
    """Issue 10, row 6: each version is kept (and emailed); their number is bounded."""
    s, cf = _state()
    s.start_wait(Wait.SETTLEMENT_APPROVAL, NOW, None)
    for version in range(1, MAX_STATEMENT_VERSIONS + 1):
        s.add_statement(compute_statement(cf.account, version=version, issued=date(2026, 11, 1),
                                          adjustments=[]))
    dispute = DisputeSettlement(by=cf.approvers.finance[0], reason="again",
                                statement_hash=s.status.statements[-1].hash,
                                adjustments=[Adjustment(description="x", amount=Decimal(1))])
    with pytest.raises(Rejected, match=f"statement v{MAX_STATEMENT_VERSIONS} is the last"):
        validate(s, "dispute-settlement", dispute, "cli", NOW)
    assert [st.lines_omitted > 0 for st in s.status.statements] == \
        [True] * (MAX_STATEMENT_VERSIONS - 1) + [False]
    assert s.status.statements[-1].lines, "the current statement stays whole"


def test_a_flood_of_ignored_messages_keeps_the_status_small() -> None:
    s, _ = _state()
    for n in range(MAX_IGNORED * 3):
        s.ignore(NOW, f"noise-{n}", None, "no such action")
    assert len(s.status.ignored) == MAX_IGNORED and s.status.ignored_total == MAX_IGNORED * 3
    assert s.status.ignored[-1].action == f"noise-{MAX_IGNORED * 3 - 1}"


def test_a_malformed_message_is_explained_without_repeating_it() -> None:
    """What a refused signal sent is not copied into the status (found by an attacker's
    pass: pydantic's text quoted the input and linked its docs)."""
    with pytest.raises(ValidationError) as err:
        ApproveSettlement.model_validate({"by": "x", "statement_hash": "SECRET-SECRET"})
    why = why_invalid(err.value)
    assert why.startswith("statement_hash: String should match pattern")
    assert "SECRET" not in why and "errors.pydantic.dev" not in why
