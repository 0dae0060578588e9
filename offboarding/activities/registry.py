"""Every activity the worker serves, bound to one set of settings."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from obstore.store import S3Store

from offboarding.activities.access import AccessRevoker
from offboarding.activities.archive import Archiver
from offboarding.activities.data_transfer import DataTransfer
from offboarding.activities.email import Mailer
from offboarding.activities.outbox import FileOutbox, Outbox, S3Outbox
from offboarding.activities.s3_store import S3BundleStore, s3_store
from offboarding.activities.stores import BundleStore, FileSystemStore
from offboarding.config import Settings


def bundle_store(settings: Settings, which: Literal["transfer", "archive"]) -> BundleStore:
    """The transfer or archive store the settings name (the portal serves exports from the
    same transfer store)."""
    if settings.storage == "filesystem":
        return FileSystemStore(settings.transfer_root if which == "transfer"
                               else settings.archive_root)
    prefix = f"{settings.s3_prefix}{which}"
    return S3BundleStore(_bucket(settings), prefix,
                         location=f"s3://{settings.s3_bucket}/{prefix}")


def outbox(settings: Settings, clock: Callable[[], float] = time.time) -> Outbox:
    if settings.storage == "filesystem":
        return FileOutbox(settings.outbox_dir, clock)
    return S3Outbox(_bucket(settings), f"{settings.s3_prefix}outbox", clock)


def _bucket(settings: Settings) -> S3Store:
    if not settings.s3_bucket:
        raise ValueError("OFFBOARDING_STORAGE=s3 needs OFFBOARDING_S3_BUCKET")
    secret = settings.s3_secret_access_key
    return s3_store(settings.s3_bucket, endpoint=settings.s3_endpoint,
                    region=settings.s3_region, access_key_id=settings.s3_access_key_id,
                    secret_access_key=secret.get_secret_value() if secret else None)


def build_activities(settings: Settings) -> Sequence[Callable[..., Any]]:
    """The stores are made here and passed in: where the outbox, the transfer packages
    and the archive live is the worker's choice, not each activity's."""
    sent = outbox(settings)
    transfer = bundle_store(settings, "transfer")
    data = DataTransfer(settings, transfer)
    archived = bundle_store(settings, "archive")
    archive = Archiver(settings, archived, sent, transfer)
    return [
        Mailer(settings, sent, archived).send_email,
        AccessRevoker(settings).revoke_access,
        data.export_client_data,
        data.purge_client_data,
        archive.archive_offboarding,
    ]
