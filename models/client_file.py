"""The client file: everything ops know about one departing client.

It is validated before anything starts and travels unchanged as the workflow input,
so it must hold no secrets (SMTP and SCIM credentials live in the worker's settings).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from models.money import CURRENCIES, Money


def _single_line(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("must be a single line (no CR or LF): it may end up in a mail header")
    return value


def _relative_path(value: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or "\\" in value or not value.strip():
        raise ValueError(f"{value!r} must be a relative path inside its root, without '..'")
    return value


Line = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_single_line)]
Text = Annotated[str, Field(max_length=5000)]
RelPath = Annotated[str, Field(max_length=500), AfterValidator(_relative_path)]
CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class Strict(BaseModel):
    """Unknown keys are refused: a typo in a client file must not silently drop data."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(Strict):
    name: Line
    email: EmailStr


class Contacts(Strict):
    primary: Contact
    data_steward: Contact
    billing: Contact


class Termination(Strict):
    effective_date: date | None = None
    """None means at once."""
    cause: Line


class Kpi(Strict):
    name: Line
    target: Line
    actual: Line


class RenewalOffer(Strict):
    summary: Text
    valid_until: date | None = None


class Contract(Strict):
    reference: Line
    start_date: date
    end_date: date
    notice_days: int = Field(default=30, ge=14, le=90)
    services: list[Line] = Field(min_length=1)
    objectives: list[Line] = []
    achievements: list[Line] = []
    milestones: list[Line] = []
    kpis: list[Kpi] = []
    outstanding_deliverables: list[Line] = []
    renewal_offer: RenewalOffer | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> Contract:
        if self.end_date <= self.start_date:
            raise ValueError(
                f"end_date {self.end_date} must be after start_date {self.start_date}"
            )
        return self


class Invoice(Strict):
    number: Line
    amount: Money
    issued: date
    due: date
    paid: Money = Decimal("0.00")


class Payment(Strict):
    reference: Line
    amount: Money
    received: date


class Credit(Strict):
    reference: Line
    amount: Money
    reason: Line


class Prepayment(Strict):
    """A deposit or prepayment held for the client, refunded at settlement."""

    reference: Line
    amount: Money


class Account(Strict):
    currency: str = "USD"
    invoices: list[Invoice] = []
    payments: list[Payment] = []
    credits: list[Credit] = []
    prepayments: list[Prepayment] = []
    payment_terms_days: int = Field(default=30, ge=0, le=120)

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCIES:
            raise ValueError(
                f"unknown currency {value!r}; expected an ISO 4217 code such as USD, EUR, GBP"
            )
        return value

    @model_validator(mode="after")
    def _unique_references(self) -> Account:
        seen: set[str] = set()
        for ref in [i.number for i in self.invoices] + [p.reference for p in self.payments]:
            if ref in seen:
                raise ValueError(f"invoice number or payment reference {ref!r} appears twice")
            seen.add(ref)
        amounts = [
            *[(i.number, i.amount) for i in self.invoices],
            *[(p.reference, p.amount) for p in self.payments],
            *[(c.reference, c.amount) for c in self.credits],
            *[(p.reference, p.amount) for p in self.prepayments],
        ]
        for reference, amount in amounts:
            if amount < 0:
                raise ValueError(f"{reference}: amounts must not be negative (got {amount})")
        return self


class SystemAccess(Strict):
    system: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    """The name of a SCIM system in the worker's settings (OFFBOARDING_SCIM_SYSTEMS)."""
    users: list[Line] = Field(min_length=1)
    """User names (userName) or SCIM ids of the client's accounts there."""
    mode: Literal["deactivate", "delete"] = "deactivate"

    @field_validator("users")
    @classmethod
    def _no_duplicates(cls, users: list[str]) -> list[str]:
        dupes = sorted({u for u in users if users.count(u) > 1})
        if dupes:
            raise ValueError(f"accounts listed twice: {', '.join(dupes)}")
        return users


class DataSet(Strict):
    name: Line
    path: RelPath
    """Relative to the worker's client data root."""


class Document(Strict):
    title: Line
    path: RelPath
    """Relative to the worker's documents root; sent as an attachment."""


class Approvers(Strict):
    finance: list[EmailStr] = Field(min_length=1)
    data_verification: list[EmailStr] = Field(min_length=1)


class ClientFile(Strict):
    """One offboarding, as ops describe it."""

    client_id: Annotated[str, Field(pattern=CLIENT_ID.pattern)]
    client_name: Line
    contacts: Contacts
    reason: Literal["contract_end", "termination"] = "contract_end"
    termination: Termination | None = None
    contract: Contract
    account: Account = Account()
    systems: list[SystemAccess] = []
    data_sets: list[DataSet] = []
    documents: list[Document] = []
    approvers: Approvers
    account_manager: Line = "Your account team"
    retention_days: int = Field(default=30, ge=0, le=3650)
    follow_up_days: int = Field(default=90, ge=1, le=730)

    @model_validator(mode="after")
    def _consistent(self) -> ClientFile:
        if self.reason == "termination" and self.termination is None:
            raise ValueError("reason 'termination' needs a 'termination' section with a cause")
        if self.reason == "contract_end" and self.termination is not None:
            raise ValueError("a 'termination' section needs reason: termination")
        systems = [s.system for s in self.systems]
        dupes = sorted({s for s in systems if systems.count(s) > 1})
        if dupes:
            raise ValueError(f"systems listed twice: {', '.join(dupes)}")
        names = [d.name for d in self.data_sets]
        if len(set(names)) != len(names):
            raise ValueError("data set names must be unique")
        return self
