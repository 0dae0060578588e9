"""An SMTP server that requires STARTTLS and then AUTH before it takes a message, as a
production relay does, with certificates made for the run.

``certificates`` makes a certificate authority and a server certificate it signs (RSA
2048, valid a day, for ``localhost`` and ``127.0.0.1`` unless told other names), as PEM
files in a directory; ``serve`` runs aiosmtpd with them in a thread of this process, one
user and password, capturing mail with ``mailcapture.MailCapture``. The email benchmark
(``bench/email_path.py``) and the SMTP TLS tests (``tests/integration/test_smtp_tls.py``)
use it; a client trusts the server by the CA file (``Settings.smtp_ca_file``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devtools.mailcapture import MailCapture
from devtools.procs import free_port

USER, PASSWORD = "offboarding-worker", "test-only-password"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    """The CA's certificate: what a client trusts (``smtp_ca_file``)."""
    cert_file: Path
    """The server's certificate, signed by the CA."""
    key_file: Path


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, key_encipherment=not ca, key_cert_sign=ca,
                         crl_sign=ca, content_commitment=False, data_encipherment=False,
                         key_agreement=False, encipher_only=False, decipher_only=False)


def certificates(directory: Path, hosts: Sequence[str] = ("localhost", HOST)) -> Certificates:
    """A CA and a server certificate for ``hosts`` (names or IP addresses) it signs,
    written to ``directory`` as ``ca.crt``, ``smtp.crt`` and ``smtp.key``."""
    now = datetime.now(UTC)
    valid = (now - timedelta(minutes=5), now + timedelta(days=1))
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "offboarding test SMTP CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(valid[0]).not_valid_after(valid[1])
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_usage(ca=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid[0]).not_valid_after(valid[1])
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    made = Certificates(directory / "ca.crt", directory / "smtp.crt", directory / "smtp.key")
    made.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    made.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    made.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    made.key_file.chmod(0o600)
    return made


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                  auth_data: Any) -> AuthResult:
    """One user and password, over any mechanism aiosmtpd offers (LOGIN, PLAIN)."""
    ok = isinstance(auth_data, LoginPassword) and auth_data == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok)


@dataclass(frozen=True)
class TlsSmtp:
    host: str
    port: int
    capture: MailCapture
    certificates: Certificates

    @property
    def ca_file(self) -> Path:
        return self.certificates.ca_file


@contextlib.contextmanager
def serve(directory: Path, capture: MailCapture | None = None,
          hosts: Sequence[str] = ("localhost", HOST)) -> Iterator[TlsSmtp]:
    """aiosmtpd on a free port of 127.0.0.1, refusing any message before STARTTLS and
    AUTH (``USER``, ``PASSWORD``), with a certificate for ``hosts`` made in ``directory``."""
    made = certificates(directory, hosts)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(made.cert_file, made.key_file)
    capture = capture or MailCapture()
    port = free_port()
    controller = Controller(capture, hostname=HOST, port=port, tls_context=server_tls,
                            require_starttls=True, authenticator=authenticator,
                            auth_required=True, auth_require_tls=True)
    # aiosmtpd warns of a deprecated attribute of its own on every AUTH: noise, not news.
    log = logging.getLogger("mail.log")
    level = log.level
    log.setLevel(logging.ERROR)
    controller.start()
    try:
        yield TlsSmtp(HOST, port, capture, made)
    finally:
        controller.stop()
        log.setLevel(level)


async def refused(server: TlsSmtp, **kwargs: Any) -> str:
    """What the server answers a client that skips a step it requires (``start_tls``,
    ``username`` and ``password`` as for ``aiosmtplib.send``)."""
    sender = "client-services@example.com"
    try:
        await aiosmtplib.send(f"From: {sender}\r\n\r\nx\r\n", sender=sender,
                              recipients=[sender], hostname=server.host, port=server.port,
                              cert_bundle=str(server.ca_file), **kwargs)
    except aiosmtplib.SMTPException as err:
        return str(err)
    raise AssertionError(f"the server took a message with {kwargs}")
