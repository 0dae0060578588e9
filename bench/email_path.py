"""Email path: messages per second rendered and delivered by the email activity, against
a plain baseline of aiosmtplib sending the same prepared messages, one connection each.

Both run in this process against the same local SMTP server (aiosmtpd, in a thread), one
message after another, ``--reps`` times; the medians and their ratio are reported. (With
the server in a process of its own, writing each message to disk before it answers, both
sides wait on the server's disk and the ratio falls to about 1.1.)

Servers (``--security``): ``none``, plain SMTP, where a new connection costs almost
nothing; and a server that requires STARTTLS and then AUTH before it takes a message, as a
production relay does, with a certificate made for the run (RSA 2048, self-signed for
127.0.0.1, in a temporary directory). There the worker runs with
``smtp_security=starttls`` and a user and password, and the baseline is
``aiosmtplib.send(..., start_tls=True, username=..., password=...)`` per message. The
worker has no setting for a private CA: aiosmtplib builds a TLS context for every
connection from OpenSSL's defaults, so the client side trusts the test certificate
through ``SSL_CERT_FILE``, set for this process while it runs, the way an operator would
make the worker trust a relay with a private CA. In ``starttls`` that file is the
system's CA bundle plus the test certificate, as every context in production loads the
system's CAs; in ``starttls-own-ca`` it is the test certificate alone, leaving the
handshake and the login. A third figure, ``SmtpPool.send`` of the same prepared bytes,
is the transport alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from temporalio.testing import ActivityEnvironment

from devtools import mailcapture
from devtools.procs import free_port
from offboarding.activities.email import SMTP_WIRE, Mailer
from offboarding.activities.smtp_pool import SmtpPool
from offboarding.config import Settings
from offboarding.models.records import EmailRequest

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = {"contact": {"name": "Priya Raman"}, "client_name": "Acme Analytics Ltd",
           "account_manager": "Dana Whitfield, Client Services"}
USER, PASSWORD = "offboarding-worker", "bench-only-password"
SENDER = "client-services@example.com"


def requests(n: int, rep: int) -> list[EmailRequest]:
    return [EmailRequest(workflow_id=f"bench-{rep}", key=f"check-in-{i}", template="check_in",
                         to=["priya.raman@acme-analytics.example"], context=CONTEXT)
            for i in range(n)]


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key for 127.0.0.1 and localhost, valid a day."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "offboarding bench SMTP")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_encipherment=True, key_cert_sign=True,
                content_commitment=False, data_encipherment=False, key_agreement=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "smtp.crt", directory / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                  auth_data: Any) -> AuthResult:
    """One user and password, over any mechanism aiosmtpd offers (LOGIN, PLAIN)."""
    ok = isinstance(auth_data, LoginPassword) and auth_data == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok)


@contextlib.contextmanager
def trusting(cert_file: Path, directory: Path, system_cas: bool) -> Iterator[None]:
    """OpenSSL's default trust for this process: ``cert_file``, after the system's CA
    bundle when ``system_cas`` (so every TLS context built meanwhile loads as many CAs as
    it would in production)."""
    system = Path(ssl.get_default_verify_paths().cafile or "/nonexistent")
    bundle = directory / "trusted.pem"
    bundle.write_bytes((system.read_bytes() if system_cas and system.is_file() else b"")
                       + cert_file.read_bytes())
    before = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(bundle)
    try:
        yield
    finally:
        if before is None:
            del os.environ["SSL_CERT_FILE"]
        else:
            os.environ["SSL_CERT_FILE"] = before


async def refused(**kwargs: Any) -> str:
    """What the server answers a client that skips a step it requires."""
    try:
        await aiosmtplib.send(f"From: {SENDER}\r\n\r\nx\r\n", sender=SENDER,
                              recipients=[SENDER], hostname="127.0.0.1", **kwargs)
    except aiosmtplib.SMTPException as err:
        return str(err)
    raise AssertionError(f"the server took a message with {kwargs}")


async def measure(n: int, reps: int, security: str = "none") -> dict[str, float]:
    """``security``: ``none`` (plain SMTP), ``starttls`` (STARTTLS and AUTH required; the
    client trusts the system's CAs and the test certificate) or ``starttls-own-ca`` (the
    same server; the client trusts the test certificate alone)."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if security == "none":
            controller, capture = mailcapture.start("127.0.0.1", port)
            tls: dict[str, Any] = {}
            auth: dict[str, Any] = {}
        else:
            cert_file, key_file = certificate(tmp)
            server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_tls.load_cert_chain(cert_file, key_file)
            capture = mailcapture.MailCapture()
            controller = Controller(capture, hostname="127.0.0.1", port=port,
                                    tls_context=server_tls, require_starttls=True,
                                    authenticator=authenticator, auth_required=True,
                                    auth_require_tls=True)
            controller.start()
            stack.enter_context(trusting(cert_file, tmp, security == "starttls"))
            # aiosmtpd warns of a deprecated attribute on every AUTH: not the server's work.
            logging.getLogger("mail.log").setLevel(logging.ERROR)
            tls = {"start_tls": True}
            auth = {"username": USER, "password": PASSWORD}
        stack.callback(controller.stop)
        if security != "none":  # the server does require both
            assert "STARTTLS" in await refused(port=port, start_tls=False, **auth)
            assert "uthenticat" in await refused(port=port, **tls)
        baseline, ours, pooled = [], [], []
        for rep in range(reps):
            with tempfile.TemporaryDirectory() as state:
                settings = Settings(_env_file=None, smtp_host="127.0.0.1", smtp_port=port,
                                    smtp_security="starttls" if auth else "none",
                                    state_dir=Path(state),
                                    smtp_username=USER if auth else None,
                                    smtp_password=SecretStr(PASSWORD) if auth else None)
                mailer = Mailer(settings)
                prepared = [mailer.render(r) for r in requests(n, rep)]
                start = time.perf_counter()
                for msg in prepared:
                    await aiosmtplib.send(msg, hostname="127.0.0.1", port=port, **tls, **auth)
                baseline.append(n / (time.perf_counter() - start))
                env = ActivityEnvironment()
                start = time.perf_counter()
                for req in requests(n, rep):
                    await env.run(mailer.send_email, req)
                ours.append(n / (time.perf_counter() - start))
                mailer.pool.close()
                pool = SmtpPool(settings)
                raw = [(msg.as_bytes(policy=SMTP_WIRE), [str(msg["To"])]) for msg in prepared]
                start = time.perf_counter()
                for data, to in raw:
                    await pool.send(SENDER, to, data)
                pooled.append(n / (time.perf_counter() - start))
                pool.close()
        assert len(capture.messages) == 3 * n * reps, "every message was delivered"
    result = {"baseline_msgs_per_s": statistics.median(baseline),
              "activity_msgs_per_s": statistics.median(ours),
              "pool_msgs_per_s": statistics.median(pooled)}
    result["ratio"] = result["activity_msgs_per_s"] / result["baseline_msgs_per_s"]
    result["pool_ratio"] = result["pool_msgs_per_s"] / result["baseline_msgs_per_s"]
    return result


NAMES = {"none": "plain SMTP",
         "starttls": "STARTTLS + AUTH required, client trusting the system's CAs + the test one",
         "starttls-own-ca": "STARTTLS + AUTH required, client trusting the test CA alone"}


def table(results: dict[str, dict[str, float]]) -> str:
    out = ["| server | one connection per message (aiosmtplib.send) msg/s | email activity "
           "(render + outbox + pooled send) msg/s | **ratio activity / one per message** | "
           "SmtpPool.send alone msg/s | ratio pool / one per message |",
           "|---|---|---|---|---|---|"]
    for security, r in results.items():
        out.append(f"| {NAMES[security]} | {r['baseline_msgs_per_s']:.0f} | "
                   f"{r['activity_msgs_per_s']:.0f} | **{r['ratio']:.2f}** | "
                   f"{r['pool_msgs_per_s']:.0f} | {r['pool_ratio']:.2f} |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--messages", type=int, default=500)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--security", default="none,starttls,starttls-own-ca",
                   help="comma-separated: none (plain), starttls (STARTTLS and AUTH "
                        "required), starttls-own-ca (the same, the client trusting the test "
                        "CA alone)")
    p.add_argument("--write", action="store_true", help="write bench/results-email.md")
    args = p.parse_args()
    modes = [m for m in args.security.split(",") if m]
    if not set(modes) <= set(NAMES):
        p.error(f"--security: one or more of {', '.join(NAMES)}")
    results = {}
    for security in modes:
        print(f"== {NAMES[security]}: {args.messages} messages x {args.reps}", flush=True)
        results[security] = asyncio.run(measure(args.messages, args.reps, security))
    text = table(results)
    print(text)
    if args.write:
        load = os.getloadavg()
        (ROOT / "bench" / "results-email.md").write_text(
            f"# Email path results\n\n`.venv/bin/python -m bench.email_path "
            f"{' '.join(sys.argv[1:])}`\n\nMachine: {os.cpu_count()} cores; 1-minute load "
            f"average {load[0]:.1f} at the end. {args.messages} messages, one after another, "
            f"medians of {args.reps} repetitions.\n\n{text}\n")


if __name__ == "__main__":
    main()
