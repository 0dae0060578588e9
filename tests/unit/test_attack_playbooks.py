"""A playbook that loads must work when its offboarding runs: generated templates,
subjects and addresses that pass ``load_playbook`` are built by the mailer, for a client
file that leaves out everything it may, and every address goes out in a form SMTP takes."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.exceptions import ApplicationError

from offboarding.activities.email import Mailer
from offboarding.activities.mime import SMTP_WIRE, subject_of
from offboarding.config import Settings
from offboarding.models.client_file import ClientFile
from offboarding.models.loading import InputError
from offboarding.models.records import EmailRequest, LinkRequest
from offboarding.playbooks import load_playbook
from offboarding.playbooks.samples import sample_base, sample_context
from offboarding.playbooks.templates import template_problems
from offboarding.security.links import new_key_file

MAILER = Mailer(Settings(_env_file=None, state_dir=Path(tempfile.mkdtemp())))
SPARSE = ClientFile.model_validate({
    "client_id": "bare-client", "client_name": "Bare Ltd",
    "contacts": {"primary": {"name": "P", "email": "p@client.example"},
                 "data_steward": {"name": "S", "email": "s@client.example"},
                 "billing": {"name": "B", "email": "b@client.example"}},
    "contract": {"reference": "R-1", "start_date": "2024-01-01", "end_date": "2027-01-31",
                 "services": ["Ops"]},
    "approvers": {"finance": ["f@example.com"], "data_verification": ["s@client.example"]}})
"""A client file with only what it must have: no renewal offer, objectives, KPIs..."""


def _built(text: str, context: dict[str, Any], **changes: Any) -> bytes:
    req = EmailRequest(workflow_id="offboarding-x", key="notice", template="notice",
                       to=["p@client.example"], context=context, template_text=text,
                       **changes)
    return MAILER.render(req).as_bytes(policy=SMTP_WIRE)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_any_subject_that_loads_is_one_the_mailer_sends(subject: str) -> None:
    text = f"Subject: {subject}\nDear {{{{ contact.name }}}},\n"
    if template_problems("notice", text.encode(), "mail/notice.txt"):
        return
    _built(text, sample_context("notice"))


OPTIONAL = ["renewal_offer.summary", "renewal_offer.valid_until", "contract.objectives[0]",
            "contract.achievements | first", "contract.kpis[0].name",
            "contract.milestones[-1]", "contract.outstanding_deliverables[0]",
            "contract.renewal_offer.summary", "client_name", "contract.services[0]"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(OPTIONAL), min_size=1, max_size=3),
       st.sampled_from(["{{ %s }}", "{%% if %s %%}yes{%% endif %%}", "{{ %s | default('-') }}"]))
def test_a_template_that_loads_is_built_for_a_client_file_without_its_optional_parts(
        paths: list[str], form: str) -> None:
    text = "Subject: The end\n" + "\n".join(form % p for p in paths) + "\n"
    if template_problems("notice", text.encode(), "mail/notice.txt"):
        return
    _built(text, sample_base(SPARSE))


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(["legal@exämple.com", "legal@xn--exmple-cua.com", "jö@example.com",
                        "legal@example.com", "légal@exämple.com"]))
def test_an_address_that_loads_is_one_the_mailer_writes(address: str) -> None:
    folder = Path(tempfile.mkdtemp())
    (folder / "p.yaml").write_text(yaml.safe_dump({
        "name": "intl", "mail": {"reply_to": address},
        "gates": [{"id": "legal-sign-off", "title": "Legal", "after": "settlement",
                   "deciders": [address]}],
        "tasks": [{"key": "hardware-return", "title": "Hardware", "after": "settlement",
                   "owner": address}]}, allow_unicode=True))
    try:
        playbook = load_playbook(folder / "p.yaml")
    except InputError:
        return
    reply_to, decider, owner = (playbook.reply_to, playbook.gates[0].deciders[0],
                                playbook.tasks[0].owner)
    assert reply_to is not None and isinstance(decider, str)
    raw = _built("Subject: hi\nbody\n", {}, reply_to=reply_to)
    assert raw.isascii()
    for to in (decider, owner):
        req = EmailRequest(workflow_id="offboarding-x", key="gate", template="notice",
                           to=[to], context={}, template_text="Subject: hi\nbody\n")
        assert MAILER.render(req).as_bytes(policy=SMTP_WIRE).isascii()
        assert all(r.isascii() for r in MAILER.recipients(req)), "SMTP without SMTPUTF8"


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(4000, 30_000), st.sampled_from(["yaml", "json"]),
       st.sampled_from(["timings.notice_days", "timings.retention_days", "description",
                        "name"]))
def test_a_number_of_any_length_is_read_or_refused_in_words(
        digits: int, form: str, field: str) -> None:
    """Python converts at most 4,300 digits of an int by default: more raised a bare
    ValueError out of the reader (a traceback, not a line naming the file)."""
    section, _, key = field.rpartition(".")
    number = "9" * digits
    inner = f'"{key}": {number}'
    body = (f'{{"name": "acme", "{section}": {{{inner}}}}}' if section
            else "{" + (inner if key == "name" else f'"name": "acme", {inner}') + "}")
    path = Path(tempfile.mkdtemp()) / f"p.{form}"
    path.write_text(body)
    with contextlib.suppress(InputError):  # anything else fails the test
        load_playbook(path)


def _linked_mailer() -> Mailer:
    folder = Path(tempfile.mkdtemp())
    new_key_file(folder / "links.json")
    return Mailer(Settings(_env_file=None, state_dir=folder,
                           link_key_file=folder / "links.json"))


LINKED = [_linked_mailer(), _linked_mailer()]
LEAKS = ["{{ link_url }}", "{{ link_url | reverse }}", "{{ link_url | replace('.', ' ') }}",
         "{{ link_url[-90:] }}", "{{ link_url | upper }}", "{% set x = link_url %}{{ x }}"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(LEAKS), st.booleans(), st.booleans())
def test_no_link_reaches_what_the_history_records(leak: str, in_subject: bool,
                                                  only_for_real: bool) -> None:
    """A receipt's subject and an unbuildable message's error are recorded in the
    offboarding's history (and a problem's text in its status): readable by anyone with
    namespace access, who could then decide as the approver. No template may put the
    approver's link there, whether it loaded or was put into a workflow input by hand."""
    expression = leak.strip("{} ").replace("set x = link_url %}{{ x", "link_url")
    failing = "{{ [][" + expression + "] }}"
    body = leak if in_subject else failing
    if only_for_real:  # what the load check's sample never shows
        body = "{% if client_name == 'Acme' %}" + body + "{% endif %}"
    text = (f"Subject: Please decide {body}\nhello\n" if in_subject
            else f"Subject: Please decide\n{body}\n")
    if template_problems("gate_request", text.encode(), "mail/gate_request.txt"):
        return
    req = EmailRequest(workflow_id="offboarding-x", key="gate-legal-1-1",
                       template="gate_request", to=["legal@example.com"],
                       context={**{k: v for k, v in sample_context("gate_request").items()
                                   if not k.startswith("link_")}, "client_name": "Acme"},
                       template_text=text, link=LinkRequest(family="legal", document="ab" * 32))
    recorded = []
    for mailer in LINKED:
        try:
            msg, link = mailer.compose(req)
        except ApplicationError as err:
            recorded.append(str(err))
        else:
            recorded.append(subject_of(msg))
            assert link["link_url"].rsplit("/", 1)[1] not in str(msg["Subject"])
    assert recorded[0] == recorded[1], "what is recorded depends on the link"
