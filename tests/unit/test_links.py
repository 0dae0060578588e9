"""Approval links without a server: a link is genuine, unexpired and bound to one
offboarding, decision, document and person, or it is refused with words saying why; the
workflow checks the same, and records the channel each decision came by (issue 12)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from offboarding.models.messages import ApproveSettlement, Cancel, DisputeSettlement, VerifyData
from offboarding.models.records import DataPackage
from offboarding.models.settlement import compute_statement
from offboarding.models.stages import Wait
from offboarding.security.links import (
    BadLink,
    LinkKeyError,
    LinkKeys,
    load_link_keys,
    new_key_file,
    parse,
)
from offboarding.workflows.rules import Rejected, apply, validate
from offboarding.workflows.state import OffboardingState
from tests.helpers import client_file

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
WID = "offboarding-x"


@pytest.fixture
def keys(tmp_path: Path) -> LinkKeys:
    new_key_file(tmp_path / "links.json")
    loaded = load_link_keys(tmp_path / "links.json", None, None)
    assert loaded is not None
    return loaded


def _mint(keys: LinkKeys, *, family: str = "settlement", document: str = "ab" * 32,
          email: str = "finance.lead@example.com", wid: str = WID,
          now: datetime = NOW) -> str:
    return keys.mint(wid, family, document, email, now)


def test_a_link_carries_what_it_was_issued_for(keys: LinkKeys) -> None:
    claims = parse(_mint(keys), keys.public(), NOW)
    assert (claims.w, claims.f, claims.d, claims.e) == \
        (WID, "settlement", "ab" * 32, "finance.lead@example.com")
    assert claims.expires == NOW + timedelta(days=14)


def test_an_altered_link_is_refused(keys: LinkKeys) -> None:
    token = _mint(keys)
    version, kid, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["e"] = "mallory@example.com"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for bad in (f"{version}.{kid}.{forged}.{sig}",
                token[:-2] + ("AA" if not token.endswith("AA") else "BB")):
        with pytest.raises(BadLink, match="signature does not match"):
            parse(bad, keys.public(), NOW)


@pytest.mark.parametrize(("token", "why"), [
    ("", "malformed"), ("o1.l1.x", "malformed"), ("o2.l1.a.b", "malformed"),
    ("o1.l1." + "A" * 2000 + ".x", "malformed"), ("o1.l1.ä.x", "malformed"),
])
def test_a_malformed_link_is_refused_unread(keys: LinkKeys, token: str, why: str) -> None:
    with pytest.raises(BadLink, match=why):
        parse(token, keys.public(), NOW)


def test_an_expired_link_or_one_signed_with_an_unknown_key_is_refused(
        keys: LinkKeys, tmp_path: Path) -> None:
    with pytest.raises(BadLink, match="expired on 2026-12-05"):
        parse(_mint(keys), keys.public(), NOW + timedelta(days=14))
    new_key_file(tmp_path / "other.json", kid="l2")
    other = load_link_keys(tmp_path / "other.json", None, None)
    assert other is not None
    with pytest.raises(BadLink, match="key we do not know"):
        parse(_mint(other), keys.public(), NOW)
    # Same key id, another key: the signature gives it away.
    new_key_file(tmp_path / "impostor.json", kid="l1")
    impostor = load_link_keys(tmp_path / "impostor.json", None, None)
    assert impostor is not None
    with pytest.raises(BadLink, match="signature"):
        parse(_mint(impostor), keys.public(), NOW)


@pytest.mark.parametrize(("env", "active", "why"), [
    ('{"l1": "not base64!"}', None, "'l1' is not base64"),
    ('{"l1": "' + base64.b64encode(b"short").decode() + '"}', None, "must be 32 bytes, got 5"),
    ('{"l1": "' + base64.b64encode(bytes(32)).decode() + '"}', "l9", "'l9' is not among"),
    ('{"l-1": "' + base64.b64encode(bytes(32)).decode() + '"}', None, "letters and digits"),
    ("[1]", None, "no link keys"), ("{", None, "not a JSON object"),
])
def test_bad_link_keys_are_named_never_shown(env: str, active: str | None, why: str) -> None:
    with pytest.raises(LinkKeyError, match=why) as err:
        load_link_keys(None, env, active)
    assert base64.b64encode(bytes(32)).decode() not in str(err.value)


# ----- the workflow's side: rules.validate and rules.apply -----------------------------

def _settling(keys: LinkKeys, *, require_links: bool = False
              ) -> tuple[OffboardingState, str, str]:
    cf = client_file("contract-end")
    s = OffboardingState(WID, cf, require_links=require_links)
    s.link_keys.update(keys.public())  # as the mail receipts would tell it
    s.add_statement(compute_statement(cf.account, version=1, issued=date(2026, 11, 1),
                                      adjustments=[]))
    s.start_wait(Wait.SETTLEMENT_APPROVAL, NOW, None)
    return s, s.status.statements[-1].hash, cf.approvers.finance[0]


def test_a_decision_through_a_link_is_recorded_with_its_channel(keys: LinkKeys) -> None:
    s, doc, who = _settling(keys)
    msg = ApproveSettlement(by=who, statement_hash=doc, link=_mint(keys, document=doc,
                                                                   email=who))
    validate(s, "approve-settlement", msg, "link", NOW)
    apply(s, "approve-settlement", msg, "link", NOW)
    decision = s.status.decisions[-1]
    assert (decision.by, decision.via, decision.about) == (who, "link", doc)


@pytest.mark.parametrize(("change", "why"), [
    ({"email": "cfo@example.com"}, "issued to cfo@example.com"),
    ({"wid": "offboarding-other"}, "another offboarding"),
    ({"family": "data"}, "another offboarding or decision"),
    ({"document": "cd" * 32}, "has been replaced"),
    ({"now": NOW - timedelta(days=15)}, "expired"),
])
def test_the_workflow_refuses_a_link_not_issued_for_this_decision(
        keys: LinkKeys, change: dict[str, object], why: str) -> None:
    s, doc, who = _settling(keys)
    token = _mint(keys, **{"document": doc, "email": who, **change})  # type: ignore[arg-type]
    msg = ApproveSettlement(by=who, statement_hash=doc, link=token)
    with pytest.raises(Rejected, match=why):
        validate(s, "approve-settlement", msg, "link", NOW)


def test_a_link_signed_with_a_key_no_mail_of_this_offboarding_named_is_refused(
        keys: LinkKeys) -> None:
    """Someone with namespace access who holds a key of their own cannot pass a typed
    decision off as a link: the workflow knows only the keys its own mail was signed with."""
    s, doc, who = _settling(keys)
    s.link_keys.clear()
    msg = ApproveSettlement(by=who, statement_hash=doc, link=_mint(keys, document=doc,
                                                                   email=who))
    with pytest.raises(Rejected, match="key we do not know"):
        validate(s, "approve-settlement", msg, "link", NOW)


def test_requiring_links_refuses_approver_decisions_by_cli_or_signal_not_ops_actions(
        keys: LinkKeys) -> None:
    s, doc, who = _settling(keys, require_links=True)
    dispute = DisputeSettlement(by=who, statement_hash=doc, reason="wrong")
    for via in ("cli", "signal"):
        with pytest.raises(Rejected, match="only through the approver's own link"):
            validate(s, "dispute-settlement", dispute, via, NOW)
    linked = dispute.model_copy(update={"link": _mint(keys, document=doc, email=who)})
    validate(s, "dispute-settlement", linked, "link", NOW)
    validate(s, "cancel", Cancel(by="ops", reason="client stays"), "cli", NOW)


def test_a_verification_must_carry_the_checksum_its_link_was_issued_for(
        keys: LinkKeys) -> None:
    cf = client_file("contract-end")
    s = OffboardingState(WID, cf)
    s.link_keys.update(keys.public())
    old, new = "1" * 64, "2" * 64
    for attempt, checksum in ((1, old), (2, new)):
        s.status.data_packages.append(DataPackage(attempt=attempt, location="x",
                                                  manifest_sha256=checksum, files=1, bytes=1))
    s.start_wait(Wait.DATA_VERIFICATION, NOW, None)
    steward = cf.approvers.data_verification[0]
    stale = VerifyData(by=steward, checksum=old,
                       link=_mint(keys, family="data", document=old, email=steward))
    with pytest.raises(Rejected, match="replaced"):
        validate(s, "verify-data", stale, "link", NOW)
    mixed = stale.model_copy(update={"checksum": new})
    with pytest.raises(Rejected, match="replaced"):
        validate(s, "verify-data", mixed, "link", NOW)
    current = VerifyData(by=steward, checksum=new,
                         link=_mint(keys, family="data", document=new, email=steward))
    validate(s, "verify-data", current, "link", NOW)


# ----- one spelling per token (issue 20, row 11) ----------------------------------------

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_padding_or_spare_bits_do_not_make_a_second_token(keys: LinkKeys) -> None:
    """A genuine link with ``==`` appended, or its last character changed to one that
    decodes to the same bytes, was accepted: two spellings of one token."""
    token = _mint(keys)
    sig = token.rsplit(".", 1)[1]
    # 64 bytes of signature in 86 characters: the last one carries 4 spare bits.
    same_bytes = sig[:-1] + B64URL[B64URL.index(sig[-1]) ^ 1]
    assert base64.urlsafe_b64decode(same_bytes + "==") == base64.urlsafe_b64decode(sig + "==")
    for spelling in (token + "==", token.rsplit(".", 1)[0] + "." + same_bytes):
        with pytest.raises(BadLink, match="signature does not match"):
            parse(spelling, keys.public(), NOW)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_change_to_a_genuine_token_is_refused(data: st.DataObject) -> None:
    keys = LinkKeys({"l1": Ed25519PrivateKey.from_private_bytes(b"k" * 32)}, "l1")
    token = _mint(keys)
    ends = [len(token), len(token) - 1, *(i for i, c in enumerate(token) if c == ".")]
    at = data.draw(st.one_of(st.sampled_from(ends), st.integers(0, len(token))), label="at")
    cut = data.draw(st.integers(0, 3), label="removed")
    put = data.draw(st.one_of(st.sampled_from(["=", "==", "%3D"]),
                              st.text(B64URL + ".=+/ ", max_size=3)), label="inserted")
    changed = token[:at] + put + token[at + cut:]
    if changed == token:
        return
    with pytest.raises(BadLink):
        parse(changed, keys.public(), NOW)
