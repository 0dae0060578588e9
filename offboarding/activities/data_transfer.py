"""Packaging the client's own data for them, and deleting our copy when retention ends.

The package is a zip plus a ``manifest.json`` listing every file's SHA-256; the client's
data steward checks the manifest's own SHA-256, which is what they send back to verify.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from offboarding.activities import data_sets
from offboarding.activities.blocking import Progress, in_thread
from offboarding.activities.stores import (
    BundleExists,
    BundleStore,
    FileSystemStore,
    safe_key,
    sha256,
)
from offboarding.config import Settings
from offboarding.models.records import DataPackage, ExportRequest, PurgeRequest, PurgeResult

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def export_key(client_id: str, records: str, attempt: int) -> str:
    """Where an export's package is in the transfer store (the portal serves it from
    there); ``records`` is the run's ``records_key``."""
    return f"{safe_key(client_id)}/{safe_key(records)}/export-{attempt}"


class DataTransfer:
    def __init__(self, settings: Settings, store: BundleStore | None = None) -> None:
        self.settings = settings
        self.store: BundleStore = store or FileSystemStore(settings.transfer_root)

    @activity.defn(name="export_client_data")
    async def export_client_data(self, req: ExportRequest) -> DataPackage:
        key = export_key(req.client_id, req.records, req.attempt)
        existing = self.store.read(key, "manifest.json")
        if existing is not None:  # a retry after the package was written
            manifest = json.loads(existing)
            return DataPackage(attempt=req.attempt, location=self.store.where(key),
                               manifest_sha256=sha256(existing), files=len(manifest["files"]),
                               bytes=sum(f["bytes"] for f in manifest["files"]),
                               skipped=[s["path"] for s in manifest.get("skipped", [])])
        buf = io.BytesIO()
        entries: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        beat = Progress()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, rel in req.data_sets:
                added, passed = await in_thread(self._add_data_set, zf, req.client_id, name,
                                                rel, detail=name)
                entries += added
                skipped += passed
                beat(name)
        package = buf.getvalue()
        manifest_bytes = json.dumps({
            "client_id": req.client_id, "package": "data.zip",
            "package_sha256": sha256(package), "files": entries,
            **({"skipped": skipped} if skipped else {}),
        }, indent=2, sort_keys=True).encode()
        try:
            bundle = {"data.zip": package, "manifest.json": manifest_bytes}
            location = await in_thread(self.store.write_bundle, key, bundle,
                                       detail="writing the package")
        except BundleExists:
            raise ApplicationError(f"export {key} exists with other contents",
                                   non_retryable=True) from None
        except OSError as err:
            raise ApplicationError(
                f"the transfer location {self.settings.transfer_root} is not writable: "
                f"{err.strerror or type(err).__name__}", type="TransferUnwritable",
                non_retryable=True,
            ) from None
        return DataPackage(attempt=req.attempt, location=location,
                           manifest_sha256=sha256(manifest_bytes), files=len(entries),
                           bytes=sum(e["bytes"] for e in entries),
                           skipped=[s["path"] for s in skipped])

    def _add_data_set(self, zf: zipfile.ZipFile, client_id: str, name: str,
                      rel: str) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """Zip one data set; returns its manifest entries and the entries it skipped, each
        with what it is (a link, a FIFO, ...)."""
        base = data_sets.locate(self.settings.client_data_root, client_id, rel)
        if not base.exists():
            raise ApplicationError(
                f"data set {rel!r} was not found under {self.settings.client_data_root}",
                type="DataSetMissing", non_retryable=True)
        files, skipped = data_sets.walk(base)

        def inner(path: Path) -> str:
            below = path.relative_to(base).as_posix() if path != base else path.name
            return f"{safe_key(name)}/{below}"

        entries = []
        for path in files:
            try:
                data = data_sets.read(path)
            except OSError:  # replaced by a link (ELOOP) or removed since it was listed
                skipped.append(path)
                continue
            zf.writestr(zipfile.ZipInfo(inner(path), FIXED_ZIP_TIME), data)
            entries.append({"path": inner(path), "sha256": sha256(data), "bytes": len(data)})
        return entries, sorted(({"path": inner(p), "why": data_sets.skipped_because(p)}
                                for p in skipped), key=lambda s: s["path"])

    @activity.defn(name="purge_client_data")
    async def purge_client_data(self, req: PurgeRequest) -> PurgeResult:
        """Delete our copy of the client's data sets and the export packages."""
        return await in_thread(self._purge, req)

    def _purge(self, req: PurgeRequest) -> PurgeResult:
        """A failure is permanent (ops see a problem and retry once it is fixed): retrying
        by itself never made an undeletable file deletable."""
        deleted: list[str] = []
        for name, rel in req.data_sets:
            path = data_sets.locate(self.settings.client_data_root, req.client_id, rel)
            try:
                if data_sets.delete(path):
                    deleted.append(name)
            except OSError as err:
                # rmtree works by descriptor and names only the last segment.
                where = Path(str(err.filename)).name if err.filename else rel
                raise ApplicationError(
                    f"could not delete {rel} ({where}: {err.strerror or type(err).__name__})",
                    type="PurgeFailed", non_retryable=True) from None
        exports = f"{safe_key(req.client_id)}/{safe_key(req.records)}"
        if self.store.delete(exports):
            deleted.append("transfer packages")
        return PurgeResult(deleted=deleted)
