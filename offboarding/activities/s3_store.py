"""Bundles in S3-compatible object storage (AWS S3, MinIO, ...), through obstore: small,
typed, and its create-only put sends ``If-None-Match: *``, the one primitive write-once
needs.

A bundle's files are written under a staging prefix unique to the writer, then a marker
naming that prefix is created with ``If-None-Match: *``: whoever creates the marker first
owns the bundle, a second writer (a retried or racing activity on another worker) finds it
taken and its staging files are removed. Readers follow the marker, so they never see a
bundle half written or mixed from two writers."""

from __future__ import annotations

import json
import uuid
from typing import Any

import obstore
from obstore.exceptions import AlreadyExistsError, NotFoundError
from obstore.store import S3Store

from offboarding.activities.stores import BundleExists, Readable

MARKER = ".bundle.json"


def fetch(store: S3Store, path: str) -> bytes | None:
    """An object's bytes, or None when there is no such object."""
    try:
        return bytes(obstore.get(store, path).bytes())
    except (FileNotFoundError, NotFoundError):  # obstore raises either, by version
        return None


class _Reader:
    """obstore's file reader as the plain ``read(n) -> bytes`` the portal streams from."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def read(self, size: int) -> bytes:
        return bytes(self._inner.read(size))

    def close(self) -> None:
        self._inner.close()


class S3BundleStore:
    def __init__(self, store: S3Store, prefix: str, *, location: str) -> None:
        self.store = store
        self.prefix = prefix.strip("/")
        self.location = location.rstrip("/")
        """How bundles are named in receipts (``s3://bucket/prefix``): no disk path."""

    def _path(self, key: str, name: str = "") -> str:
        if ".." in key.split("/") or key.startswith("/"):
            raise ValueError(f"bundle key {key!r} escapes the store")
        return "/".join(p for p in (self.prefix, key, name) if p)

    def _staging(self, key: str) -> str | None:
        marker = fetch(self.store, self._path(key, MARKER))
        if marker is None:
            return None
        staging: str = json.loads(marker)["staging"]
        return staging

    def read(self, key: str, name: str) -> bytes | None:
        staging = self._staging(key)
        if staging is None:
            return None
        return fetch(self.store, self._path(key, f"{staging}/{name}"))

    def open(self, key: str, name: str) -> tuple[Readable, int] | None:
        staging = self._staging(key)
        if staging is None:
            return None
        path = self._path(key, f"{staging}/{name}")
        try:
            size = obstore.head(self.store, path)["size"]
        except (FileNotFoundError, NotFoundError):
            return None
        return _Reader(obstore.open_reader(self.store, path, size=size)), size

    def where(self, key: str) -> str:
        return f"{self.location}/{key}"

    def write_bundle(self, key: str, files: dict[str, bytes]) -> str:
        if self._staging(key) is not None:
            raise BundleExists(f"{self.location}/{key} already exists and is never overwritten")
        staging = f".staging-{uuid.uuid4().hex}"
        for name, data in files.items():
            if name.startswith("/") or ".." in name.split("/"):
                raise ValueError(f"file name {name!r} escapes the bundle")
            obstore.put(self.store, self._path(key, f"{staging}/{name}"), data)
        marker = json.dumps({"staging": staging, "files": sorted(files)}).encode()
        try:
            obstore.put(self.store, self._path(key, MARKER), marker, mode="create")
        except AlreadyExistsError:
            self._delete_prefix(self._path(key, staging))
            raise BundleExists(f"{self.location}/{key} was written by another worker "
                               "first and is never overwritten") from None
        return f"{self.location}/{key}"

    def delete(self, key: str) -> bool:
        return self._delete_prefix(self._path(key)) > 0

    def _delete_prefix(self, prefix: str) -> int:
        paths = [meta["path"] for batch in obstore.list(self.store, prefix + "/")
                 for meta in batch]
        if paths:
            obstore.delete(self.store, paths)
        return len(paths)


def s3_store(bucket: str, *, endpoint: str | None, region: str, access_key_id: str | None,
             secret_access_key: str | None) -> S3Store:
    """The bucket; credentials from the arguments or else the standard AWS variables."""
    config: dict[str, Any] = {"region": region}
    if endpoint:
        config["endpoint"] = endpoint
    if access_key_id and secret_access_key:
        config["access_key_id"] = access_key_id
        config["secret_access_key"] = secret_access_key
    return S3Store(bucket, config=config,  # type: ignore[arg-type]
                   client_options={"allow_http": bool(endpoint and endpoint.startswith(
                       "http://"))})
