"""The outbox: which messages the SMTP server has accepted, kept so that a retried send
(a worker that crashed after the server said yes) returns the first receipt instead of
mailing twice, and so the archive holds every message exactly as it was sent.

One ``.sent`` file per message: the receipt's JSON on the first line, then the raw
message; it appears by one rename, so a reader never sees half of it."""

from __future__ import annotations

from pathlib import Path

from offboarding.activities.stores import safe_key
from offboarding.models.records import EmailReceipt

SENT = ".sent"


class Outbox:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _entry(self, workflow_id: str, key: str) -> Path:
        return self.root / safe_key(workflow_id) / safe_key(key)

    def receipt(self, workflow_id: str, key: str) -> EmailReceipt | None:
        """The receipt of a message already accepted, or None."""
        entry = self._entry(workflow_id, key)
        sent = entry.with_suffix(SENT)
        if sent.exists():
            with sent.open("rb") as f:
                return EmailReceipt.model_validate_json(f.readline())
        legacy = entry.with_suffix(".json")  # written by workers before the .sent file
        if legacy.exists():
            return EmailReceipt.model_validate_json(legacy.read_bytes())
        return None

    def record(self, workflow_id: str, receipt: EmailReceipt, raw: bytes) -> None:
        entry = self._entry(workflow_id, receipt.key)
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(".tmp")
        tmp.write_bytes(receipt.model_dump_json().encode() + b"\n" + raw)
        tmp.replace(entry.with_suffix(SENT))

    def messages(self, workflow_id: str) -> dict[str, bytes]:
        """The raw messages sent for one offboarding, by file name, for the archive."""
        folder = self.root / safe_key(workflow_id)
        if not folder.is_dir():
            return {}
        found = {p.name: p.read_bytes() for p in folder.glob("*.eml")}  # older workers'
        for p in folder.glob(f"*{SENT}"):
            found[f"{p.stem}.eml"] = p.read_bytes().partition(b"\n")[2]
        return dict(sorted(found.items()))
