"""Issue 20, the smaller one: a FIFO (or socket) in a data set is left out of the export,
and the manifest says what it is, not "a symbolic link"."""

from __future__ import annotations

import os

from offboarding.config import Settings
from tests.integration.test_data_files import export, files

__all__ = ["files"]  # the fixture


async def test_a_fifo_in_a_data_set_is_named_a_fifo_in_the_manifest(files: Settings) -> None:
    crm = files.client_data_root / "acme" / "crm"
    os.mkfifo(crm / "pipe")
    (crm / "link.csv").symlink_to("contacts.csv")
    zf, manifest, skipped = await export(files, ("CRM", "acme/crm"))
    assert zf.namelist() == ["CRM/contacts.csv"]
    assert skipped == ["CRM/link.csv", "CRM/pipe"]
    assert manifest["skipped"] == [
        {"path": "CRM/link.csv", "why": "a symbolic link; links are never followed"},
        {"path": "CRM/pipe", "why": "a FIFO (named pipe); only regular files are exported"},
    ]
