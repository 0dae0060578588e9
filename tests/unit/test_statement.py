"""Issue 10, row 11: every form of the settlement statement (the email, the status, the
closure report) adds up line by line to its balance. The balance is recomputed here from
the printed lines for a table of accounts, with no server: the rule is pure."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from offboarding.activities.archive import Archiver
from offboarding.activities.email import Mailer
from offboarding.config import Settings
from offboarding.models.client_file import Account
from offboarding.models.messages import Adjustment
from offboarding.models.records import EmailRequest
from offboarding.models.settlement import Statement, compute_statement
from offboarding.workflows.state import OffboardingState
from tests.helpers import client_file

INV = {"issued": "2026-01-01", "due": "2026-02-01"}
ACCOUNTS: dict[str, tuple[dict[str, Any], list[Adjustment], str, str]] = {
    "all paid": ({"invoices": [{"number": "I-1", "amount": "100.00", "paid": "100.00", **INV}],
                  "payments": [{"reference": "P-1", "amount": "100.00",
                                "received": "2026-01-05"}]}, [], "0.00", "nobody"),
    "partly paid": ({"invoices": [{"number": "I-1", "amount": "1000.00", "paid": "400.00", **INV},
                                  {"number": "I-2", "amount": "250.00", **INV}],
                     "payments": [{"reference": "P-1", "amount": "400.00",
                                   "received": "2026-01-05"}]}, [], "850.00", "client"),
    "credit above outstanding": ({"invoices": [{"number": "I-1", "amount": "500.00", **INV}],
                                  "credits": [{"reference": "C-1", "amount": "800.00",
                                               "reason": "Outage credit"}]},
                                 [], "-300.00", "company"),
    "refund due": ({"invoices": [{"number": "I-1", "amount": "200.00", **INV}],
                    "prepayments": [{"reference": "DEP-1", "amount": "1000.00"}]},
                   [], "-800.00", "company"),
    "adjustment flips to the company": (
        {"invoices": [{"number": "I-1", "amount": "300.00", **INV}]},
        [Adjustment(description="Goodwill", amount=Decimal("-500.00"))], "-200.00", "company"),
    "adjustment flips to the client": (
        {"credits": [{"reference": "C-1", "amount": "300.00", "reason": "Credit"}]},
        [Adjustment(description="Late fee", amount=Decimal("1000.00"))], "700.00", "client"),
    "the example": ({}, [Adjustment(description="Waived fee", amount=Decimal("-150.00"))],
                    "10800.50", "client"),
}
AMOUNT = r"(-?[\d,]+\.\d\d)"


def _number(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def _statement(case: str) -> Statement:
    account, adjustments, _, _ = ACCOUNTS[case]
    acc = client_file().account if case == "the example" else \
        Account.model_validate({"currency": "EUR", **account})
    return compute_statement(acc, version=2, issued=date(2026, 3, 1), adjustments=adjustments)


@pytest.mark.parametrize("case", ACCOUNTS)
def test_the_status_lines_add_up_to_the_balance(case: str) -> None:
    st = _statement(case)
    _, _, balance, owed_by = ACCOUNTS[case]
    assert sum((line.amount for line in st.lines), Decimal(0)) == st.balance
    assert st.balance == Decimal(balance) and st.owed_by == owed_by
    assert st.outstanding_invoices - st.credits - st.refunds_due + st.adjustments == st.balance


@pytest.mark.parametrize("case", ACCOUNTS)
def test_the_emailed_statement_adds_up_line_by_line(case: str) -> None:
    st = _statement(case)
    cf = client_file()
    mailer = Mailer(Settings(_env_file=None))
    msg = mailer.render(EmailRequest(
        workflow_id="wf", key="statement-v2", template="settlement_statement",
        to=["ap@client.example"], context={
            "client_name": cf.client_name, "billing": cf.contacts.billing.model_dump(),
            "contract": cf.contract.model_dump(mode="json"),
            "account_manager": "Dana", "statement": st.model_dump(mode="json")}))
    text = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    raw = text.get_payload(decode=True)
    assert isinstance(raw, bytes)
    body = raw.decode()
    lines = [_number(m) for m in re.findall(rf"^- .*?: \w{{3}} {AMOUNT}", body, re.M)]
    totals = [_number(m) for m in re.findall(
        rf"^(?:Open invoices|Credits|Refunds due to you|Adjustments): \w{{3}} {AMOUNT}$",
        body, re.M)]
    [printed] = [_number(m) for m in re.findall(rf"^Balance: \w{{3}} {AMOUNT}", body, re.M)]
    assert len(lines) == len(st.lines)
    assert sum(lines, Decimal(0)) == printed == st.balance, body
    assert sum(totals, Decimal(0)) == printed, body


@pytest.mark.parametrize("case", ACCOUNTS)
def test_the_closure_report_adds_up_line_by_line(case: str) -> None:
    st = _statement(case)
    cf = client_file()
    state = OffboardingState("wf", cf)
    state.status.statements.append(st)
    archiver = Archiver(Settings(_env_file=None))
    html = archiver.env.get_template("closure_report.html").render(
        r=state.status, generated=datetime.now(UTC))
    lines = [_number(m) for m in re.findall(rf'<td class="amount">{AMOUNT}</td>', html)]
    [balance] = [_number(m) for m in re.findall(rf'<td class="balance">{AMOUNT}</td>', html)]
    assert len(lines) == len(st.lines)
    assert sum(lines, Decimal(0)) == balance == st.balance
