"""Exporting and purging a client's data on a real file system (issue 10, rows 3-5): links
are never followed out of a data set, a data set is one client's own, and the purge deletes
what it owns and says so when it cannot."""

from __future__ import annotations

import io
import json
import os
import subprocess
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from offboarding.activities.data_transfer import DataTransfer
from offboarding.config import Settings
from offboarding.models.records import ExportRequest, PurgeRequest


@pytest.fixture
def files(tmp_path: Path) -> Settings:
    root = tmp_path / "client-data"
    (root / "acme" / "crm").mkdir(parents=True)
    (root / "acme" / "crm" / "contacts.csv").write_text("name\nPriya\n")
    (root / "globex").mkdir()
    (root / "globex" / "orders.csv").write_text("order\n1\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not the client's")
    return Settings(_env_file=None, client_data_root=root, transfer_root=tmp_path / "transfer",
                    state_dir=tmp_path / "state")


async def export(settings: Settings, *data_sets: tuple[str, str], client: str = "acme"
                 ) -> tuple[zipfile.ZipFile, dict[str, object], list[str]]:
    req = ExportRequest(workflow_id="wf", client_id=client, attempt=1, data_sets=list(data_sets))
    package = await ActivityEnvironment().run(DataTransfer(settings).export_client_data, req)
    where = Path(package.location)
    manifest = json.loads((where / "manifest.json").read_bytes())
    return zipfile.ZipFile(io.BytesIO((where / "data.zip").read_bytes())), manifest, \
        package.skipped


async def test_a_link_to_a_file_outside_never_enters_the_export(
    files: Settings, tmp_path: Path,
) -> None:
    crm = files.client_data_root / "acme" / "crm"
    (crm / "inner").mkdir()
    (crm / "inner" / "passwd.csv").symlink_to("/etc/passwd")
    (crm / "elsewhere").symlink_to(tmp_path / "outside", target_is_directory=True)
    (crm / "sibling.csv").symlink_to(files.client_data_root / "globex" / "orders.csv")
    zf, manifest, skipped = await export(files, ("CRM", "acme/crm"))
    assert zf.namelist() == ["CRM/contacts.csv"]
    contents = b"".join(zf.read(n) for n in zf.namelist())
    assert b"root:" not in contents and b"not the client's" not in contents
    assert skipped == ["CRM/elsewhere", "CRM/inner/passwd.csv", "CRM/sibling.csv"]
    assert manifest["skipped"] == [{"path": p, "why": "a symbolic link; links are never "
                                    "followed"} for p in skipped]


async def test_a_data_set_that_is_a_link_is_refused_for_ops(
    files: Settings, tmp_path: Path,
) -> None:
    (files.client_data_root / "acme" / "linked").symlink_to(tmp_path / "outside")
    with pytest.raises(ApplicationError) as err:
        await export(files, ("Linked", "acme/linked"))
    assert err.value.non_retryable and err.value.type == "DataSetLink"
    assert "acme/linked is a symbolic link; links are never followed" in err.value.message


@pytest.mark.parametrize("path", [".", "globex", "globex/orders.csv", "acme/../globex"])
async def test_a_data_set_outside_the_clients_own_folder_is_refused(
    files: Settings, path: str,
) -> None:
    """The client file's validation refuses these; a workflow started some other way
    (``temporal workflow start``) meets the same rule here."""
    with pytest.raises(ApplicationError) as err:
        await export(files, ("All", path))
    assert err.value.non_retryable and err.value.type == "DataSetOutside"
    assert f"data set {path!r} is not in acme's own folder" in err.value.message
    assert not files.transfer_root.exists() or not any(files.transfer_root.rglob("*.zip"))


async def test_the_purge_removes_links_without_following_them(
    files: Settings, tmp_path: Path,
) -> None:
    crm = files.client_data_root / "acme" / "crm"
    (crm / "elsewhere").symlink_to(tmp_path / "outside", target_is_directory=True)
    (crm / "passwd.csv").symlink_to("/etc/passwd")
    req = PurgeRequest(workflow_id="wf", client_id="acme", data_sets=[("CRM", "acme/crm")])
    result = await ActivityEnvironment().run(DataTransfer(files).purge_client_data, req)
    assert result.deleted == ["CRM"]
    assert not crm.exists()
    assert (tmp_path / "outside" / "secret.txt").read_text() == "not the client's"
    assert Path("/etc/passwd").is_file()
    assert (files.client_data_root / "globex" / "orders.csv").exists()


@contextmanager
def undeletable(path: Path) -> Iterator[None]:
    """A real reason a deletion fails: the immutable attribute (we run as root in CI, where
    permissions do not stop a deletion), or a read-only folder for anyone else."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.parent.chmod(0o500)
        try:
            yield
        finally:
            path.parent.chmod(0o700)


async def test_a_purge_that_cannot_delete_is_a_permanent_error_naming_the_file(
    files: Settings,
) -> None:
    stuck = files.client_data_root / "acme" / "crm" / "contacts.csv"
    req = PurgeRequest(workflow_id="wf", client_id="acme", data_sets=[("CRM", "acme/crm")])
    with undeletable(stuck), pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(DataTransfer(files).purge_client_data, req)
    assert err.value.non_retryable and err.value.type == "PurgeFailed"
    assert "could not delete acme/crm" in err.value.message
