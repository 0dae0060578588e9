"""Generated decisions on a playbook's gates and tasks, without a server: any
approve-gate / reject-gate / complete-task, by anyone, on any document, carrying any
link (of this gate, another gate, a task, a built-in gate, another offboarding or run,
a stale round, someone else's) is refused in words or applied, never raises anything
else; and one applied through a link was made with the link issued for exactly it."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from offboarding.models.gates import TASK_FAMILY, digest
from offboarding.models.messages import ACTIONS, ApproverDecision, Message
from offboarding.models.playbook import GateSpec, Playbook, TaskSpec
from offboarding.models.status import STATUS_BUDGET
from offboarding.security.links import load_link_keys, new_key_file, parse
from offboarding.workflows.rules import Rejected, apply, validate
from offboarding.workflows.state import OffboardingState
from tests.helpers import client_file

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
WID, RUN = "offboarding-x", "run-2"
LEGAL, OWNER, OTHER = "legal@services.example", "it@services.example", "eve@evil.example"
PLAYBOOK = Playbook(name="legal", sha256="ab" * 32, gates=[
    GateSpec(id="legal-sign-off", title="Legal sign-off", after="settlement",
             deciders=[LEGAL, OWNER]),
    GateSpec(id="billing-release", title="Billing release", after="legal-sign-off",
             deciders="contacts.billing")], tasks=[
    TaskSpec(key="hardware-return", title="Hardware", owner=OWNER, after="settlement"),
    TaskSpec(key="badge-return", title="Badges", owner=LEGAL, after="settlement")])
_folder = Path(tempfile.mkdtemp())
new_key_file(_folder / "links.json")
_keys = load_link_keys(_folder / "links.json", None, None)
assert _keys is not None
KEYS = _keys
CLIENT = client_file()
BILLING = CLIENT.contacts.billing.email


def _state() -> tuple[OffboardingState, dict[str, str]]:
    """Waiting on round 2 of legal-sign-off (round 1 stale), both tasks asked; and the
    documents there are, by what they are."""
    s = OffboardingState(WID, CLIENT, playbook=PLAYBOOK, second_ops=False)
    s.status.run_id = RUN
    s.link_keys = KEYS.public()
    stale = s.ask_gate(s.gates["legal-sign-off"], None, NOW).document
    current = s.ask_gate(s.gates["legal-sign-off"], None, NOW).document
    other = s.ask_gate(s.gates["billing-release"], None, NOW).document
    s.start_wait("legal-sign-off", NOW, None)
    docs = {"stale": stale, "current": current, "other-gate": other}
    for spec in PLAYBOOK.tasks:
        task = s.task(spec.key)
        assert task is not None
        task.document = docs[spec.key] = digest(RUN, TASK_FAMILY, spec.key)
        s.start_wait(f"task-{spec.key}", NOW, None)
    return s, docs


_, DOCS = _state()
PEOPLE = [LEGAL, OWNER, OTHER, BILLING, LEGAL.upper()]
FAMILIES = ["legal-sign-off", "billing-release", TASK_FAMILY, "settlement", "data"]
documents = st.sampled_from([*DOCS.values(), "cd" * 32])
links = st.one_of(
    st.none(), st.just(""), st.text(max_size=40),
    st.builds(lambda w, f, d, e, r: KEYS.mint(w, f, d, e, NOW, run_id=r),
              st.sampled_from([WID, "offboarding-y"]), st.sampled_from(FAMILIES), documents,
              st.sampled_from(PEOPLE), st.sampled_from([RUN, "run-1", None])))
payloads = st.fixed_dictionaries({
    "by": st.sampled_from(PEOPLE), "link": links,
    "gate": st.sampled_from([*FAMILIES, "no-such-gate", "x"]),
    "document": st.one_of(documents, documents.map(lambda d: d[:12])),
    "task": st.sampled_from(["hardware-return", "badge-return", "terms-met", "nope"]),
    "reason": st.sampled_from(["clause 7", ""]), "note": st.text(max_size=50)})
messages = st.tuples(st.sampled_from(["approve-gate", "reject-gate", "complete-task"]),
                     payloads, st.booleans())


def _message(name: str, payload: dict[str, Any]) -> Message | None:
    fields = ACTIONS[name].model.model_fields
    try:
        return ACTIONS[name].model.model_validate(
            {k: v for k, v in payload.items() if k in fields})
    except ValidationError:
        return None  # the handler records it as ignored: malformed


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(messages, min_size=1, max_size=8))
def test_any_decision_is_refused_in_words_or_applied_as_its_link_allows(
        sent: list[tuple[str, dict[str, Any], bool]]) -> None:
    s, _ = _state()
    for name, payload, as_signal in sent:
        msg = _message(name, payload)
        if msg is None:
            continue
        via = "signal" if as_signal else msg.via
        try:
            validate(s, name, msg, via, NOW)
        except Rejected:
            continue
        apply(s, name, msg, via, NOW)
        if via != "link":
            continue
        assert isinstance(msg, ApproverDecision) and msg.link is not None
        claims = parse(msg.link, KEYS.public(), NOW)
        assert (claims.w, claims.r, claims.e.lower()) == (WID, RUN, msg.by.lower())
        if name == "complete-task":
            task = s.task(payload["task"])
            assert task is not None and claims.f == TASK_FAMILY
            assert claims.d == task.document and task.owner is not None
            assert claims.e.lower() == task.owner.lower()
        else:
            current = s.gate_round(payload["gate"])
            assert current is not None and claims.f == current.gate
            assert claims.d == current.document == DOCS["current"]
    assert len(s.status.model_dump_json().encode()) < STATUS_BUDGET
