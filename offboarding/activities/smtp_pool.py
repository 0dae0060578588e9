"""Reused SMTP connections for the email activity.

Opening a connection (TCP, EHLO, STARTTLS, AUTH) costs more than sending a message, so a
worker keeps a few connections open and sends over them one message at a time. A
connection that saw any error is closed, never reused; one idle longer than ``max_idle``
is closed before use, so a connection the server dropped meanwhile is not trusted. If a
reused connection turns out to be closed when we start a message, nothing was sent on it,
and the message goes over a fresh one.
"""

from __future__ import annotations

import asyncio
import time

import aiosmtplib

from offboarding.config import Settings


class SmtpPool:
    def __init__(self, settings: Settings, size: int = 4, max_idle: float = 30.0) -> None:
        self.settings = settings
        self.max_idle = max_idle
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host, port=s.smtp_port, use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls", timeout=s.smtp_timeout_seconds,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None)
        await client.connect()
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
