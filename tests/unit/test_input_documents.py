"""Issue 20, row 6 (read side): a document is read without following a link, so a link in
a client's own folder of the documents root cannot mail another client's runbook; and the
smaller one: an entry of a data set that is a FIFO is not called "a symbolic link"."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from offboarding.activities import data_sets
from offboarding.activities.data_sets import read_document, skipped_because
from offboarding.activities.email import Mailer
from offboarding.config import Settings


@pytest.fixture
def root(tmp_path: Path) -> Path:
    docs = tmp_path / "documents"
    (docs / "acme").mkdir(parents=True)
    (docs / "acme" / "runbook.md").write_text("acme's runbook")
    (docs / "globex" / "private").mkdir(parents=True)
    (docs / "globex" / "private" / "runbook.md").write_text("globex's runbook")
    return docs


def _mailer(root: Path, tmp_path: Path) -> Mailer:
    return Mailer(Settings(_env_file=None, documents_root=root, state_dir=tmp_path / "state",
                           archive_root=tmp_path / "archive"))


def test_the_clients_own_document_is_read(root: Path, tmp_path: Path) -> None:
    assert read_document(root, "acme/runbook.md") == b"acme's runbook"
    assert _mailer(root, tmp_path)._document("acme/runbook.md") == b"acme's runbook"


@pytest.mark.parametrize(("link", "target", "rel", "named"), [
    ("acme/runbook-link.md", "../globex/private/runbook.md", "acme/runbook-link.md",
     "acme/runbook-link.md"),
    ("acme/shared", "../globex/private", "acme/shared/runbook.md", "acme/shared"),
    ("acme/abs.md", "{root}/globex/private/runbook.md", "acme/abs.md", "acme/abs.md"),
    ("acme/inside.md", "runbook.md", "acme/inside.md", "acme/inside.md"),
])
def test_a_link_is_never_followed_even_to_the_clients_own_document(
    root: Path, tmp_path: Path, link: str, target: str, rel: str, named: str,
) -> None:
    (root / link).symlink_to(target.format(root=root))
    for read in (lambda r: read_document(root, r), _mailer(root, tmp_path)._document):
        with pytest.raises(ApplicationError) as err:
            read(rel)
        assert err.value.message == f"document path {named} is a symbolic link; links are " \
            "never followed"
        assert err.value.non_retryable


def test_a_linked_documents_root_is_still_the_root(root: Path, tmp_path: Path) -> None:
    """The root itself is the worker's setting (a mounted volume may be a link)."""
    (tmp_path / "docs-link").symlink_to(root, target_is_directory=True)
    assert read_document(tmp_path / "docs-link", "acme/runbook.md") == b"acme's runbook"


@pytest.mark.parametrize("rel", ["acme/missing.md", "acme/runbook.md/x", "../documents/x",
                                 "/etc/passwd", "acme/../globex/private/runbook.md", ""])
def test_no_file_there_is_none(root: Path, rel: str) -> None:
    assert read_document(root, rel) is None


def test_a_fifo_is_neither_read_nor_waited_for(root: Path) -> None:
    os.mkfifo(root / "acme" / "pipe.md")
    with pytest.raises(ApplicationError, match=r"document acme/pipe.md is a FIFO \(named "
                                               r"pipe\); expected a regular file"):
        read_document(root, "acme/pipe.md")


def test_a_skipped_data_set_entry_says_what_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "acme" / "crm"
    folder.mkdir(parents=True)
    (folder / "contacts.csv").write_text("x")
    os.mkfifo(folder / "pipe")
    (folder / "link").symlink_to("contacts.csv")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock"))
    try:
        files, skipped = data_sets.walk(folder)
        assert files == [folder / "contacts.csv"]
        assert {p.name: skipped_because(p) for p in skipped} == {
            "link": "a symbolic link; links are never followed",
            "pipe": "a FIFO (named pipe); only regular files are exported",
            "sock": "a socket; only regular files are exported",
        }
    finally:
        sock.close()
    assert skipped_because(folder / "gone") == "gone or replaced while it was exported"
