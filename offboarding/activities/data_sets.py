"""A client's data sets on disk, handled without ever following a link.

A data set is a folder or file in the client's own folder of the data root
(``<client_id>/...``). A symbolic link inside one may point anywhere (``/etc/passwd``,
another client's folder): exporting followed it into the client's package, and purging
failed on it forever (issue 10, rows 3-5). Here a link on the way to a data set is refused
as a problem for ops, a link inside one is skipped and listed, files are opened with
O_NOFOLLOW, and deletion removes links themselves, never what they point to.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path, PurePosixPath

from temporalio.exceptions import ApplicationError

LINK = "a symbolic link; links are never followed"


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
