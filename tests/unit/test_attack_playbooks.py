"""A playbook that loads must work when its offboarding runs: generated templates and
subjects that pass ``load_playbook`` are built by the mailer."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from offboarding.activities.email import SMTP_WIRE, Mailer
from offboarding.config import Settings
from offboarding.models.records import EmailRequest
from offboarding.playbooks.samples import sample_context
from offboarding.playbooks.templates import template_problems

MAILER = Mailer(Settings(_env_file=None, state_dir=Path(tempfile.mkdtemp())))


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
