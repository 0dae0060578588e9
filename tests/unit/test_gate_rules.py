"""The rules of a playbook's gate, without a server: who may decide it, on which round,
when; what ``approve-gate`` answers for a built-in gate; a contact who decides, after ops
corrected their address."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from offboarding.models.messages import ApproveGate, FixContact, Message, RejectGate
from offboarding.models.playbook import MAX_ROUNDS, GateSpec, Playbook
from offboarding.workflows.rules import Rejected, apply, validate
from offboarding.workflows.state import OffboardingState
from tests.helpers import client_file

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
LEGAL = "legal@services.example"
PLAYBOOK = Playbook(name="legal", sha256="ab" * 32, gates=[
    GateSpec(id="legal-sign-off", title="Legal sign-off", after="settlement",
             deciders=[LEGAL]),
    GateSpec(id="billing-release", title="Billing release", after="legal-sign-off",
             deciders="contacts.billing")])


def _asked(gate: str = "legal-sign-off") -> tuple[OffboardingState, str]:
    """An offboarding waiting on ``gate``, and the document of its round."""
    s = OffboardingState("offboarding-x", client_file(), playbook=PLAYBOOK, second_ops=False)
    document = s.ask_gate(s.gates[gate], None, NOW).document
    s.start_wait(gate, NOW, None)
    return s, document


def _send(s: OffboardingState, name: str, msg: Message) -> str:
    validate(s, name, msg, "cli", NOW)
    return apply(s, name, msg, "cli", NOW)


def test_its_decider_approves_the_current_round_by_a_prefix_of_its_document() -> None:
    s, document = _asked()
    detail = _send(s, "approve-gate", ApproveGate(by=LEGAL, gate="legal-sign-off",
                                                  document=document[:12]))
    assert detail == "Legal sign-off approved"
    assert s.pending.answers["legal-sign-off"].approved
    assert s.status.decisions[-1].about == document


@pytest.mark.parametrize(("sender", "gate", "document", "why"), [
    ("finance.lead@example.com", "legal-sign-off", None,
     "is not one who decides 'Legal sign-off'"),
    (LEGAL, "no-such-gate", None, "no playbook gate 'no-such-gate' in this offboarding; "
                                  "its gates are: "
                                  "legal-sign-off, billing-release"),
    (LEGAL, "settlement", None, "settlement is decided with approve-settlement"),
    (LEGAL, "legal-sign-off", "ab" * 32, "is not the current round of legal-sign-off"),
    (LEGAL, "billing-release", None, "is not expected now"),
])
def test_a_decision_it_cannot_take_is_refused_and_changes_nothing(
        sender: str, gate: str, document: str | None, why: str) -> None:
    s, current = _asked()
    before = s.status.model_dump_json()
    with pytest.raises(Rejected, match=why):
        validate(s, "approve-gate", ApproveGate(by=sender, gate=gate,
                                                document=document or current), "cli", NOW)
    assert s.status.model_dump_json() == before and not s.pending.answers


def test_a_second_decision_on_the_same_round_is_refused() -> None:
    s, document = _asked()
    _send(s, "reject-gate", RejectGate(by=LEGAL, gate="legal-sign-off", document=document,
                                       reason="clause 7"))
    with pytest.raises(Rejected, match="already recorded"):
        validate(s, "approve-gate", ApproveGate(by=LEGAL, gate="legal-sign-off",
                                                document=document), "cli", NOW)


def test_the_last_round_cannot_be_rejected() -> None:
    s, _ = _asked()
    for _ in range(MAX_ROUNDS - 1):
        document = s.ask_gate(s.gates["legal-sign-off"], None, NOW).document
    with pytest.raises(Rejected, match=f"round {MAX_ROUNDS} is the last one"):
        validate(s, "reject-gate", RejectGate(by=LEGAL, gate="legal-sign-off",
                                              document=document, reason="no"), "cli", NOW)
    _send(s, "approve-gate", ApproveGate(by=LEGAL, gate="legal-sign-off", document=document))


def test_a_contact_decides_under_the_address_ops_corrected() -> None:
    """Their link is minted for the corrected address (mail goes there), so that is the
    ``by`` it carries."""
    s, document = _asked("billing-release")
    _send(s, "fix-contact", FixContact(by="ops", role="billing", email="ap@new.example"))
    _send(s, "approve-gate", ApproveGate(by="ap@new.example", gate="billing-release",
                                         document=document))
    assert s.pending.answers["billing-release"].msg.by == "ap@new.example"
