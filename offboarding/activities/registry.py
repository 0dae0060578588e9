"""Every activity the worker serves, bound to one set of settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from offboarding.activities.access import AccessRevoker
from offboarding.activities.archive import Archiver
from offboarding.activities.data_transfer import DataTransfer
from offboarding.activities.email import Mailer
from offboarding.config import Settings


def build_activities(settings: Settings) -> Sequence[Callable[..., Any]]:
    data = DataTransfer(settings)
    return [
        Mailer(settings).send_email,
        AccessRevoker(settings).revoke_access,
        data.export_client_data,
        data.purge_client_data,
        Archiver(settings).archive_offboarding,
    ]
