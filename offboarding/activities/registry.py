"""Every activity the worker serves, bound to one set of settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from offboarding.activities.access import AccessRevoker
from offboarding.activities.archive import Archiver
from offboarding.activities.data_transfer import DataTransfer
from offboarding.activities.email import Mailer
from offboarding.activities.outbox import Outbox
from offboarding.activities.stores import FileSystemStore
from offboarding.config import Settings


def build_activities(settings: Settings) -> Sequence[Callable[..., Any]]:
    """The stores are made here and passed in: where the outbox, the transfer packages
    and the archive live is the worker's choice, not each activity's."""
    outbox = Outbox(settings.outbox_dir)
    data = DataTransfer(settings, FileSystemStore(settings.transfer_root))
    return [
        Mailer(settings, outbox).send_email,
        AccessRevoker(settings).revoke_access,
        data.export_client_data,
        data.purge_client_data,
        Archiver(settings, FileSystemStore(settings.archive_root), outbox).archive_offboarding,
    ]
