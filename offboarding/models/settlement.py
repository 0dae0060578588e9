"""The final settlement statement: pure arithmetic on the account, so the workflow can
compute it deterministically and hash it to name the exact version an approver decides on."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from offboarding.models.client_file import Account
from offboarding.models.messages import Adjustment
from offboarding.models.money import Money


class StatementLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["invoice", "credit", "refund", "adjustment"]
    reference: str
    amount: Money
    """Signed: positive is owed by the client, negative is owed to the client."""
    due: date | None = None


class Statement(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    currency: str
    issued: date
    lines: list[StatementLine]
    outstanding_invoices: Money
    payments_received: Money
    credits: Money
    refunds_due: Money
    adjustments: Money
    balance: Money
    owed_by: Literal["client", "company", "nobody"]
    due: date | None
    hash: str
    lines_omitted: int = 0
    """How many lines a superseded statement had: only the current one is kept line by
    line in the status and the archive record (each version's lines are in the email that
    sent it), so a long account disputed many times stays far below Temporal's limits."""

    @property
    def short_hash(self) -> str:
        return self.hash[:12]

    def superseded(self) -> Statement:
        """This statement without its lines, once a newer version replaces it."""
        if not self.lines:
            return self
        return self.model_copy(update={"lines": [], "lines_omitted": len(self.lines)})


def compute_statement(
    account: Account,
    *,
    version: int,
    issued: date,
    adjustments: list[Adjustment],
) -> Statement:
    """Balance = open invoices - credits - refunds due + adjustments: the sum of the lines.

    An invoice's line is its open amount (amount - paid); the payments are that same money
    (the client file checks that they agree), so they appear only as a total, described as
    already deducted. Every printed form shows the lines and totals with the sign they
    carry into the balance, so a reader adding them up gets the balance
    (tests/unit/test_statement.py). The hash covers what the approver sees and must not change
    for a given account: approvers send it back.
    """
    zero = Decimal("0.00")
    lines: list[StatementLine] = []
    outstanding = zero
    for inv in account.invoices:
        open_amount = inv.amount - inv.paid
        if open_amount:
            outstanding += open_amount
            lines.append(
                StatementLine(kind="invoice", reference=inv.number, amount=open_amount, due=inv.due)
            )
    received = sum((p.amount for p in account.payments), zero)
    credits = sum((c.amount for c in account.credits), zero)
    lines += [StatementLine(kind="credit", reference=c.reason, amount=-c.amount)
              for c in account.credits]
    refunds = sum((p.amount for p in account.prepayments), zero)
    lines += [StatementLine(kind="refund", reference=p.reference, amount=-p.amount)
              for p in account.prepayments]
    adjusted = sum((a.amount for a in adjustments), zero)
    lines += [StatementLine(kind="adjustment", reference=a.description, amount=a.amount)
              for a in adjustments]
    balance = outstanding - credits - refunds + adjusted
    owed_by: Literal["client", "company", "nobody"] = (
        "client" if balance > 0 else "company" if balance < 0 else "nobody"
    )
    due = issued + timedelta(days=account.payment_terms_days) if balance else None
    body = {
        "version": version, "currency": account.currency, "issued": issued.isoformat(),
        "lines": [line.model_dump(mode="json") for line in lines],
        "balance": f"{balance:.2f}", "due": due.isoformat() if due else None,
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return Statement(
        version=version, currency=account.currency, issued=issued, lines=lines,
        outstanding_invoices=outstanding, payments_received=received, credits=credits,
        refunds_due=refunds, adjustments=adjusted, balance=balance, owed_by=owed_by, due=due,
        hash=digest,
    )
