"""The bytes a message goes out as (issue 24): the mailer's wire policy writes a short
printable ASCII header as it is instead of folding it through ``email.header.Header``, and
sets its own multipart boundary. Neither may change what is sent: generated headers, and
whole messages with generated subjects, names and addresses, flatten to the same bytes as
under the standard library's compat32 with CRLF line endings."""

from __future__ import annotations

import email.policy
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from offboarding.activities.email import Mailer
from offboarding.activities.mime import SMTP_WIRE
from offboarding.config import Settings
from offboarding.models.records import EmailRequest

COMPAT32_CRLF = email.policy.compat32.clone(linesep="\r\n")
NAMES = st.sampled_from(["Subject", "To", "Cc", "From", "Reply-To", "Message-ID", "Date",
                         "X-Offboarding-Workflow", "Content-Type", "X-A-Rather-Long-Name"])


def _folded(policy: email.policy.Policy, name: str, value: str) -> bytes | type:
    try:
        return policy.fold_binary(name, value)
    except Exception as err:  # the same refusal counts as the same answer
        return type(err)


@settings(max_examples=3000, deadline=None)
@given(NAMES, st.text(max_size=120) | st.text(st.characters(min_codepoint=32,
                                                            max_codepoint=126), max_size=90))
def test_any_header_folds_to_the_bytes_compat32_gives(name: str, value: str) -> None:
    assert _folded(SMTP_WIRE, name, value) == _folded(COMPAT32_CRLF, name, value)


MAILER = Mailer(Settings(_env_file=None, state_dir=Path(tempfile.mkdtemp())))


@settings(max_examples=200, deadline=None)
@given(subject=st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
                       min_size=1, max_size=100).filter(str.strip),
       name=st.text(max_size=40), local=st.from_regex(r"[a-z0-9.]{1,40}", fullmatch=True))
def test_a_whole_message_flattens_to_the_same_bytes(subject: str, name: str,
                                                    local: str) -> None:
    req = EmailRequest(workflow_id="offboarding-wire", key="notice", template="notice",
                       to=[f"{local.strip('.') or 'x'}@client.example"],
                       context={}, template_text=f"Subject: {subject}\nDear {name},\n\nBye.\n")
    try:
        msg = MAILER.render(req)
    except Exception:  # a subject the mailer refuses is another test's subject
        return
    assert msg.as_bytes(policy=SMTP_WIRE) == msg.as_bytes(policy=COMPAT32_CRLF)
