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

from activities.blocking import in_thread
from activities.stores import BundleExists, FileSystemStore, safe_key, sha256
from models.records import DataPackage, ExportRequest, PurgeRequest, PurgeResult
from settings import Settings

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _files_of(root: Path, rel: str) -> list[Path]:
    source = (root / rel).resolve()
    if not source.is_relative_to(root.resolve()):
        raise ApplicationError(f"data set path {rel!r} escapes the data root", non_retryable=True)
    if source.is_file():
        return [source]
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.is_file())
    raise ApplicationError(
        f"data set {rel!r} was not found under {root}", type="DataSetMissing", non_retryable=True
    )


class DataTransfer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = FileSystemStore(settings.transfer_root)

    def _key(self, client_id: str, workflow_id: str, attempt: int) -> str:
        return f"{safe_key(client_id)}/{safe_key(workflow_id)}/export-{attempt}"

    @activity.defn(name="export_client_data")
    async def export_client_data(self, req: ExportRequest) -> DataPackage:
        key = self._key(req.client_id, req.workflow_id, req.attempt)
        existing = self.store.read(key, "manifest.json")
        if existing is not None:  # a retry after the package was written
            manifest = json.loads(existing)
            return DataPackage(attempt=req.attempt, location=str(self.settings.transfer_root / key),
                               manifest_sha256=sha256(existing), files=len(manifest["files"]),
                               bytes=sum(f["bytes"] for f in manifest["files"]))
        buf = io.BytesIO()
        entries: list[dict[str, Any]] = []
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, rel in req.data_sets:
                entries += await in_thread(self._add_data_set, zf, name, rel, detail=name)
                activity.heartbeat(name)
        package = buf.getvalue()
        manifest_bytes = json.dumps({
            "client_id": req.client_id, "package": "data.zip",
            "package_sha256": sha256(package), "files": entries,
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
                           bytes=sum(e["bytes"] for e in entries))

    def _add_data_set(self, zf: zipfile.ZipFile, name: str, rel: str) -> list[dict[str, Any]]:
        root = self.settings.client_data_root
        base = (root / rel).resolve()
        entries = []
        for path in _files_of(root, rel):
            data = path.read_bytes()
            inner = f"{safe_key(name)}/{path.relative_to(base).as_posix()}" \
                if path != base else f"{safe_key(name)}/{path.name}"
            zf.writestr(zipfile.ZipInfo(inner, FIXED_ZIP_TIME), data)
            entries.append({"path": inner, "sha256": sha256(data), "bytes": len(data)})
        return entries

    @activity.defn(name="purge_client_data")
    async def purge_client_data(self, req: PurgeRequest) -> PurgeResult:
        """Delete our copy of the client's data sets and the export packages."""
        return await in_thread(self._purge, req)

    def _purge(self, req: PurgeRequest) -> PurgeResult:
        deleted: list[str] = []
        root = self.settings.client_data_root.resolve()
        for name, rel in req.data_sets:
            path = (root / rel).resolve()
            if not path.is_relative_to(root) or path == root:
                raise ApplicationError(f"refusing to delete {rel!r}", non_retryable=True)
            if path.is_dir():
                for p in sorted(path.rglob("*"), reverse=True):
                    p.unlink() if p.is_file() else p.rmdir()
                path.rmdir()
                deleted.append(name)
            elif path.exists():
                path.unlink()
                deleted.append(name)
        exports = f"{safe_key(req.client_id)}/{safe_key(req.workflow_id)}"
        if self.store.delete(exports):
            deleted.append("transfer packages")
        return PurgeResult(deleted=deleted)
