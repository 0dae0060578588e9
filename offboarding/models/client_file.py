"""The client file: everything ops know about one departing client.

It is validated before anything starts and travels unchanged as the workflow input,
so it must hold no secrets (SMTP and SCIM credentials live in the worker's settings).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from offboarding.models.money import CURRENCIES, Money
from offboarding.models.text import printable_line, printable_text


def _relative_path(value: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or "\\" in value or not value.strip():
        raise ValueError(f"{value!r} must be a relative path inside its root, without '..'")
    if not path.parts or path.parts == (".",):
        raise ValueError(f"{value!r} names the whole data root; name a folder or file in it")
    if "." in value.split("/"):
        raise ValueError(f"{value!r}: '.' is not a path segment; write the path plainly")
    return value


Line = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(printable_line)]
Text = Annotated[str, Field(max_length=5000), AfterValidator(printable_text)]
RelPath = Annotated[str, Field(max_length=500), AfterValidator(printable_line),
                    AfterValidator(_relative_path)]
CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")

# What one client file may hold. The file travels whole as the workflow
# input and its account becomes the settlement statement, so each list is bounded to keep
# every payload far below Temporal's 2 MB limit: at these maxima, after two disputes, the
# largest payload in the history and the status stay under 1 MB
# (tests/integration/test_hostile_input.py measures both).
MAX_INVOICES = 1000
MAX_PAYMENTS = 1000
MAX_CREDITS = 500
MAX_PREPAYMENTS = 100
MAX_SYSTEMS = 50
MAX_USERS_PER_SYSTEM = 1000
MAX_DATA_SETS = 100
MAX_DOCUMENTS = 50
MAX_ITEMS = 100
"""Services, objectives, achievements, milestones, KPIs, outstanding deliverables."""
MAX_CONTRACT_YEARS = 100


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
    services: list[Line] = Field(min_length=1, max_length=MAX_ITEMS)
    objectives: list[Line] = Field(default=[], max_length=MAX_ITEMS)
    achievements: list[Line] = Field(default=[], max_length=MAX_ITEMS)
    milestones: list[Line] = Field(default=[], max_length=MAX_ITEMS)
    kpis: list[Kpi] = Field(default=[], max_length=MAX_ITEMS)
    outstanding_deliverables: list[Line] = Field(default=[], max_length=MAX_ITEMS)
    renewal_offer: RenewalOffer | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> Contract:
        if self.end_date <= self.start_date:
            raise ValueError(
                f"end_date {self.end_date} must be after start_date {self.start_date}"
            )
        if (self.end_date - self.start_date).days > MAX_CONTRACT_YEARS * 366:
            raise ValueError(
                f"contract.end_date {self.end_date} is more than {MAX_CONTRACT_YEARS} years "
                f"after start_date {self.start_date}"
            )
        return self


class Invoice(Strict):
    number: Line
    amount: Money
    issued: date
    due: date
    paid: Money = Decimal("0.00")
    """What of it the payments in ``account.payments`` paid: the same money, so the two
    must agree (Account checks it); the statement counts the payments once."""

    @model_validator(mode="after")
    def _paid_within_amount(self) -> Invoice:
        if self.paid < 0:
            raise ValueError(f"paid must not be negative (got {self.paid})")
        if self.paid > self.amount:
            raise ValueError(f"paid {self.paid} is more than the invoice's amount {self.amount}")
        return self


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
    invoices: list[Invoice] = Field(default=[], max_length=MAX_INVOICES)
    payments: list[Payment] = Field(default=[], max_length=MAX_PAYMENTS)
    credits: list[Credit] = Field(default=[], max_length=MAX_CREDITS)
    prepayments: list[Prepayment] = Field(default=[], max_length=MAX_PREPAYMENTS)
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
        paid = sum((i.paid for i in self.invoices), Decimal("0.00"))
        received = sum((p.amount for p in self.payments), Decimal("0.00"))
        if paid and paid != received:
            raise ValueError(
                f"the invoices record {paid} as paid but account.payments adds up to "
                f"{received}; they describe the same money and must agree")
        return self


class SystemAccess(Strict):
    system: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    """The name of a SCIM system in the worker's settings (OFFBOARDING_SCIM_SYSTEMS)."""
    users: list[Line] = Field(min_length=1, max_length=MAX_USERS_PER_SYSTEM)
    """User names (userName) or SCIM ids of the client's accounts there."""
    mode: Literal["deactivate", "delete"] = "deactivate"

    @field_validator("users")
    @classmethod
    def _no_duplicates(cls, users: list[str]) -> list[str]:
        """SCIM userName is case-insensitive (RFC 7643, 4.1.1): ``Tom.Becker`` and
        ``tom.becker`` are one account, and listing both revoked it twice."""
        folded = [u.casefold() for u in users]
        dupes = sorted({u for u in folded if folded.count(u) > 1})
        if dupes and len(set(users)) == len(users):
            raise ValueError(f"accounts listed twice (ignoring case): {', '.join(dupes)}")
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
    systems: list[SystemAccess] = Field(default=[], max_length=MAX_SYSTEMS)
    data_sets: list[DataSet] = Field(default=[], max_length=MAX_DATA_SETS)
    documents: list[Document] = Field(default=[], max_length=MAX_DOCUMENTS)
    approvers: Approvers
    account_manager: Line = "Your account team"
    retention_days: int = Field(default=30, ge=0, le=3650)
    follow_up_days: int = Field(default=90, ge=1, le=730)

    def mail_context(self, *, end_date: date, short_notice: bool,
                     workflow_id: str) -> dict[str, Any]:
        """What every message's template is given of the client: the workflow's mail
        (``workflows/sending.base_context``) and a playbook's load check
        (``playbooks/samples.py``) take it from here, so an override is checked against
        exactly what it will be rendered with."""
        return {
            "client_name": self.client_name,
            "contact": self.contacts.primary.model_dump(),
            "billing": self.contacts.billing.model_dump(),
            "steward": self.contacts.data_steward.model_dump(),
            "contract": self.contract.model_dump(mode="json"),
            "renewal_offer": (self.contract.renewal_offer.model_dump(mode="json")
                              if self.contract.renewal_offer else None),
            "end_date": end_date.isoformat(),
            "short_notice": short_notice,
            "account_manager": self.account_manager,
            "retention_days": self.retention_days,
            "workflow_id": workflow_id,
        }

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
