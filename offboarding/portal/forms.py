"""The portal's one form, read by hand: bounded before it is parsed, every field named in
what it refuses. Decisions become the same validated messages the CLI sends, with ``by``
and the document taken from the link, never from the form; which decisions a link can
send is its gate's (``models/gates.py``): a built-in's own pair, ``approve-gate`` /
``reject-gate`` for a playbook's gate, ``complete-task`` for a task."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs

from pydantic import ValidationError

from offboarding.models.gates import BUILT_IN, TASK_FAMILY
from offboarding.models.messages import (
    Adjustment,
    ApproveGate,
    ApproveSettlement,
    CompleteTask,
    DisputeSettlement,
    Message,
    RejectData,
    RejectGate,
    VerifyData,
)
from offboarding.models.status import OffboardingStatus
from offboarding.portal.documents import COMPLETE_TASK, gate_of, task_of
from offboarding.security.links import MAX_TOKEN, LinkClaims

MAX_BODY = 64 * 1024
"""Bigger than any honest form (a reason of 5,000 characters and 50 adjustments)."""
FIELDS = {"token": MAX_TOKEN, "decision": 20, "reason": 5000, "adjustments": 20_000}
DECISIONS = {g.id: dict(zip(g.choices, g.actions, strict=True)) for g in BUILT_IN.values()}
"""The built-in gates' form values and the action each sends, e.g. ``dispute`` ->
``dispute-settlement``; ``choices`` gives any link's."""
TASK_CHOICES = {"done": COMPLETE_TASK}


class FormError(Exception):
    """What is wrong with the form, in words for the person who sent it."""

    def __init__(self, why: str, status: int = 400) -> None:
        super().__init__(why)
        self.status = status


def read_form(body: bytes) -> dict[str, str]:
    if len(body) > MAX_BODY:
        raise FormError(f"the form is {len(body):,} bytes; at most {MAX_BODY:,} are accepted",
                        413)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=len(FIELDS) + 2)
    except (UnicodeDecodeError, ValueError) as err:
        raise FormError(f"the form could not be read ({type(err).__name__})") from None
    form: dict[str, str] = {}
    for name, values in fields.items():
        if name not in FIELDS:
            raise FormError(f"unexpected field {name[:40]!r}")
        if len(values) != 1:
            raise FormError(f"field {name!r} was sent {len(values)} times")
        if len(values[0]) > FIELDS[name]:
            raise FormError(f"field {name!r} is {len(values[0]):,} characters long; at most "
                            f"{FIELDS[name]:,} are accepted")
        form[name] = values[0]
    if not form.get("token"):
        raise FormError("the form carries no link", 403)
    return form


@dataclass(frozen=True)
class Decision:
    action: str
    message: Message


def choices(status: OffboardingStatus, family: str) -> dict[str, str]:
    """The form values a link of ``family`` may send, and the action each becomes."""
    if family in DECISIONS:
        return DECISIONS[family]
    if family == TASK_FAMILY:
        return TASK_CHOICES
    gate = gate_of(status, family)
    if gate is None:
        raise FormError("the link is for a decision this offboarding does not have", 404)
    return dict(zip(gate.choices, gate.actions, strict=True))


def decision(form: dict[str, str], claims: LinkClaims, token: str,
             status: OffboardingStatus) -> Decision:
    """The message the form sends; ``status`` says which gates and tasks there are."""
    allowed = choices(status, claims.f)
    choice = form.get("decision", "")
    if choice not in allowed:
        raise FormError(f"decision {choice[:20]!r} is not one of: {', '.join(allowed)}")
    action = allowed[choice]
    reason = form.get("reason", "").replace("\r\n", "\n").strip()
    common = {"by": claims.e, "link": token}
    try:
        message: Message
        match action:
            case "approve-settlement":
                message = ApproveSettlement(statement_hash=claims.d, **common)
            case "dispute-settlement":
                message = DisputeSettlement(statement_hash=claims.d, reason=reason,
                                            adjustments=adjustments(form.get("adjustments", "")),
                                            **common)
            case "verify-data":
                message = VerifyData(checksum=claims.d, **common)
            case "reject-data":
                message = RejectData(reason=reason, **common)
            case "approve-gate":
                message = ApproveGate(gate=claims.f, document=claims.d, **common)
            case "reject-gate":
                message = RejectGate(gate=claims.f, document=claims.d, reason=reason, **common)
            case _:
                task = task_of(status, claims.d)
                if task is None:
                    raise FormError("the link names a task this offboarding never asked "
                                    "for", 404)
                message = CompleteTask(task=task.key, note=reason, **common)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "form"
        if where == "reason" and not reason:
            raise FormError("say why: a reason is needed to " + choice) from None
        raise FormError(f"{where}: {first['msg']}") from None
    return Decision(action, message)


def adjustments(text: str) -> list[Adjustment]:
    """One per line, ``description = amount`` (as the CLI's --adjust DESCRIPTION=AMOUNT);
    a positive amount adds to what the client owes."""
    found = []
    for n, line in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
        if not line.strip():
            continue
        description, sep, amount = line.rpartition("=")
        if not sep or not description.strip():
            raise FormError(f"adjustments, line {n}: expected 'description = amount', e.g. "
                            "'Waived late fee = -150.00'")
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            raise FormError(f"adjustments, line {n}: {amount.strip()[:30]!r} is not an amount "
                            "(e.g. -150.00)") from None
        try:
            found.append(Adjustment(description=description.strip(), amount=value))
        except ValidationError as err:
            raise FormError(f"adjustments, line {n}: {err.errors()[0]['msg']}") from None
    return found
