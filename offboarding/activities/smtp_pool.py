"""Reused SMTP connections for the email activity.

Opening a connection (TCP, EHLO, STARTTLS, AUTH) costs more than sending a message, so a
worker keeps a few connections open and sends over them one message at a time. A
connection that saw any error is closed, never reused; one idle longer than ``max_idle``
is closed before use, so a connection the server dropped meanwhile is not trusted. If a
reused connection turns out to be closed when we start a message, nothing was sent on it,
and the message goes over a fresh one.

Every TLS connection of a pool shares one ``ssl.SSLContext``, built on the first one:
given none, aiosmtplib builds a context for every connection, and loading the system's CA
bundle into it costs about 46 ms of CPU (bench/results-email.md). The context trusts
``smtp_ca_file`` alone when it is set, else the system's CAs, and always verifies the
server's certificate and its name.
"""

from __future__ import annotations

import asyncio
import ssl
import time

import aiosmtplib

from offboarding.config import Settings, SettingsError


class SmtpCaFileError(SettingsError):
    """``smtp_ca_file`` names something that is not a readable file of PEM certificates.

    A ``SettingsError``, so the worker reports it as one when it checks its settings at
    start-up (``check_ca_file``); a pool that meets it raises it on every send instead of
    connecting, the file being read again each time until it can be."""


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context for the SMTP server: certificates verified (CERT_REQUIRED, the
    server's name checked) against ``smtp_ca_file`` alone when it is set, else against the
    system's CAs. Raises ``SmtpCaFileError`` naming the setting and the path."""
    ca_file = settings.smtp_ca_file
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
        if ca_file is None:  # the system's own store: not a setting of ours
            raise
        if isinstance(err, ssl.SSLError):
            why = f"holds no PEM certificate OpenSSL accepts ({err.reason or err})"
        else:
            why = f"cannot be read ({getattr(err, 'strerror', None) or err})"
        raise SmtpCaFileError(
            f"OFFBOARDING_SMTP_CA_FILE (smtp_ca_file) = {str(ca_file)!r}: {why}; it must "
            "name a file of PEM certificates to trust for the SMTP server") from None
    # create_default_context's defaults, set again because the pool's safety rests on them.
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    return context


def check_ca_file(settings: Settings) -> None:
    """Raise ``SmtpCaFileError`` now if ``smtp_ca_file`` is set and unusable (cheap: the
    file alone is loaded, not the system's CAs)."""
    if settings.smtp_ca_file is not None:
        tls_context(settings)


class SmtpPool:
    def __init__(self, settings: Settings, size: int = 4, max_idle: float = 30.0) -> None:
        self.settings = settings
        self.max_idle = max_idle
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._tls: ssl.SSLContext | None = None
        self._tls_lock = asyncio.Lock()

    async def _tls_context(self) -> ssl.SSLContext:
        """The pool's one context, built when the first TLS connection needs it."""
        async with self._tls_lock:  # connections opened together wait for the one build
            if self._tls is None:
                # Off the event loop, as aiosmtplib does: tens of ms with the system's CAs.
                self._tls = await asyncio.to_thread(tls_context, self.settings)
            return self._tls

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        tls = s.smtp_security != "none"
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host, port=s.smtp_port, use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls", timeout=s.smtp_timeout_seconds,
            tls_context=await self._tls_context() if tls else None,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None)
        await client.connect()  # closes itself when any step fails
        return client

    def _take_idle(self) -> aiosmtplib.SMTP | None:
        now = time.monotonic()
        while self._idle:
            client, since = self._idle.pop()
            if now - since <= self.max_idle and client.is_connected:
                return client
            client.close()
        return None

    async def send(self, sender: str, recipients: list[str], message: bytes) -> list[str]:
        """Send one message; returns the recipients the server refused while accepting
        the others (when it refuses all of them, SMTPRecipientsRefused is raised)."""
        async with self._slots:
            client = self._take_idle()
            reused = client is not None
            if client is None:
                client = await self._connect()
            try:
                refused, _ = await client.sendmail(sender, recipients, message)
            except aiosmtplib.SMTPServerDisconnected:
                client.close()
                if not reused:
                    raise
                # The server had closed the idle connection before this message began.
                client = await self._connect()
                try:
                    refused, _ = await client.sendmail(sender, recipients, message)
                except BaseException:
                    client.close()
                    raise
            except BaseException:
                client.close()
                raise
            self._idle.append((client, time.monotonic()))
            return sorted(refused)

    def close(self) -> None:
        for client, _ in self._idle:
            client.close()
        self._idle.clear()
