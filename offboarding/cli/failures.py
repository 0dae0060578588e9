"""What the CLI prints when something fails: ``error: ...`` and exit code 1, never a
traceback (``status`` of an offboarding too large for Temporal used to print one). A
refusal may take several lines, one per problem; anything unexpected takes one, and
``--debug`` (or ``OFFBOARDING_DEBUG=1``) adds the traceback."""

from __future__ import annotations

import os
import sys
import traceback

from temporalio.service import RPCError

from offboarding.client import Refused
from offboarding.config import SettingsError
from offboarding.models.loading import InputError
from offboarding.security.codec import CodecKeyError
from offboarding.temporal import SetupTimeout

DEBUG_FLAG, DEBUG_ENV = "--debug", "OFFBOARDING_DEBUG"
EXPLAINED = (Refused, InputError, SettingsError, CodecKeyError, SetupTimeout)
"""Failures whose message is written for the person at the terminal."""


def first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit - 3] + "..."


def debugging(argv: list[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def report(err: Exception, *, debug: bool) -> int:
    """Print ``err`` for a person on stderr; the exit code."""
    if isinstance(err, EXPLAINED):
        message = str(err)
    elif isinstance(err, RPCError):  # e.g. a namespace that does not exist, a key without rights
        message = f"Temporal refused the request: {first_line(err.message)}"
    else:
        detail = first_line(str(err)) or "no detail"
        message = (f"unexpected {type(err).__name__}: {detail} (run again with {DEBUG_FLAG}, "
                   f"or {DEBUG_ENV}=1, for the traceback)")
    print(f"error: {message}", file=sys.stderr)
    if debug:
        traceback.print_exception(err, file=sys.stderr)
    return 1
