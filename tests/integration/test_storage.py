"""Storage that every worker shares, two backends with the same promises (issue 13): a
bundle is read whole or not at all and never overwritten, and of two writers racing on
one key exactly one wins; of two workers sending the same message at once, one sends and
the other waits. The S3 backend runs against a real MinIO server (scripts/ensure-minio.sh),
never a mock."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from devtools.mailcapture import MailCapture
from offboarding.activities.email import Mailer
from offboarding.activities.outbox import CLAIM_LEASE
from offboarding.activities.registry import bundle_store, outbox
from offboarding.activities.stores import BundleExists, BundleStore
from offboarding.config import Settings
from offboarding.models.records import EmailReceipt, EmailRequest
from tests.helpers import s3_settings
from tests.integration.test_activities import CONTEXT


@pytest.fixture(params=["filesystem", "s3"])
def shared(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "filesystem":
        return settings
    return s3_settings(settings, request.getfixturevalue("minio"))


@pytest.fixture
def store(shared: Settings) -> BundleStore:
    return bundle_store(shared, "transfer")


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


async def test_two_workers_sending_one_message_at_once_send_it_once(
        shared: Settings, mail: MailCapture) -> None:
    """Two mailers (two workers) on one shared outbox get the same message at the same
    time, with a slow SMTP server: one sends it, the other is told another worker is
    sending and retries; its retry finds the record and sends nothing."""
    sent = outbox(shared)
    req = EmailRequest(workflow_id=f"wf-{uuid.uuid4().hex[:6]}", key="notice",
                       template="check_in", to=["a@client.example"], context=CONTEXT)
    mail.stall_match, mail.stall_seconds = "notice", 1.0
    results = await asyncio.gather(
        *(ActivityEnvironment().run(Mailer(shared, sent).send_email, req) for _ in range(2)),
        return_exceptions=True)
    receipts = [r for r in results if isinstance(r, EmailReceipt)]
    [waiting] = [r for r in results if isinstance(r, ApplicationError)]
    assert len(receipts) == 1 and waiting.type == "SendInProgress"
    assert "another worker began sending notice" in str(waiting)
    retried = await ActivityEnvironment().run(Mailer(shared, sent).send_email, req)
    assert retried.already_sent and retried.message_id == receipts[0].message_id
    assert len(mail.messages) == 1
    assert list(sent.messages(req.workflow_id)) == ["notice.eml"]


async def test_a_claim_left_by_a_dead_worker_is_taken_over_after_its_lease(
        shared: Settings, mail: MailCapture) -> None:
    sent = outbox(shared)
    req = EmailRequest(workflow_id=f"wf-{uuid.uuid4().hex[:6]}", key="farewell",
                       template="check_in", to=["a@client.example"], context=CONTEXT)
    assert sent.claim(req.workflow_id, req.key) is None  # a worker claims it, then dies
    with pytest.raises(ApplicationError, match="another worker began sending farewell"):
        await ActivityEnvironment().run(Mailer(shared, sent).send_email, req)
    # Another worker, whose clock reads the lease as past (it cannot be waited out here).
    later = outbox(shared, clock=lambda: time.time() + CLAIM_LEASE + 1)
    receipt = await ActivityEnvironment().run(Mailer(shared, later).send_email, req)
    assert not receipt.already_sent and len(mail.messages) == 1
