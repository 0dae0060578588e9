"""A message under a playbook: rendered from the playbook's own text (compiled in the
sandbox, cached by its hash) with its sender name and reply-to, and refused as
unbuildable, like any message, when it cannot be made."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from offboarding.activities.email import Mailer
from offboarding.activities.mime import subject_of
from offboarding.config import Settings
from offboarding.models.records import EmailRequest

CONTEXT = {"client_name": "Acme Analytics Ltd", "contact": {"name": "Priya Raman"},
           "contract": {"reference": "MSA-2024-017"}, "end_date": "2027-01-31"}
"""What the notice's override below uses of the notice's context."""


def _request(text: str | None, **changes: Any) -> EmailRequest:
    return EmailRequest(workflow_id="offboarding-acme", key="notice", template="notice",
                        to=["priya@client.example"], context=CONTEXT, template_text=text,
                        **changes)


def test_a_message_has_the_playbooks_words_sender_name_and_reply_to(tmp_path: Path) -> None:
    mailer = Mailer(Settings(_env_file=None, state_dir=tmp_path,
                             mail_from="Client Services <client-services@example.com>"))
    text = ("Subject: Our contract {{ contract.reference }} ends on {{ end_date }}\n"
            "Dear {{ contact.name }},\n\nour legal team signs it off.\n")
    msg = mailer.render(_request(text, sender_name="Zoë Müller, Legal",
                                 reply_to="legal@example.com"))
    assert subject_of(msg) == "Our contract MSA-2024-017 ends on 2027-01-31"
    body = msg.get_payload()[0].get_payload(decode=True).decode()  # type: ignore[index,union-attr]
    assert "our legal team signs it off" in body
    received = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    [sender] = received["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Zoë Müller, Legal",
                                                       "client-services@example.com")
    assert received["Reply-To"] == "legal@example.com"
    ascii_name = mailer.render(_request(text, sender_name='Legal, "Example"'))
    assert ascii_name["From"] == '"Legal, \\"Example\\"" <client-services@example.com>'
    plain = mailer.render(_request(text))
    assert plain["From"] == "Client Services <client-services@example.com>"
    assert plain["Reply-To"] is None


def test_an_override_is_plain_text_never_escaped(tmp_path: Path) -> None:
    mailer = Mailer(Settings(_env_file=None, state_dir=tmp_path))
    req = _request("Subject: {{ client_name }}\n{{ client_name }} <b>")
    msg = mailer.render(req.model_copy(update={"context": {"client_name": "Smith & Co"}}))
    assert subject_of(msg) == "Smith & Co"
    assert "Smith & Co <b>" in msg.get_payload()[0].get_payload(decode=True).decode()  # type: ignore[index,union-attr]


@pytest.mark.parametrize(("text", "changes", "why"), [
    ("Subject: {{ client_name.__class__ }}\nx", {}, "unsafe"),
    ("Dear you\nx", {}, "the playbook's template notice.txt must start with 'Subject: '"),
    ("Subject: x\n{{ nope }}", {}, "'nope' is undefined"),
    ("Subject: x\n", {"sender_name": "Legal\r\nBcc: x@example.com"}, "the From name header"),
])
def test_an_override_that_cannot_be_built_is_unbuildable(
        tmp_path: Path, text: str, changes: dict[str, Any], why: str) -> None:
    mailer = Mailer(Settings(_env_file=None, state_dir=tmp_path))
    with pytest.raises(ApplicationError) as err:
        mailer.render(_request(text, **changes))
    assert err.value.type == "MessageUnbuildable" and err.value.non_retryable
    assert why in str(err.value), err.value
