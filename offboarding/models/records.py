"""What activities report back, and what the archive keeps. Small on purpose: bodies of
mail and data stay on disk with the worker; history only holds receipts and hashes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from offboarding.models.messages import Family


class Attachment(BaseModel):
    root: Literal["documents", "archive"]
    path: str


class LinkRequest(BaseModel):
    """Put the recipient's own approval link in the message (it has one recipient): the
    mailer signs it, so the key never enters a workflow."""

    family: Family
    document: str
    """The statement's hash or the export manifest's SHA-256."""


def records_key(workflow_id: str, run_id: str | None) -> str:
    """The name one offboarding's records are kept under (its outbox, exports, archive):
    the workflow id and the run. The workflow id is the client's, so a client offboarded
    again (after a cancel, a renewal, a completed run) gets the same id and a new run,
    and the earlier run's sent mail, export and archive must not stand for the new one's.
    Runs started before this have no ``run_id``: their records stay under the id alone."""
    return f"{workflow_id}.{run_id}" if run_id else workflow_id


class EmailRequest(BaseModel):
    workflow_id: str
    run_id: str | None = None
    """The run the message belongs to (``records_key``); None in runs from before."""
    key: str
    """Unique per message in one offboarding (e.g. ``settlement-reminder-2``): with the
    workflow id it makes the Message-ID, so a retried send is recognised and not repeated."""
    template: str
    to: list[str]
    cc: list[str] = []
    to_ops: bool = False
    """Also send to the ops address from the worker's settings (alerts)."""
    context: dict[str, Any] = {}
    attachments: list[Attachment] = []
    link: LinkRequest | None = None
    template_text: str | None = None
    """The playbook's own version of ``template`` (its whole text), used instead of the
    packaged one; checked when the playbook was loaded (``playbooks.py``)."""
    sender_name: str | None = None
    """The playbook's display name for the From address."""
    reply_to: str | None = None

    @property
    def records(self) -> str:
        return records_key(self.workflow_id, self.run_id)


class EmailReceipt(BaseModel):
    key: str
    message_id: str
    to: list[str]
    subject: str
    sent_at: datetime
    already_sent: bool = False
    refused: list[str] = []
    """Recipients the server refused while it accepted the message for the others."""
    link_keys: dict[str, str] = {}
    """The public key (by id) that signed the link in this message: how the workflow
    learns which keys to check approvers' links with. Public, so history may hold it."""
    link_expires: datetime | None = None


class DataPackage(BaseModel):
    attempt: int
    location: str
    manifest_sha256: str
    files: int
    bytes: int
    skipped: list[str] = []
    """Entries of the data sets left out (symbolic links are never followed), as named in
    the package; also listed in the manifest."""


class ExportRequest(BaseModel):
    workflow_id: str
    run_id: str | None = None
    client_id: str
    attempt: int
    data_sets: list[tuple[str, str]]
    """(name, path relative to the client data root)."""

    @property
    def records(self) -> str:
        return records_key(self.workflow_id, self.run_id)


class PurgeRequest(BaseModel):
    workflow_id: str
    run_id: str | None = None
    client_id: str
    data_sets: list[tuple[str, str]]
    """The client's data sets to delete; none when only the exports end (a cancel)."""

    @property
    def records(self) -> str:
        return records_key(self.workflow_id, self.run_id)


class PurgeResult(BaseModel):
    deleted: list[str]


class AccountResult(BaseModel):
    user: str
    result: Literal["deactivated", "deleted", "already-gone"]
    scim_id: str | None = None


class RevokeRequest(BaseModel):
    workflow_id: str
    system: str
    users: list[str]
    mode: Literal["deactivate", "delete"]


class SystemRevocation(BaseModel):
    system: str
    mode: Literal["deactivate", "delete"]
    accounts: list[AccountResult]


class ArchiveReceipt(BaseModel):
    location: str
    manifest_sha256: str
    files: list[str]
    report: str
    """Path of the closure report inside the archive, for attaching to the farewell."""
