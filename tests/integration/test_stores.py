"""One bundle store interface, two backends, the same promises (issue 13): a bundle is
read whole or not at all, is never overwritten, and of two writers racing on one key
exactly one wins while the other is told so. The S3 backend runs against a real MinIO
server (scripts/ensure-minio.sh), never a mock."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.minio import MinioServer
from offboarding.activities.s3_store import S3BundleStore, s3_store
from offboarding.activities.stores import BundleExists, BundleStore, FileSystemStore

BUCKET = "offboarding-tests"


@pytest.fixture(scope="session")
def minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    server = MinioServer(tmp_path_factory.mktemp("minio") / "data")
    server.make_bucket(BUCKET)
    yield server
    server.close()


@pytest.fixture(params=["filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BundleStore:
    if request.param == "filesystem":
        return FileSystemStore(tmp_path / "bundles")
    minio: MinioServer = request.getfixturevalue("minio")
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    bucket = s3_store(BUCKET, endpoint=minio.endpoint, region="us-east-1",
                      access_key_id=minio.user, secret_access_key=minio.password)
    return S3BundleStore(bucket, prefix, location=f"s3://{BUCKET}/{prefix}")


def test_a_bundle_is_read_back_streamed_and_deleted(store: BundleStore) -> None:
    big = bytes(range(256)) * 40_000  # 10 MB, streamed in pieces
    where = store.write_bundle("client/wf/export-1", {"data.zip": big, "manifest.json": b"{}"})
    assert where.endswith("client/wf/export-1")
    assert store.read("client/wf/export-1", "manifest.json") == b"{}"
    assert store.read("client/wf/export-1", "missing") is None
    assert store.read("client/wf/export-2", "manifest.json") is None
    opened = store.open("client/wf/export-1", "data.zip")
    assert opened is not None
    reader, size = opened
    chunks = []
    while chunk := reader.read(1024 * 1024):
        chunks.append(chunk)
    reader.close()
    assert size == len(big) and b"".join(chunks) == big and len(chunks) >= 10
    assert store.delete("client/wf") and not store.delete("client/wf")
    assert store.read("client/wf/export-1", "manifest.json") is None


def test_a_bundle_is_never_overwritten(store: BundleStore) -> None:
    store.write_bundle("k", {"a": b"first"})
    with pytest.raises(BundleExists):
        store.write_bundle("k", {"a": b"second"})
    assert store.read("k", "a") == b"first"


def test_of_two_writers_racing_exactly_one_wins_and_readers_see_it_whole(
        store: BundleStore) -> None:
    outcomes: dict[str, str] = {}
    start = threading.Barrier(2)

    def write(name: str) -> None:
        start.wait()
        try:
            store.write_bundle("race", {"a": name.encode(), "b": name.encode() * 2})
            outcomes[name] = "won"
        except BundleExists:
            outcomes[name] = "refused"

    threads = [threading.Thread(target=write, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["refused", "won"]
    [winner] = [n for n, o in outcomes.items() if o == "won"]
    assert store.read("race", "a") == winner.encode()
    assert store.read("race", "b") == winner.encode() * 2


def test_a_key_cannot_escape_the_store(store: BundleStore) -> None:
    for key in ("../outside", "a/../../b"):
        with pytest.raises(ValueError, match="escapes"):
            store.write_bundle(key, {"a": b"x"})
