"""The approvals portal for a playbook's own gates and tasks, without a server: which
message a form sends from a gate's or a task's link (``forms.decision``), what the page
says about it (``documents.about``, the page itself in-process), and what it refuses.
The statuses are built by hand, as the workflow would report them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from devtools.humans import answer
from offboarding.config import Settings
from offboarding.models.gates import digest
from offboarding.models.messages import ApproveGate, CompleteTask, Message, RejectGate
from offboarding.models.playbook import GateSpec, Playbook, TaskSpec
from offboarding.models.records import DataPackage
from offboarding.models.settlement import Statement
from offboarding.models.stages import Stage
from offboarding.models.status import Decision, GateRound, ManualTask, OffboardingStatus
from offboarding.portal.app import build_app
from offboarding.portal.documents import UnknownDocument, about
from offboarding.portal.forms import FormError, decision
from offboarding.security.links import LinkClaims, LinkKeys, load_link_keys, new_key_file, parse
from offboarding.workflows.rules import apply, validate
from offboarding.workflows.state import OffboardingState
from tests.helpers import client_file

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
WID = "offboarding-acme"
COUNSEL = "counsel@acme.example"
OWNER = "it.desk@acme.example"
ROUND_1 = digest(WID, "legal-review", "1", "")
ROUND_2 = digest(WID, "legal-review", "2", "")
TASK = digest(WID, "task", "return-laptops")
STATEMENT = Statement(
    version=1, currency="EUR", issued=date(2026, 11, 1), lines=[],
    outstanding_invoices=Decimal("1200.00"), payments_received=Decimal(0),
    credits=Decimal(0), refunds_due=Decimal(0), adjustments=Decimal(0),
    balance=Decimal("1200.00"), owed_by="client", due=date(2026, 12, 1), hash="5" * 64)


@pytest.fixture
def keys(tmp_path: Path) -> LinkKeys:
    new_key_file(tmp_path / "links.json")
    loaded = load_link_keys(tmp_path / "links.json", None, None)
    assert loaded is not None
    return loaded


def _round(n: int, document: str, bound: str | None = None) -> GateRound:
    return GateRound(gate="legal-review", title="Legal review", round=n, document=document,
                     bound=bound, question="Are all our contracts with Acme closed?",
                     labels=["Sign off", "Send back to legal"], asked=[COUNSEL], at=NOW)


def _status(*rounds: GateRound, waits: str | None = "legal-review,task-return-laptops",
            **changes: Any) -> OffboardingStatus:
    return OffboardingStatus(
        workflow_id=WID, client_id="acme", client_name="Acme Analytics Ltd",
        reason="contract_end", stage=Stage.ACCESS_REVOCATION, contract_end=date(2026, 12, 31),
        steps=[], statements=[STATEMENT], waiting_for=waits,
        gates=list(rounds) or [_round(1, ROUND_1, bound=STATEMENT.hash)],
        tasks=[ManualTask(key="return-laptops", title="Return the laptops", step="settlement",
                          owner=OWNER, due=NOW + timedelta(days=7), document=TASK)],
        **changes)


def _link(keys: LinkKeys, family: str, document: str, email: str) -> tuple[LinkClaims, str]:
    token = keys.mint(WID, family, document, email, NOW)
    return parse(token, keys.public(), NOW), token


# ----- forms.decision: the message a link's form sends ----------------------------------

def test_a_gates_form_approves_or_rejects_the_round_its_link_names(keys: LinkKeys) -> None:
    claims, token = _link(keys, "legal-review", ROUND_1, COUNSEL)
    approved = decision({"token": token, "decision": "approve"}, claims, token, _status())
    assert approved.action == "approve-gate"
    assert approved.message == ApproveGate(gate="legal-review", document=ROUND_1, by=COUNSEL,
                                           link=token)
    rejected = decision({"token": token, "decision": "reject",
                         "reason": "  The NDA is still open\r\n"}, claims, token, _status())
    assert rejected.action == "reject-gate"
    assert rejected.message == RejectGate(gate="legal-review", document=ROUND_1, by=COUNSEL,
                                          link=token, reason="The NDA is still open")


def test_a_tasks_form_marks_the_task_its_link_names_done(keys: LinkKeys) -> None:
    claims, token = _link(keys, "task", TASK, OWNER)
    done = decision({"token": token, "decision": "done", "reason": "All 12 back at IT"},
                    claims, token, _status())
    assert done.action == "complete-task"
    assert done.message == CompleteTask(task="return-laptops", note="All 12 back at IT",
                                        by=OWNER, link=token)
    quiet = decision({"token": token, "decision": "done"}, claims, token, _status())
    assert quiet.message == CompleteTask(task="return-laptops", by=OWNER, link=token)


@pytest.mark.parametrize(("family", "document", "form", "code", "why"), [
    ("legal-review", ROUND_1, {"decision": "verify"}, 400,
     "decision 'verify' is not one of: approve, reject"),
    ("legal-review", ROUND_1, {"decision": "dispute", "reason": "x"}, 400,
     "is not one of: approve, reject"),
    ("task", TASK, {"decision": "approve"}, 400, "decision 'approve' is not one of: done"),
    ("legal-review", ROUND_1, {"decision": "reject"}, 400, "a reason is needed to reject"),
    ("legal-review", ROUND_1, {"decision": "reject", "reason": " \r\n "}, 400,
     "a reason is needed to reject"),
    ("audit", ROUND_1, {"decision": "approve"}, 404, "a decision this offboarding does not"),
    ("task", "7" * 64, {"decision": "done"}, 404, "a task this offboarding never asked for"),
])
def test_what_a_gates_or_tasks_form_cannot_send_is_refused_in_words(
        keys: LinkKeys, family: str, document: str, form: dict[str, str], code: int,
        why: str) -> None:
    claims, token = _link(keys, family, document, COUNSEL)
    with pytest.raises(FormError, match=why) as refused:
        decision({"token": token, **form}, claims, token, _status())
    assert refused.value.status == code


# ----- documents.about: what the page says ---------------------------------------------

def test_a_waiting_gates_link_opens_its_round_with_what_it_binds(keys: LinkKeys) -> None:
    claims, _ = _link(keys, "legal-review", ROUND_1, COUNSEL)
    s = about(_status(), claims)
    assert (s.title, s.version, s.open, s.current, s.decision) == (
        "Legal review", "round 1", True, True, None)
    assert s.round is not None and s.round.question.startswith("Are all our contracts")
    assert s.statement == STATEMENT and s.package is None, "the statement it is about"
    assert s.gate is not None and s.gate.labels == ("Sign off", "Send back to legal")
    assert s.verbs == {"approve-gate": "approved", "reject-gate": "rejected"}


def test_a_gates_round_bound_to_an_export_shows_that_export(keys: LinkKeys) -> None:
    package = DataPackage(attempt=2, location="x", manifest_sha256="6" * 64, files=3,
                          bytes=4096)
    claims, _ = _link(keys, "legal-review", ROUND_1, COUNSEL)
    s = about(_status(_round(1, ROUND_1, bound=package.manifest_sha256),
                      data_packages=[package]), claims)
    assert s.package == package and s.statement is None
    unbound = about(_status(_round(1, ROUND_1)), claims)
    assert unbound.package is None and unbound.statement is None


@pytest.mark.parametrize(("what", "status"), [
    ("not waited on", _status(waits="task-return-laptops")),
    ("decided", _status(decisions=[Decision(at=NOW, action="approve-gate", by=COUNSEL,
                                            detail="Legal review approved", via="link",
                                            about=ROUND_1)])),
    ("cancelled", _status(outcome="cancelled")),
    ("terminated", _status(ended_as="terminated")),
])
def test_a_gates_link_offers_no_form_when_nothing_is_to_be_decided(
        keys: LinkKeys, what: str, status: OffboardingStatus) -> None:
    claims, _ = _link(keys, "legal-review", ROUND_1, COUNSEL)
    assert not about(status, claims).open, what


def test_a_rounds_link_is_superseded_by_the_next_round(keys: LinkKeys) -> None:
    status = _status(_round(1, ROUND_1), _round(2, ROUND_2),
                     decisions=[Decision(at=NOW, action="reject-gate", by=COUNSEL,
                                         detail="Legal review rejected: NDA", about=ROUND_1)])
    old = about(status, _link(keys, "legal-review", ROUND_1, COUNSEL)[0])
    assert (old.current, old.open, old.newest_version) == (False, False, "round 2")
    assert old.decision is not None and old.verbs[old.decision.action] == "rejected"
    new = about(status, _link(keys, "legal-review", ROUND_2, COUNSEL)[0])
    assert (new.current, new.open, new.decision) == (True, True, None)


def test_a_tasks_link_is_open_until_the_task_is_done(keys: LinkKeys) -> None:
    claims, _ = _link(keys, "task", TASK, OWNER)
    s = about(_status(), claims)
    assert (s.title, s.open, s.gate, s.decision) == ("Return the laptops", True, None, None)
    assert s.task is not None and s.task.due == NOW + timedelta(days=7)
    done = _status()
    done.tasks[0].done, done.tasks[0].by, done.tasks[0].at = True, "ops", NOW
    ticked = about(done, claims)
    assert not ticked.open
    assert ticked.decision is not None and ticked.decision.by == "ops", "who did it"
    assert not about(_status(outcome="completed"), claims).open


@pytest.mark.parametrize(("family", "document", "why"), [
    ("audit", ROUND_1, "a decision this offboarding does not have"),
    ("legal-review", "8" * 64, "a round of 'Legal review' this offboarding never asked"),
    ("task", "8" * 64, "a task this offboarding never asked for"),
])
def test_a_link_for_something_this_offboarding_never_asked_is_unknown(
        keys: LinkKeys, family: str, document: str, why: str) -> None:
    with pytest.raises(UnknownDocument, match=why):
        about(_status(), _link(keys, family, document, COUNSEL)[0])


# ----- the seam: what the portal sends is what the workflow accepts ---------------------

def test_the_portals_gate_and_task_decisions_pass_the_workflows_own_checks(
        keys: LinkKeys) -> None:
    cf = client_file("contract-end")
    playbook = Playbook(name="acme-way", sha256="0" * 64, gates=[GateSpec(
        id="legal-review", title="Legal review", after="settlement", deciders=[COUNSEL])],
        tasks=[TaskSpec(key="return-laptops", title="Return the laptops", owner=OWNER,
                        after="settlement")])
    s = OffboardingState(WID, cf, playbook=playbook)
    s.link_keys.update(keys.public())  # as the mail receipts would tell it
    s.status.gates.append(_round(1, ROUND_1))
    s.task("return-laptops").document = TASK  # type: ignore[union-attr]
    s.start_wait("legal-review", NOW, None)
    s.start_wait("task-return-laptops", NOW, None)
    for family, document, who, form in (("legal-review", ROUND_1, COUNSEL, "approve"),
                                        ("task", TASK, OWNER, "done")):
        claims, token = _link(keys, family, document, who)
        assert about(s.status, claims).open
        sent = decision({"token": token, "decision": form}, claims, token, s.status)
        validate(s, sent.action, sent.message, "link", NOW)
        apply(s, sent.action, sent.message, "link", NOW)
        shown = about(s.status, claims)
        assert shown.decision is not None and shown.decision.via == "link", family
        assert not shown.open, f"{family}: decided, so no form"


# ----- the page, in-process --------------------------------------------------------------

class Temporal:
    """The portal's view of Temporal: one offboarding's status, and what it was sent."""

    def __init__(self, status: OffboardingStatus) -> None:
        self.status_now = status
        self.sent: list[tuple[str, Message]] = []

    async def status(self, workflow_id: str) -> OffboardingStatus:
        return self.status_now

    async def send(self, workflow_id: str, action: str, message: Message) -> None:
        self.sent.append((action, message))


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[tuple[TestClient, LinkKeys, Temporal]]:
    new_key_file(tmp_path / "link-keys.json")
    config = Settings(_env_file=None, link_key_file=tmp_path / "link-keys.json",
                      transfer_root=tmp_path / "transfer", portal_url="https://portal.example")
    app = build_app(config, connect=None)
    temporal = Temporal(_status())
    app.state.portal.ops = temporal
    keys = config.links()
    assert keys is not None
    yield TestClient(app, base_url="https://portal.example", follow_redirects=False), \
        keys, temporal


def _token(keys: LinkKeys, family: str, document: str, email: str) -> str:
    return keys.mint(WID, family, document, email, datetime.now(UTC))


def test_a_gates_page_asks_its_question_with_the_playbooks_buttons(
        portal: tuple[TestClient, LinkKeys, Temporal]) -> None:
    client, keys, temporal = portal
    token = _token(keys, "legal-review", ROUND_1, COUNSEL)
    page = client.get(f"/o/{WID}/{token}")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "<h1>Legal review: Acme Analytics Ltd</h1>" in page.text
    assert "Are all our contracts with Acme closed?" in page.text
    assert "About statement v1 of 2026-11-01" in page.text and "EUR 1,200.00" in page.text
    assert 'value="approve">Sign off</button>' in page.text
    assert 'value="reject">Send back to legal</button>' in page.text
    no_reason = client.post(f"/o/{WID}/decide", data={"token": token, "decision": "reject"})
    assert no_reason.status_code == 400 and "a reason is needed to reject" in no_reason.text
    assert temporal.sent == []
    sent = client.post(f"/o/{WID}/decide", data={"token": token, "decision": "approve"})
    assert sent.status_code == 303 and sent.headers["location"].endswith("?done=1")
    assert temporal.sent == [("approve-gate", ApproveGate(
        gate="legal-review", document=ROUND_1, by=COUNSEL, link=token))]


def test_a_tasks_page_offers_mark_done_with_a_note(
        portal: tuple[TestClient, LinkKeys, Temporal]) -> None:
    client, keys, temporal = portal
    token = _token(keys, "task", TASK, OWNER)
    page = client.get(f"/o/{WID}/{token}")
    assert page.status_code == 200
    assert "<h1>Return the laptops: Acme Analytics Ltd</h1>" in page.text
    assert "Due 2026-11-28 12:00 UTC." in page.text
    assert 'value="done">Mark done</button>' in page.text
    client.post(f"/o/{WID}/decide", data={"token": token, "decision": "done",
                                          "reason": "All 12 back"})
    assert temporal.sent == [("complete-task", CompleteTask(
        task="return-laptops", note="All 12 back", by=OWNER, link=token))]
    done = _status()
    done.tasks[0].done, done.tasks[0].by, done.tasks[0].at = True, OWNER, NOW
    temporal.status_now = done
    page = client.get(f"/o/{WID}/{token}")
    assert "The task was marked done" in page.text and "<form" not in page.text


def test_a_link_for_a_decision_this_offboarding_lacks_is_refused_and_sends_nothing(
        portal: tuple[TestClient, LinkKeys, Temporal]) -> None:
    client, keys, temporal = portal
    token = _token(keys, "audit", ROUND_1, COUNSEL)
    page = client.get(f"/o/{WID}/{token}")
    assert page.status_code == 403 and "does not have" in page.text
    post = client.post(f"/o/{WID}/decide", data={"token": token, "decision": "approve"})
    assert post.status_code == 403 and temporal.sent == []
    gate = _token(keys, "legal-review", ROUND_1, COUNSEL)
    assert client.get(f"/o/{WID}/{gate}/data.zip").status_code == 403, "no download"


# ----- the demo's scripted people answer a playbook's waits -----------------------------

def test_the_scripted_people_approve_a_waiting_gate_and_do_an_open_task() -> None:
    status = _status(_round(1, ROUND_1), _round(2, ROUND_2))
    gate = answer("legal-review", status)
    assert gate is not None and gate.once == ("legal-review", "2")
    assert (gate.action, gate.message) == ("approve-gate", ApproveGate(
        gate="legal-review", document=ROUND_2[:12], by=COUNSEL))
    task = answer("task-return-laptops", status)
    assert task is not None and task.action == "complete-task"
    assert task.message == CompleteTask(task="return-laptops", note="Done", by=OWNER)
    assert answer("legal-review", _status(waits="task-return-laptops")) is None
    status.tasks[0].done = True
    assert answer("task-return-laptops", status) is None
