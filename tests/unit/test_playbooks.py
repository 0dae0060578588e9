"""A playbook is checked whole before anything starts: a wrong one is refused naming the
field, the value and what was expected; the examples load; the sample every template is
rendered with at load is complete; and no text, however odd, crashes the loader."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offboarding.activities.email import TEMPLATES
from offboarding.models.loading import InputError
from offboarding.models.playbook import ANCHORS, MAX_TEMPLATE_BYTES, Playbook
from offboarding.playbooks import load_playbook
from offboarding.playbooks.samples import known_templates, sample_base, sample_client
from offboarding.playbooks.templates import replaceable, template_problems
from offboarding.workflows.sending import base_context
from tests.conftest import EXAMPLES, ROOT

GATE = {"id": "legal-sign-off", "title": "Legal sign-off", "after": "settlement",
        "deciders": ["legal@example.com"]}
TASK = {"key": "hardware-return", "title": "Hardware returned", "after": "access-revocation",
        "owner": "am@example.com"}


def write(folder: Path, data: dict[str, Any] | str, **templates: str | bytes) -> Path:
    """A playbook file in ``folder``, with its templates in ``folder/mail``."""
    path = folder / "playbook.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    for name, body in templates.items():
        (folder / "mail").mkdir(exist_ok=True)
        target = folder / "mail" / name.replace("__", ".")
        target.write_bytes(body if isinstance(body, bytes) else body.encode())
    return path


def refusal(folder: Path, data: dict[str, Any] | str, **templates: str | bytes) -> str:
    with pytest.raises(InputError) as err:
        load_playbook(write(folder, data, **templates))
    return str(err.value)


# ----- the sample every template is checked with -------------------------------------------

def test_the_sample_has_what_the_workflow_gives_every_message() -> None:
    client = sample_client()
    run = SimpleNamespace(client=client, workflow_id="offboarding-x", s=SimpleNamespace(
        status=SimpleNamespace(contract_end=client.contract.end_date, short_notice=False)))
    assert set(sample_base(client)) == set(base_context(run, None))  # type: ignore[arg-type]


def test_every_template_the_workflow_sends_has_a_sample() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "offboarding" / "workflows").rglob("*.py"))
    sent = set(re.findall(r'template="(\w+)"', source)) | \
        set(re.findall(r'notify\(run, [^,]+, "(\w+)"', source))
    assert sent <= known_templates(), sent - known_templates()
    assert known_templates() == set(replaceable())


@pytest.mark.parametrize("name", replaceable())
def test_every_packaged_template_renders_with_the_sample(name: str) -> None:
    """So the sample is complete: a copy of a packaged template is always a valid override."""
    assert template_problems(name, (TEMPLATES / f"{name}.txt").read_bytes(), name) == []


# ----- refused, naming the field --------------------------------------------------------------

BAD: list[tuple[str, dict[str, Any] | str, dict[str, str | bytes], str]] = [
    ("unknown step", {"name": "acme", "steps": {"settlement": False}}, {},
     "steps.settlement.[key]: Input should be 'review-meeting', 'feedback', "
     "'knowledge-transfer' or 'keep-in-touch' (got 'settlement')"),
    ("gate after a missing step", {"name": "acme", "gates": [{**GATE, "after": "setlement"}]},
     {}, "gates.0.after: 'setlement' is no step or gate of this playbook (a gate after a "
     "missing step); expected one of: settlement, data-transfer, access-revocation, "
     "knowledge-transfer"),
    ("gate after a late step", {"name": "acme", "gates": [{**GATE, "after": "farewell"}]}, {},
     "gates.0.after: 'farewell' is a built-in step a gate cannot follow"),
    ("task without owner", {"name": "acme", "tasks": [{k: v for k, v in TASK.items()
                                                       if k != "owner"}]}, {},
     "tasks.0.owner: Field required"),
    ("task after a task", {"name": "acme", "tasks": [TASK, {**TASK, "key": "keys-back",
                                                             "after": "hardware-return"}]},
     {}, "tasks.1.after: 'hardware-return' is a task"),
    ("template with an unknown variable", {"name": "acme", "mail": {"templates": "mail"}},
     {"notice__txt": "Subject: Goodbye {{ client_nmae }}\nBye."},
     "mail.templates: mail/notice.txt uses client_nmae, which the notice message does not "
     "have; expected one of: account_manager, billing, client_name"),
    ("template with an unknown attribute", {"name": "acme", "mail": {"templates": "mail"}},
     {"notice__txt": "Subject: Goodbye\n\n{{ contact.nmae }}"},
     "mail.templates: mail/notice.txt (line 3): 'dict object' has no attribute 'nmae'"),
    ("link where a message has none", {"name": "acme", "mail": {"templates": "mail"}},
     {"reminder__txt": "Subject: Hi\n{{ link_url }}"},
     "'link_url' is undefined in offboardings begun before links"),
    ("override with an empty subject", {"name": "acme", "mail": {"templates": "mail"}},
     {"farewell__txt": "Subject: {{ '' }}\nBye."},
     "mail.templates: mail/farewell.txt renders an empty subject ('Subject: ')"),
    ("override without a subject", {"name": "acme", "mail": {"templates": "mail"}},
     {"farewell__txt": "Dear {{ contact.name }},\nBye."},
     "its first line renders as 'Dear Priya Raman,'; expected 'Subject: '"),
    ("template syntax", {"name": "acme", "mail": {"templates": "mail"}},
     {"check_in__txt": "Subject: Hi\n{% for x in contract.services %}"},
     "mail.templates: mail/check_in.txt: line 2: Unexpected end of template"),
    ("sandboxed", {"name": "acme", "mail": {"templates": "mail"}},
     {"check_in__txt": "Subject: {{ client_name.__class__ }}\n"},
     "mail.templates: mail/check_in.txt (line 1): the sandbox refuses it"),
    ("override for a template that does not exist", {"name": "acme",
                                                     "mail": {"templates": "mail"}},
     {"goodbye__txt": "Subject: Bye\n"}, "mail.templates: mail/goodbye.txt is not a template "
     "a playbook can replace; expected NAME.txt with NAME one of: access_revoked, check_in"),
    ("layout", {"name": "acme", "mail": {"templates": "mail"}}, {"layout__html": "<p>"},
     "mail.templates: mail/layout.html cannot be replaced"),
    ("template not UTF-8", {"name": "acme", "mail": {"templates": "mail"}},
     {"notice__txt": b"Subject: \xff\n"}, "mail.templates: mail/notice.txt is not UTF-8 text"),
    ("template too long", {"name": "acme", "mail": {"templates": "mail"}},
     {"notice__txt": "Subject: x\n" + "x" * MAX_TEMPLATE_BYTES},
     f"mail/notice.txt is {MAX_TEMPLATE_BYTES + 11} bytes; a template may be at most"),
    ("absolute templates folder", {"name": "acme", "mail": {"templates": "/etc"}}, {},
     "mail.templates: '/etc' is an absolute path"),
    ("templates folder outside", {"name": "acme", "mail": {"templates": "../mail"}}, {},
     "mail.templates: '../mail' leaves the playbook's folder"),
    ("missing templates folder", {"name": "acme", "mail": {"templates": "words"}}, {},
     "mail.templates: 'words' is not a folder"),
    ("a switched-off step something depends on",
     {"name": "acme", "steps": {"knowledge-transfer": False},
      "tasks": [{**TASK, "after": "knowledge-transfer"}]}, {},
     "tasks.0.after: 'knowledge-transfer' is switched off (steps.knowledge-transfer: false), "
     "a switched-off step something depends on"),
    ("duplicate key", "name: acme\nname: acme2\n", {},
     "cannot be parsed: 'name' is given twice, on lines 1 and 2"),
    ("unknown field", {"name": "acme", "colour": "blue"}, {},
     "colour: Extra inputs are not permitted"),
    ("unknown gate field", {"name": "acme", "gates": [{**GATE, "decider": "x@example.com"}]},
     {}, "gates.0.decider: Extra inputs are not permitted"),
    ("cycle between gates", {"name": "acme", "gates": [
        {**GATE, "id": "gate-a", "after": "gate-b"}, {**GATE, "id": "gate-b", "after": "gate-a"}]},
     {}, "gates.0.after: 'gate-b' makes the gates wait on each other in a circle "
     "(gate-a -> gate-b -> gate-a)"),
    ("gate after itself", {"name": "acme", "gates": [{**GATE, "after": "legal-sign-off"}]}, {},
     "(legal-sign-off -> legal-sign-off)"),
    ("reserved id", {"name": "acme", "gates": [{**GATE, "id": "meeting"}]}, {},
     "gates.0.id: 'meeting' is a reserved name"),
    ("built-in step as id", {"name": "acme", "gates": [{**GATE, "id": "archive"}]}, {},
     "gates.0.id: 'archive' is a built-in step"),
    ("built-in manual item as key", {"name": "acme", "tasks": [{**TASK, "key": "terms-met"}]},
     {}, "tasks.0.key: 'terms-met' is a built-in manual item"),
    ("id used twice", {"name": "acme", "gates": [GATE], "tasks": [{**TASK,
                                                                  "key": "legal-sign-off"}]},
     {}, "tasks.0.key: 'legal-sign-off' is used already by gates.0.id"),
    ("gate named as a task's wait", {"name": "acme", "gates": [{**GATE, "id": "task-abc"}],
                                     "tasks": [{**TASK, "key": "abc"}]}, {},
     "gates.0.id: 'task-abc' is the wait of tasks.0"),
    ("statement bound too early", {"name": "acme", "gates": [
        {**GATE, "after": "access-revocation", "binds": "statement"}]}, {},
     "gates.0.binds: 'statement' needs the gate after settlement or knowledge-transfer"),
    ("alias loop", "name: acme\ndescription: &x [*x]\n", {},
     "description.0 refers back to description, which holds it (a YAML alias *name used "
     "inside its own anchor &name)"),
    ("alias bomb", "name: acme\n" + "".join(
        f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9) if n else '1, 2, 3, 4, 5, 6, 7, 8, 9'}]\n"
        for n in range(8)), {}, "values once its YAML aliases (*name) are expanded"),
    ("not a mapping", "- name: acme\n", {}, "must hold an object"),
]


@pytest.mark.parametrize(("case", "data", "templates", "expected"), BAD,
                         ids=[case for case, *_ in BAD])
def test_a_wrong_playbook_is_refused_naming_the_field(
        tmp_path: Path, case: str, data: dict[str, Any] | str,
        templates: dict[str, str | bytes], expected: str) -> None:
    message = refusal(tmp_path, data, **templates)
    assert expected in message, message
    assert "Traceback" not in message


def test_a_link_leading_out_of_the_templates_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("Subject: secret\n")
    (tmp_path / "book").mkdir()
    path = write(tmp_path / "book", {"name": "acme", "mail": {"templates": "mail"}},
                 check_in__txt="Subject: Hi\n")
    (tmp_path / "book" / "mail" / "notice.txt").symlink_to(outside)
    message = refusal(tmp_path / "book", path.read_text())
    assert "mail/notice.txt is a link leading out of the folder" in message
    (tmp_path / "book" / "link").symlink_to(tmp_path)
    message = refusal(tmp_path / "book", {"name": "acme", "mail": {"templates": "link"}})
    assert "mail.templates: 'link' is a link leading out of the playbook's folder" in message


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    message = refusal(tmp_path, {"name": "acme", "gates": [{**GATE, "id": "meeting",
                                                            "after": "nowhere"}],
                                 "mail": {"templates": "mail"}},
                      notice__txt="Subject: {{ nope }}\n")
    lines = message.splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == \
        ["gates.0.id", "gates.0.after", "mail.templates"], message


def test_a_playbook_too_large_to_travel_is_refused(tmp_path: Path) -> None:
    body = "Subject: Hello\n" + "word " * ((MAX_TEMPLATE_BYTES - 100) // 5)
    templates = {f"{name}__txt": body for name in replaceable()[:14]}
    message = refusal(tmp_path, {"name": "acme", "mail": {"templates": "mail"}}, **templates)
    assert "resolves to" in message and "at most 262144" in message


def test_a_file_too_large_or_not_utf8_is_refused(tmp_path: Path) -> None:
    (tmp_path / "playbook.yaml").write_bytes(b"name: \xff\n")
    with pytest.raises(InputError, match=r"is not UTF-8 text \(byte 6\)"):
        load_playbook(tmp_path / "playbook.yaml")
    (tmp_path / "playbook.yaml").write_text("name: acme\n" + "#" * 100_000)
    with pytest.raises(InputError, match="a playbook may be at most 100000"):
        load_playbook(tmp_path / "playbook.yaml")
    with pytest.raises(InputError, match="no such file"):
        load_playbook(tmp_path / "nothing.yaml")


# ----- accepted ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted((EXAMPLES / "playbooks").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_the_examples_load(path: Path) -> None:
    playbook = load_playbook(path)
    assert playbook.label == f"{path.stem}@{playbook.sha256[:12]}"


def test_the_legal_and_hardware_example_resolves_as_written() -> None:
    playbook = load_playbook(EXAMPLES / "playbooks" / "legal-and-hardware.yaml")
    assert playbook.off == ["feedback"]
    [gate], [task] = playbook.gates, playbook.tasks
    assert (gate.id, gate.after, gate.deciders, gate.binds) == \
        ("legal-sign-off", "settlement", ["legal@example.com"], "statement")
    assert (task.key, task.after, task.due_days) == ("hardware-return", "access-revocation", 10)
    assert list(playbook.templates) == ["notice"]
    assert playbook.templates["notice"].startswith("Subject: Our contract")
    assert playbook.sender_name and playbook.reply_to
    assert playbook.timings.notice_days == 45


def test_the_documentation_quotes_the_examples_label() -> None:
    label = load_playbook(EXAMPLES / "playbooks" / "legal-and-hardware.yaml").label
    assert label in (ROOT / "docs" / "playbooks.md").read_text(), "update docs/playbooks.md"


def test_the_hash_covers_the_file_and_every_template_and_nothing_else(tmp_path: Path) -> None:
    data = {"name": "acme", "mail": {"templates": "mail"}}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = load_playbook(write(tmp_path / "a", data, notice__txt="Subject: One\n"))
    moved = load_playbook(write(tmp_path / "b", data, notice__txt="Subject: One\n"))
    assert moved.sha256 == first.sha256, "the same words elsewhere: the same playbook"
    (tmp_path / "b" / "mail" / "notice.txt").write_text("Subject: Two\n")
    assert load_playbook(tmp_path / "b" / "playbook.yaml").sha256 != first.sha256
    (tmp_path / "b" / "mail" / "notice.txt").write_text("Subject: One\n")
    (tmp_path / "b" / "mail" / "check_in.txt").write_text("Subject: One\n")
    assert load_playbook(tmp_path / "b" / "playbook.yaml").sha256 != first.sha256


# ----- whatever the text, a Playbook or an InputError --------------------------------------

def _outcome(text: str, templates: dict[str, str] | None = None) -> Playbook | InputError:
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), text, **{f"{k}__txt": v for k, v in (templates or {}).items()})
        try:
            return load_playbook(path)
        except InputError as err:
            return err


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300) | st.text(alphabet="{}[]:-&*!|>#'\"\n ab1", max_size=120))
def test_any_text_is_a_playbook_or_an_input_error(text: str) -> None:
    assert isinstance(_outcome(text), Playbook | InputError)


NAMES = st.sampled_from(["legal", "legal-sign-off", "hw-1", "settlement", "meeting", "archive",
                         "terms-met", "task-hw-1", "Legal", "a", "x" * 41]) | st.text(max_size=12)
AFTERS = NAMES | st.sampled_from(ANCHORS)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gates=st.lists(st.tuples(NAMES, AFTERS, st.sampled_from(["statement", "export",
                                                                "nothing"])), max_size=4),
       tasks=st.lists(st.tuples(NAMES, AFTERS), max_size=3),
       off=st.dictionaries(st.sampled_from(["knowledge-transfer", "feedback"]), st.booleans()))
def test_generated_playbooks_load_only_when_every_rule_holds(
        gates: list[tuple[str, str, str]], tasks: list[tuple[str, str]],
        off: dict[str, bool]) -> None:
    data = {"name": "acme", "steps": off,
            "gates": [{**GATE, "id": i, "after": a, "binds": b} for i, a, b in gates],
            "tasks": [{**TASK, "key": k, "after": a} for k, a in tasks]}
    outcome = _outcome(yaml.safe_dump(data))
    if isinstance(outcome, InputError):
        assert str(outcome).count("\n") >= 1 and "Traceback" not in str(outcome)
        return
    ids = [g.id for g in outcome.gates] + [t.key for t in outcome.tasks]
    assert len(set(ids)) == len(ids)
    afters = [g.after for g in outcome.gates] + [t.after for t in outcome.tasks]
    for after in afters:
        assert after in ANCHORS or after in {g.id for g in outcome.gates}
        assert after not in outcome.off
    for gate in outcome.gates:  # every chain of gates starts at a step
        seen: set[str] = set()
        at = gate.id
        while at not in ANCHORS:
            assert at not in seen
            seen.add(at)
            at = next(g.after for g in outcome.gates if g.id == at)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(replaceable()),
       st.text(alphabet="{}%#|.()[]'\" _-\nSubjectaxcontract", max_size=80))
def test_any_template_text_is_accepted_or_explained(name: str, body: str) -> None:
    problems = template_problems(name, f"Subject: x\n{body}".encode(), f"mail/{name}.txt")
    assert all(p.startswith(f"mail.templates: mail/{name}.txt") for p in problems)
