"""A client's data sets and documents on disk, handled without ever following a link.

A data set is a folder or file in the client's own folder of the data root
(``<client_id>/...``). A symbolic link inside one may point anywhere (``/etc/passwd``,
another client's folder): exporting followed it into the client's package, and purging
failed on it forever. Here a link on the way to a data set is refused
as a problem for ops, a link inside one is skipped and listed, files are opened with
O_NOFOLLOW, and deletion removes links themselves, never what they point to.

A document (attached to the knowledge-transfer mail) is read the same way: a link in the
client's folder of the documents root mailed another client's runbook.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path, PurePosixPath

from temporalio.exceptions import ApplicationError

LINK = "a symbolic link; links are never followed"
KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket",
         stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
         stat.S_IFDIR: "a folder"}
NOT_A_FILE = "; only regular files are exported"


def skipped_because(path: Path) -> str:
    """Why an entry of a data set was left out of the export, as the manifest says it:
    a FIFO was reported as "a symbolic link"."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return "gone or replaced while it was exported"
    if stat.S_ISLNK(mode):
        return LINK
    if stat.S_ISREG(mode):  # listed as a file, then replaced by a link (ELOOP) and back
        return "replaced while it was exported"
    return KINDS.get(stat.S_IFMT(mode), "not a regular file") + NOT_A_FILE


def locate(root: Path, client_id: str, rel: str) -> Path:
    """The data set's path under ``root``, or a permanent error ops can read."""
    parts = PurePosixPath(rel).parts
    if not parts or parts[0] != client_id or any(p in (".", "..", "") for p in parts):
        raise ApplicationError(
            f"data set {rel!r} is not in {client_id}'s own folder of the data root "
            f"({client_id}/...)", type="DataSetOutside", non_retryable=True)
    path = root
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise ApplicationError(
                f"data set path {path.relative_to(root).as_posix()} is {LINK}",
                type="DataSetLink", non_retryable=True)
    return path


def walk(base: Path) -> tuple[list[Path], list[Path]]:
    """The regular files of a data set, and the entries skipped (links, devices, FIFOs:
    opening a FIFO to read it would block the export)."""
    if not base.is_dir():
        return ([base], []) if stat.S_ISREG(base.lstat().st_mode) else ([], [base])
    files: list[Path] = []
    skipped: list[Path] = []
    for folder, dirs, names in os.walk(base, followlinks=False):
        here = Path(folder)
        skipped += [here / d for d in dirs if (here / d).is_symlink()]
        for name in names:
            path = here / name
            (files if stat.S_ISREG(path.lstat().st_mode) else skipped).append(path)
    return sorted(files), sorted(skipped)


def read(path: Path) -> bytes:
    """A file's bytes, refusing a link that replaced it since it was listed."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def delete(path: Path) -> bool:
    """Delete a data set; False if it was already gone. ``shutil.rmtree`` unlinks the links
    it meets (it never descends into them)."""
    if path.is_dir():
        shutil.rmtree(path)
        return True
    if path.exists():
        path.unlink()
        return True
    return False


def read_document(root: Path, rel: str) -> bytes | None:
    """The bytes of the document at ``rel`` under ``root``; None if there is no regular
    file there. No component of the path may be a link: each folder is opened relative to
    the one before with O_NOFOLLOW, so a link swapped in meanwhile is refused as well."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or any(p in (".", "..") for p in parts):
        return None
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        for n, part in enumerate(parts, start=1):
            last = n == len(parts)
            # O_NONBLOCK: opening a FIFO to read it would wait for a writer.
            flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_NONBLOCK if last else os.O_DIRECTORY)
            try:
                child = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                return None
            except OSError as err:  # a link is ELOOP, or ENOTDIR where a folder is wanted
                if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise ApplicationError(
                        f"document path {'/'.join(parts[:n])} is {LINK}",
                        type="DocumentLink", non_retryable=True) from None
                return None  # a file where the path needs a folder
            os.close(fd)
            fd = child
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ApplicationError(
                f"document {rel} is {KINDS.get(stat.S_IFMT(mode), 'not a regular file')}; "
                "expected a regular file", type="DocumentNotAFile", non_retryable=True)
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)
