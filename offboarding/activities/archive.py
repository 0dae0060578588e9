"""The archive bundle: the whole offboarding written once, with a manifest of hashes and
a closure report a person can read. An existing archive is never overwritten."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jinja2
from temporalio import activity
from temporalio.exceptions import ApplicationError

from offboarding.activities.blocking import in_thread
from offboarding.activities.data_transfer import export_key
from offboarding.activities.email import TEMPLATES
from offboarding.activities.outbox import FileOutbox, Outbox
from offboarding.activities.stores import (
    BundleExists,
    BundleStore,
    FileSystemStore,
    safe_key,
    sha256,
)
from offboarding.config import Settings
from offboarding.models.records import ArchiveReceipt
from offboarding.models.status import OffboardingStatus

REPORT = "closure-report.html"


class Archiver:
    def __init__(self, settings: Settings, store: BundleStore | None = None,
                 outbox: Outbox | None = None, transfer: BundleStore | None = None) -> None:
        self.settings = settings
        self.store: BundleStore = store or FileSystemStore(settings.archive_root)
        self.transfer: BundleStore = transfer or FileSystemStore(settings.transfer_root)
        """Where the exports are: their manifests are archived too."""
        self.outbox: Outbox = outbox or FileOutbox(settings.outbox_dir)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), auto_reload=False,  # packaged
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    @activity.defn(name="archive_offboarding")
    async def archive_offboarding(self, record: OffboardingStatus) -> ArchiveReceipt:
        return await in_thread(self._archive, record)

    def _archive(self, record: OffboardingStatus) -> ArchiveReceipt:
        key = f"{safe_key(record.client_id)}/{safe_key(record.records_key)}"
        record_json = record.model_dump_json(indent=2).encode()
        files: dict[str, bytes] = {"record.json": record_json}
        for st in record.statements:
            name = f"statements/statement-v{st.version}.json"
            files[name] = st.model_dump_json(indent=2).encode()
        for name, raw in self.outbox.messages(record.records_key).items():
            files[f"emails/{name}"] = raw
        for pkg in record.data_packages:
            manifest = self.transfer.read(
                export_key(record.client_id, record.records_key, pkg.attempt), "manifest.json")
            if manifest is not None:
                files[f"data/manifest-export-{pkg.attempt}.json"] = manifest
        files[REPORT] = self.env.get_template("closure_report.html").render(
            r=record, generated=datetime.now(UTC)
        ).encode()
        index = {name: sha256(data) for name, data in sorted(files.items())}
        manifest_bytes = json.dumps(index, indent=2).encode()
        files["MANIFEST.json"] = manifest_bytes
        try:
            location = self.store.write_bundle(key, files)
        except BundleExists:
            earlier = self.store.read(key, "record.json")
            if earlier is None or sha256(earlier) != index["record.json"]:
                raise ApplicationError(
                    f"an archive for {record.workflow_id} already exists with other contents; "
                    "it is never overwritten", type="ArchiveExists", non_retryable=True,
                ) from None
            # A retry of this very archive, written before a crash: the same record.
            earlier_manifest = self.store.read(key, "MANIFEST.json") or b""
            return ArchiveReceipt(location=self.store.where(key),
                                  manifest_sha256=sha256(earlier_manifest),
                                  files=sorted(json.loads(earlier_manifest or b"{}")),
                                  report=f"{key}/{REPORT}")
        except OSError as err:
            # Full or unwritable: ops must act; nothing was left half-written.
            raise ApplicationError(
                f"the archive store {self.settings.archive_root} is not writable: "
                f"{err.strerror or type(err).__name__}",
                type="ArchiveUnwritable", non_retryable=True,
            ) from None
        return ArchiveReceipt(location=location, manifest_sha256=sha256(manifest_bytes),
                              files=sorted(files), report=f"{key}/{REPORT}")
