"""The bytes a message goes out as: headers encoded for the wire, and the policy the
message is flattened with once, then sent and kept alike (email.py)."""

from __future__ import annotations

import email.utils
import functools
import secrets
from email._policybase import Compat32
from email.header import Header, decode_header, make_header
from email.message import Message
from typing import Any


class Wire(Compat32):
    """compat32 with CRLF line endings, the policy email.py's MIME classes are built for,
    writing a printable ASCII header that fits on its line as it is: compat32 runs every
    header through ``email.header.Header`` to fold it, which gives the same bytes for such
    a header (tests/unit/test_mail_wire.py checks it on generated headers and messages) at
    a large part of a message's CPU: with ``boundary`` below, rendering and flattening a
    message went from 0.68 to 0.45 ms (bench/README.md, issue 24)."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if (isinstance(value, str) and value.isascii() and value.isprintable()
                and len(name) + 2 + len(value) <= LINE):
            return f"{name}: {value}{self.linesep}"
        return str(super()._fold(name, value, sanitize))  # type: ignore[misc]


LINE = 78
SMTP_WIRE = Wire(linesep="\r\n", max_line_length=LINE)


@functools.lru_cache(maxsize=1024)
def address(value: str) -> str:
    """An address with its display name RFC 2047-encoded when it is not ASCII (the same
    few addresses recur in every message: parsed once)."""
    if value.isascii():
        return value
    name, addr = email.utils.parseaddr(value)
    return email.utils.formataddr((name, addr), charset="utf-8") if addr else value


def boundary() -> str:
    """A multipart boundary of our own: left to the generator, each message compiled a
    regular expression to check a random one against the text. 128 random bits are not
    in it."""
    return f"=_{secrets.token_hex(16)}"


@functools.lru_cache(maxsize=16)
def bare(address: str) -> str:
    """The address alone, as the SMTP envelope takes it (parsed once per worker)."""
    return email.utils.parseaddr(address)[1]


def header_value(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()


def subject_of(msg: Message) -> str:
    return str(make_header(decode_header(str(msg["Subject"]))))
