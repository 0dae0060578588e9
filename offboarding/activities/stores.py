"""Where bundles of files go: a small interface so a cloud store can replace the
file system later. A bundle is written whole or not at all, and never overwritten."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from offboarding.models.text import safe_segment


class BundleExists(Exception):
    """A different bundle already sits under that key."""


class Readable(Protocol):
    """What a bundle's file is streamed from."""

    def read(self, size: int, /) -> bytes: ...

    def close(self) -> None: ...


class BundleStore(Protocol):
    def read(self, key: str, name: str) -> bytes | None: ...

    def open(self, key: str, name: str) -> tuple[Readable, int] | None:
        """A file of a bundle to stream, and its size; None when there is none."""
        ...

    def write_bundle(self, key: str, files: dict[str, bytes]) -> str:
        """Write all files under ``key`` at once and return where they are."""
        ...

    def where(self, key: str) -> str:
        """Where the bundle under ``key`` is, as receipts name it."""
        ...

    def delete(self, key: str) -> bool: ...


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileSystemStore:
    """Bundles as directories, made visible by one atomic rename."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"bundle key {key!r} escapes the store root")
        return path

    def read(self, key: str, name: str) -> bytes | None:
        path = self._path(key) / name
        return path.read_bytes() if path.is_file() else None

    def where(self, key: str) -> str:
        return str(self._path(key))

    def open(self, key: str, name: str) -> tuple[BinaryIO, int] | None:
        path = self._path(key) / name
        try:
            # Never through a link: the portal serves these files to people outside.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError):
            return None
        f = os.fdopen(fd, "rb")
        return f, os.fstat(fd).st_size

    def write_bundle(self, key: str, files: dict[str, bytes]) -> str:
        target = self._path(key)
        if target.exists():
            raise BundleExists(f"{target} already exists and is never overwritten")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        inside = staging.resolve()
        try:
            for name, data in files.items():
                dest = staging / name
                if not dest.resolve().is_relative_to(inside):
                    raise ValueError(f"file name {name!r} escapes the bundle")
                dest.parent.mkdir(parents=True, exist_ok=True)
                _write_synced(dest, data)
            os.rename(staging, target)
        except OSError as err:
            shutil.rmtree(staging, ignore_errors=True)
            if target.exists():
                raise BundleExists(f"{target} already exists and is never overwritten") from err
            raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return str(target)

    def delete(self, key: str) -> bool:
        target = self._path(key)
        if not target.exists():
            return False
        shutil.rmtree(target)
        return True


def _write_synced(path: Path, data: bytes) -> None:
    """A new file, on disk before the bundle is renamed into sight: written and synced
    through one descriptor, not written, reopened and synced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def safe_key(text: str) -> str:
    """A workflow id or client id as one safe path segment: the same safe form the client
    file's rules check data set names in (two names, one folder, are refused there)."""
    return safe_segment(text)
