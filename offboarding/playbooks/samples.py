"""A sample of everything a message's template is given, to render a playbook's own
templates with when the playbook is loaded: a misspelt variable is then refused at the
desk, not found by an activity months into an offboarding (where it holds a step up).

The context of a message is ``workflows/sending.base_context`` plus the extras its caller
passes (``extra=`` in the workflow) plus, for messages that carry a personal link, the
link the mailer adds (``Mailer._link``). The values are shaped as the template receives
them: dumped to JSON, as they travel through Temporal. tests/unit/test_playbooks.py
checks the base keys against ``base_context`` and renders every packaged template with
these samples, so a variable added to the workflow and not here fails a test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from offboarding.models.client_file import ClientFile
from offboarding.models.playbook import TaskSpec
from offboarding.models.records import AccountResult, DataPackage, SystemRevocation
from offboarding.models.settlement import compute_statement
from offboarding.models.status import GateRound

TODAY = date(2027, 1, 2)


def sample_client() -> ClientFile:
    """A client file with every list filled, so every loop and branch has something."""
    return ClientFile.model_validate({
        "client_id": "sample-client", "client_name": "Sample Client Ltd",
        "account_manager": "Dana Whitfield, Client Services",
        "contacts": {
            "primary": {"name": "Priya Raman", "email": "priya@client.example"},
            "data_steward": {"name": "Tom Becker", "email": "tom@client.example"},
            "billing": {"name": "Accounts Payable", "email": "ap@client.example"}},
        "contract": {
            "reference": "MSA-2024-017", "start_date": "2024-01-01",
            "end_date": "2027-01-31", "notice_days": 30,
            "services": ["Managed operations"], "objectives": ["Faster reports"],
            "achievements": ["Reports within 6 hours"], "milestones": ["Cloud live"],
            "kpis": [{"name": "Lead time", "target": "< 24 h", "actual": "6 h"}],
            "outstanding_deliverables": ["Final report"],
            "renewal_offer": {"summary": "12 more months", "valid_until": "2027-01-15"}},
        "account": {
            "currency": "USD",
            "invoices": [{"number": "INV-1", "amount": "100.00", "issued": "2026-12-01",
                          "due": "2026-12-31", "paid": "40.00"}],
            "payments": [{"reference": "PAY-1", "amount": "40.00", "received": "2026-12-10"}],
            "credits": [{"reference": "CR-1", "amount": "10.00", "reason": "SLA credit"}],
            "prepayments": [{"reference": "DEP-1", "amount": "5.00"}]},
        "systems": [{"system": "crm", "users": ["priya.raman"]}],
        "data_sets": [{"name": "CRM export", "path": "sample-client/crm"}],
        "documents": [{"title": "Runbook", "path": "sample-client/runbook.md"}],
        "approvers": {"finance": ["finance@example.com"],
                      "data_verification": ["tom@client.example"]},
    })


def sparse_client() -> ClientFile:
    """A client file with only what it must have: no renewal offer, objectives, KPIs,
    invoices..., so a template that needs one of them is refused at load, not when a real
    client file leaves it out."""
    return ClientFile.model_validate({
        "client_id": "bare-client", "client_name": "Bare Ltd",
        "contacts": {"primary": {"name": "P", "email": "p@client.example"},
                     "data_steward": {"name": "S", "email": "s@client.example"},
                     "billing": {"name": "B", "email": "b@client.example"}},
        "contract": {"reference": "R-1", "start_date": "2024-01-01",
                     "end_date": "2027-01-31", "services": ["Ops"]},
        "approvers": {"finance": ["f@example.com"], "data_verification": ["s@client.example"]},
    })


SPARSE = "for a client file without its optional parts (no renewal offer, objectives, KPIs...)"
KEEP_FULL = frozenset({"handover_invite", "knowledge_transfer"})
"""Sent only when the client file lists documents: their sample keeps them."""


def sample_base(client: ClientFile) -> dict[str, Any]:
    """What ``workflows/sending.base_context`` gives every message."""
    return client.mail_context(end_date=client.contract.end_date, short_notice=False,
                               workflow_id=f"offboarding-{client.client_id}")


def _extras(client: ClientFile) -> dict[str, dict[str, Any]]:
    """Each template's extras, as the workflow passes them (grep ``template=`` there)."""
    statement = compute_statement(client.account, version=2, issued=TODAY, adjustments=[])
    shown = {"statement": statement.model_dump(mode="json")}
    package = DataPackage(attempt=1, location="transfer/sample/1", manifest_sha256="a" * 64,
                          files=3, bytes=2048)
    documents = {"documents": [d.model_dump() for d in client.documents]}
    waiting = {"what": "settlement approval", "since": TODAY.isoformat(),
               "how": "offboarding approve-settlement ... --by <you>"}
    task = TaskSpec(key="hardware-return", title="Laptops returned", owner="am@example.com",
                    after="access-revocation", instructions="Collect the laptops.")
    gate = GateRound(gate="legal-sign-off", title="Legal sign-off", round=1,
                     document="b" * 64, bound=statement.hash, question="Is it lawful?",
                     labels=["Approve", "Reject"], asked=["legal@example.com"],
                     at=datetime(2027, 1, 2, tzinfo=UTC))
    revoked = SystemRevocation(system="crm", mode="deactivate", accounts=[
        AccountResult(user="priya.raman", result="deactivated")])
    return {
        "access_revoked": {"revocations": [revoked.model_dump(mode="json")],
                           "failures": ["wiki: skipped by ops, accounts NOT revoked"]},
        "check_in": {},
        "data_ready": {"package": package.model_dump(mode="json")},
        "farewell": {"termination": False},
        "feedback_survey": {},
        "gate_request": {"gate": gate.model_dump(mode="json")},
        "handover_invite": documents,
        "knowledge_transfer": documents,
        "meeting_proposal": {"dates": ["2027-01-04", "2027-01-05", "2027-01-07"]},
        "notice": {},
        "ops_alert": {**waiting, "reminders": 2, "problem": False},
        "reminder": waiting,
        "renewal_confirmation": {"note": "Rates unchanged."},
        "settlement_approval": shown,
        "settlement_confirmed": shown,
        "settlement_statement": shown,
        "task_request": {"task": {**task.model_dump(mode="json"), "due": "2027-01-12"}},
    }


LINK = {"link_url": "https://portal.example.com/o/offboarding-sample-client/token",
        "link_expires": datetime(2027, 1, 16, tzinfo=UTC)}
UNSIGNED = ("when the workers have no link keys (link_url and link_expires are None)",
            {"link_url": None, "link_expires": None})
NO_LINK = ("in offboardings begun before links (no link_url, no link_expires)",
           {"link_url": ..., "link_expires": ...})
SITUATIONS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    # Besides the sample itself (with a signed link where the template is sent with one):
    # the other ways each template is really sent. ``...`` leaves the key out.
    "settlement_approval": [UNSIGNED],
    "gate_request": [UNSIGNED],
    "task_request": [UNSIGNED],
    "reminder": [UNSIGNED, NO_LINK],
    "data_ready": [UNSIGNED, ("in the steward's own message, when the verifiers have "
                              "links (no link_url, no link_expires)",
                              {"link_url": ..., "link_expires": ...}),
                   ("in offboardings begun before links (no link_url, link_expires, "
                    "verifiers_have_links)", {"link_url": ..., "link_expires": ...,
                                              "verifiers_have_links": ...})],
    "farewell": [("for a termination", {"termination": True})],
    "ops_alert": [("for a problem", {"problem": True, "reminders": 0})],
    "notice": [("on short notice", {"short_notice": True})],
}
LINKED = frozenset({"settlement_approval", "gate_request", "task_request", "reminder",
                    "data_ready"})
"""Templates sent with a personal link (``link=`` in the workflow)."""


def sample_context(template: str) -> dict[str, Any]:
    """The fullest context ``template`` is rendered with: every variable it can have."""
    client = sample_client()
    extras = _extras(client)
    if template not in extras:
        raise KeyError(template)
    linked = {**LINK, "verifiers_have_links": True} if template == "data_ready" else LINK
    return {**sample_base(client), **extras[template],
            **(linked if template in LINKED else {})}


def sample_contexts(template: str) -> list[tuple[str, dict[str, Any]]]:
    """Every situation ``template`` is sent in, described (the full sample's as ""), and
    its context: each for the full sample and for a client file without its optional
    parts."""
    full = sample_context(template)
    sparse = sparse_client()
    bare = {**full, **sample_base(sparse),
            **({} if template in KEEP_FULL else _extras(sparse)[template])}
    variants: list[tuple[str, dict[str, Any]]] = []
    for base, described in ((full, ""), (bare, SPARSE)):
        for situation, change in [("", {}), *SITUATIONS.get(template, [])]:
            context = {**base, **change}
            when = " ".join(w for w in (situation, described) if w)
            variants.append((when, {k: v for k, v in context.items() if v is not ...}))
    return variants


def known_templates() -> frozenset[str]:
    """The message templates the workflow sends (a sample exists for each)."""
    return frozenset(_extras(sample_client()))
