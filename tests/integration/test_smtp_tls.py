"""The worker's mail over TLS (issue 24): the email activity and its ``SmtpPool`` against a
real aiosmtpd that refuses any message before STARTTLS and AUTH, with a CA and a server
certificate made for the test (``devtools/tls_smtp.py``). The worker trusts that CA through
``smtp_ca_file``; without it, only the system's CAs, which do not know it."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from devtools import tls_smtp
from devtools.mailcapture import MailCapture
from devtools.tls_smtp import PASSWORD, USER, TlsSmtp
from offboarding.activities.email import Mailer
from offboarding.activities.smtp_pool import SmtpCaFileError, SmtpPool, check_ca_file
from offboarding.config import Settings, SettingsError
from offboarding.models.records import EmailRequest

CONTEXT = {"contact": {"name": "Priya Raman"}, "client_name": "Acme Analytics Ltd",
           "account_manager": "Client Services"}
TO = "priya.raman@client.example"
SENDER = "client-services@example.com"
SUBJECT = "Checking in from your former partners"


class Peers(MailCapture):
    """Also remembers the client connection (address, port) each message came over."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list[tuple[str, int]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.peers.append(tuple(session.peer))
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSmtp]:
    with tls_smtp.serve(tmp_path_factory.mktemp("tls-smtp"), Peers()) as running:
        yield running


@pytest.fixture
def relay(server: TlsSmtp, monkeypatch: pytest.MonkeyPatch) -> TlsSmtp:
    """The server, its mail emptied; and OpenSSL's defaults as the system has them, so
    "the system's CAs" cannot include the test CA through the environment."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    server.capture.clear()
    assert isinstance(server.capture, Peers)
    server.capture.peers.clear()
    return server


def tls_settings(relay: TlsSmtp, tmp_path: Path, **update: Any) -> Settings:
    return Settings(_env_file=None, smtp_host=relay.host, smtp_port=relay.port,
                    smtp_security="starttls", smtp_username=USER,
                    smtp_password=SecretStr(PASSWORD), state_dir=tmp_path / "state", **update)


def request(key: str) -> EmailRequest:
    return EmailRequest(workflow_id="wf-tls", key=key, template="check_in", to=[TO],
                        context=CONTEXT)


def raw(n: int) -> bytes:
    return f"From: {SENDER}\r\nTo: {TO}\r\nSubject: {n}\r\n\r\nmessage {n}\r\n".encode()


async def test_mail_is_delivered_over_starttls_and_auth_trusting_the_ca_file(
    relay: TlsSmtp, tmp_path: Path,
) -> None:
    # The server does insist on both, so a delivery below went through both.
    assert "STARTTLS" in await tls_smtp.refused(relay, start_tls=False)
    assert "Authentication required" in await tls_smtp.refused(relay, start_tls=True)
    mailer = Mailer(tls_settings(relay, tmp_path, smtp_ca_file=relay.ca_file))
    receipt = await ActivityEnvironment().run(mailer.send_email, request("check-in"))
    mailer.pool.close()
    [msg] = relay.capture.messages
    assert msg.recipients == [TO]
    assert msg.subject == SUBJECT
    assert msg.message_id == receipt.message_id and receipt.to == [TO]


async def test_without_the_ca_file_the_server_is_not_trusted_and_nothing_is_sent(
    relay: TlsSmtp, tmp_path: Path,
) -> None:
    mailer = Mailer(tls_settings(relay, tmp_path))  # the system's CAs only
    with pytest.raises(ApplicationError, match="SSLCertVerificationError") as failed:
        await ActivityEnvironment().run(mailer.send_email, request("check-in"))
    assert failed.value.type == "SmtpUnavailable"  # retried: it goes once the CA is trusted
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        await mailer.pool.send(SENDER, [TO], raw(1))
    assert relay.capture.messages == []


async def test_a_certificate_for_another_name_is_refused_though_its_ca_is_trusted(
    relay: TlsSmtp, tmp_path: Path,
) -> None:
    (tmp_path / "other").mkdir()
    with tls_smtp.serve(tmp_path / "other", hosts=["smtp.example.org"]) as other:
        pool = SmtpPool(tls_settings(other, tmp_path, smtp_ca_file=other.ca_file))
        mismatch = re.escape("not valid for '127.0.0.1'")
        with pytest.raises(ssl.SSLCertVerificationError, match=mismatch):
            await pool.send(SENDER, [TO], raw(1))
        assert other.capture.messages == []


async def test_the_connections_of_a_pool_share_one_tls_context(
    relay: TlsSmtp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Partly white-box: what a user would notice is CPU (loading the system's CAs costs
    tens of ms per context), so this counts the contexts built in this process, the
    pool's and any aiosmtplib would build per connection, by wrapping
    ``ssl.create_default_context``. The connections are counted by the server."""
    built: list[ssl.SSLContext] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    pool = SmtpPool(tls_settings(relay, tmp_path, smtp_ca_file=relay.ca_file), size=4)
    # Eight at once open four connections together, then four more over the same ones.
    await asyncio.gather(*(pool.send(SENDER, [TO], raw(n)) for n in range(8)))
    for n in range(8, 12):
        await pool.send(SENDER, [TO], raw(n))
    pool.close()
    assert isinstance(relay.capture, Peers)
    assert len(relay.capture.messages) == 12
    assert len(set(relay.capture.peers)) == 4
    assert len(built) == 1
    assert built[0].verify_mode == ssl.CERT_REQUIRED and built[0].check_hostname


def unusable(tmp_path: Path, relay: TlsSmtp, kind: str) -> tuple[Path, str]:
    """A path for ``smtp_ca_file`` that cannot serve, and why the error must say."""
    path = tmp_path / "smtp-ca.pem"
    if kind == "missing":
        return path, "cannot be read (No such file or directory)"
    if kind == "directory":
        path.mkdir()
        return path, "cannot be read (Is a directory)"
    path.write_bytes({"empty": b"", "garbage": b"not a certificate\n",
                      "a key": relay.certificates.key_file.read_bytes()}[kind])
    return path, "holds no PEM certificate OpenSSL accepts (NO_CERTIFICATE_OR_CRL_FOUND)"


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "garbage", "a key"])
async def test_an_unusable_ca_file_is_an_error_naming_the_setting_and_the_path(
    relay: TlsSmtp, tmp_path: Path, kind: str,
) -> None:
    path, why = unusable(tmp_path, relay, kind)
    settings = tls_settings(relay, tmp_path, smtp_ca_file=path)
    expected = f"OFFBOARDING_SMTP_CA_FILE (smtp_ca_file) = {str(path)!r}: {why}"
    # At start-up, as the worker checks its settings (a SettingsError, reported as one)...
    with pytest.raises(SmtpCaFileError) as checked:
        check_ca_file(settings)
    assert isinstance(checked.value, SettingsError)
    assert str(checked.value).startswith(expected)
    # ...and at a send, for a worker that did not check: nothing is sent.
    mailer = Mailer(settings)
    with pytest.raises(SmtpCaFileError) as sending:
        await ActivityEnvironment().run(mailer.send_email, request("check-in"))
    assert str(sending.value).startswith(expected)
    assert relay.capture.messages == []
    if kind == "directory":
        return
    # The file is read again at the next attempt: once it is right, the retry delivers.
    path.write_bytes(relay.ca_file.read_bytes())
    await ActivityEnvironment().run(mailer.send_email, request("check-in"))
    mailer.pool.close()
    assert [m.subject for m in relay.capture.messages] == [SUBJECT]


def test_no_ca_file_is_nothing_to_check(tmp_path: Path) -> None:
    check_ca_file(Settings(_env_file=None, state_dir=tmp_path))
