"""The outbox: which messages the SMTP server has accepted, kept so that a retried send
returns the first receipt instead of mailing twice, and so the archive holds every
message exactly as it was sent. Shared by every worker (on one machine a folder, beyond
one machine an S3 bucket), since a retry may run on any of them.

Per message:
- a **claim**, created only if absent, before the send: a second worker that gets the
  same message while the first is still sending (a slow attempt that timed out) waits
  instead of sending it too. A claim older than ``CLAIM_LEASE`` belongs to an attempt
  that can no longer be running (the activity's timeout is shorter): it is taken over.
- the **record**, written once after the server accepted the message: the receipt's JSON
  on the first line, then the raw message. It is never overwritten."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import obstore
from obstore.exceptions import AlreadyExistsError
from obstore.store import S3Store

from offboarding.activities.s3_store import fetch
from offboarding.activities.stores import safe_key
from offboarding.models.records import EmailReceipt

SENT = ".sent"
CLAIM = ".claim"
CLAIM_LEASE = 30.0
"""Seconds; the email activity's start-to-close timeout, so no live attempt is older."""


class Outbox(Protocol):
    def receipt(self, workflow_id: str, key: str) -> EmailReceipt | None:
        """The receipt of a message already accepted, or None."""
        ...

    def claim(self, workflow_id: str, key: str) -> str | None:
        """None if this worker may send the message now; else why not (another is)."""
        ...

    def release(self, workflow_id: str, key: str) -> None:
        """The send failed: let the next attempt claim it at once."""
        ...

    def record(self, workflow_id: str, receipt: EmailReceipt, raw: bytes) -> None: ...

    def messages(self, workflow_id: str) -> dict[str, bytes]:
        """The raw messages sent for one offboarding, by file name, for the archive."""
        ...


def _held(key: str, age: float) -> str:
    return f"another worker began sending {key} {age:.0f} s ago"


class FileOutbox:
    def __init__(self, root: Path, clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.clock = clock

    def _entry(self, workflow_id: str, key: str) -> Path:
        return self.root / safe_key(workflow_id) / safe_key(key)

    def receipt(self, workflow_id: str, key: str) -> EmailReceipt | None:
        entry = self._entry(workflow_id, key)
        sent = entry.with_suffix(SENT)
        if sent.exists():
            with sent.open("rb") as f:
                return EmailReceipt.model_validate_json(f.readline())
        legacy = entry.with_suffix(".json")  # written by workers before the .sent file
        if legacy.exists():
            return EmailReceipt.model_validate_json(legacy.read_bytes())
        return None

    def claim(self, workflow_id: str, key: str) -> str | None:
        path = self._entry(workflow_id, key).with_suffix(CLAIM)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return None
        except FileExistsError:
            age = self.clock() - path.stat().st_mtime
            if age < CLAIM_LEASE:
                return _held(key, age)
            os.utime(path, (self.clock(), self.clock()))  # its sender is gone: ours now
            return None

    def release(self, workflow_id: str, key: str) -> None:
        self._entry(workflow_id, key).with_suffix(CLAIM).unlink(missing_ok=True)

    def record(self, workflow_id: str, receipt: EmailReceipt, raw: bytes) -> None:
        entry = self._entry(workflow_id, receipt.key)
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_bytes(receipt.model_dump_json().encode() + b"\n" + raw)
        try:
            os.link(tmp, entry.with_suffix(SENT))  # fails if present: never overwritten
        except FileExistsError:
            pass
        finally:
            tmp.unlink()

    def messages(self, workflow_id: str) -> dict[str, bytes]:
        folder = self.root / safe_key(workflow_id)
        if not folder.is_dir():
            return {}
        found = {p.name: p.read_bytes() for p in folder.glob("*.eml")}  # older workers'
        for p in folder.glob(f"*{SENT}"):
            found[f"{p.stem}.eml"] = p.read_bytes().partition(b"\n")[2]
        return dict(sorted(found.items()))


class S3Outbox:
    """The same, as objects; created only if absent with ``If-None-Match: *``."""

    def __init__(self, store: S3Store, prefix: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.prefix = prefix.strip("/")
        self.clock = clock

    def _path(self, workflow_id: str, key: str, suffix: str) -> str:
        return f"{self.prefix}/{safe_key(workflow_id)}/{safe_key(key)}{suffix}"

    def receipt(self, workflow_id: str, key: str) -> EmailReceipt | None:
        sent = fetch(self.store, self._path(workflow_id, key, SENT))
        return EmailReceipt.model_validate_json(sent.partition(b"\n")[0]) if sent else None

    def claim(self, workflow_id: str, key: str) -> str | None:
        path = self._path(workflow_id, key, CLAIM)
        stamp = json.dumps({"at": self.clock()}).encode()
        try:
            obstore.put(self.store, path, stamp, mode="create")
            return None
        except AlreadyExistsError:
            held = fetch(self.store, path)
            age = self.clock() - json.loads(held)["at"] if held else CLAIM_LEASE
            if age < CLAIM_LEASE:
                return _held(key, age)
            obstore.put(self.store, path, stamp)  # its sender is gone: ours now
            return None

    def release(self, workflow_id: str, key: str) -> None:
        obstore.delete(self.store, self._path(workflow_id, key, CLAIM))

    def record(self, workflow_id: str, receipt: EmailReceipt, raw: bytes) -> None:
        body = receipt.model_dump_json().encode() + b"\n" + raw
        # Recorded already by the attempt that sent it first? That record stands.
        with contextlib.suppress(AlreadyExistsError):
            obstore.put(self.store, self._path(workflow_id, receipt.key, SENT), body,
                        mode="create")

    def messages(self, workflow_id: str) -> dict[str, bytes]:
        folder = f"{self.prefix}/{safe_key(workflow_id)}/"
        found: dict[str, bytes] = {}
        for batch in obstore.list(self.store, folder):
            for meta in batch:
                name = meta["path"].rsplit("/", 1)[1]
                if name.endswith(SENT):
                    sent = fetch(self.store, meta["path"]) or b""
                    found[name.removesuffix(SENT) + ".eml"] = sent.partition(b"\n")[2]
        return dict(sorted(found.items()))
