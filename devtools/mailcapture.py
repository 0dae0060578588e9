"""A local SMTP server (aiosmtpd) that keeps every message it receives.

``make run`` serves it so a person can read what the offboarding sent, one ``.eml`` file
per message plus ``index.txt``; tests use the same handler in-process and assert on
``messages``. Addresses listed in ``refuse`` are refused with 550, as a real server would.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.parser
import email.policy
import functools
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)


@dataclass
class Captured:
    envelope_from: str
    recipients: list[str]
    raw: bytes

    @functools.cached_property
    def message(self) -> EmailMessage:
        """Parsed when first read, not while the client waits: the server keeps up with
        the benchmark's load, and most captured messages are never read."""
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    @property
    def subject(self) -> str:
        # A long subject is folded onto a continuation line; like mail clients, drop the
        # whitespace that unfolding leaves in front.
        return str(self.message["Subject"]).strip()

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"]).strip()

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return str(part.get_content()) if part is not None else ""

    def html(self) -> str:
        part = self.message.get_body(("html",))
        return str(part.get_content()) if part is not None else ""

    def attachments(self) -> list[str]:
        return [p.get_filename() or "" for p in self.message.iter_attachments()]


class MailCapture:
    """The aiosmtpd handler."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self.messages: list[Captured] = []
        self.refuse: set[str] = set()
        # Fault injection for the crash tests: stall the next message whose Message-ID
        # contains `stall_match`, before or after the server commits it.
        self.stall_match: str | None = None
        self.stall_seconds = 0.0
        self.stall_after_commit = False
        self.stalled = threading.Event()
        self._lock = threading.Lock()
        if directory:
            directory.mkdir(parents=True, exist_ok=True)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or envelope.content
        captured = Captured(envelope.mail_from, list(envelope.rcpt_tos), raw)
        stall = self.stall_match is not None and self.stall_match in str(
            HEADERS.parsebytes(raw)["Message-ID"])
        if stall:
            self.stall_match = None
            self.stalled.set()
            if not self.stall_after_commit:
                await asyncio.sleep(self.stall_seconds)
                if server.transport is None or server.transport.is_closing():
                    return "451 client gone before the message was committed"
        self._commit(captured, raw, envelope.rcpt_tos)
        if stall and self.stall_after_commit:
            # The window SMTP cannot close: committed here, but the client may never hear.
            await asyncio.sleep(self.stall_seconds)
        return "250 Message accepted for delivery"

    def _commit(self, captured: Captured, raw: bytes, rcpt_tos: list[str]) -> None:
        with self._lock:
            self.messages.append(captured)
            n = len(self.messages)
        if self.directory:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            (self.directory / f"{stamp}-{n:05d}.eml").write_bytes(raw)
            with (self.directory / "index.txt").open("a") as index:
                index.write(f"{stamp}  {n:05d}  to={','.join(rcpt_tos)}  "
                            f"subject={captured.subject}\n")

    def to(self, address: str) -> list[Captured]:
        return [m for m in self.messages if address in m.recipients]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
        self.stall_match, self.stall_after_commit = None, False
        self.stalled.clear()


def start(host: str, port: int, directory: Path | None = None) -> tuple[Controller, MailCapture]:
    handler = MailCapture(directory)
    controller = Controller(handler, hostname=host, port=port)
    controller.start()
    return controller, handler


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1025)
    p.add_argument("--dir", type=Path, default=Path("data/mail"))
    args = p.parse_args()
    controller, _ = start(args.host, args.port, args.dir)
    print(f"capturing mail on {args.host}:{args.port} into {args.dir}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
