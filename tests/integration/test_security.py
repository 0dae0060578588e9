"""Payload encryption: the history Temporal stores holds no client data in plaintext, the
codec server decodes it for the Web UI only with a token, and keys can be rotated."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import httpx
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.testing import WorkflowEnvironment

from devtools.mailcapture import MailCapture
from devtools.procs import free_port
from devtools.scim import ScimServer
from offboarding.cli.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import ApproveSettlement, Cancel, SkipStep
from offboarding.security.codec import CodecKeyError, EncryptionCodec, load_keys, new_key_file
from offboarding.security.codec_server import make_server, serve_in_thread
from offboarding.temporal import connect
from tests.conftest import SCIM_TOKEN
from tests.helpers import client_file, new_worker, wait_until, waiting_for

UI = "http://localhost:8233"


@pytest.fixture
def codec(tmp_path: Path) -> EncryptionCodec:
    new_key_file(tmp_path / "keys.json")
    loaded = load_keys(tmp_path / "keys.json", None, None)
    assert loaded is not None
    return loaded


async def test_the_stored_history_holds_no_personal_data_in_plaintext(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
    codec: EncryptionCodec,
) -> None:
    client = await connect(dev_env.client.service_client.config.target_host, codec)
    cf = client_file("termination", scim=scim)
    mail.refuse.add(cf.contacts.primary.email)  # its failure message names the address
    async with new_worker(client, settings):
        cli = OffboardingClient(client, settings.task_queue)
        wid = await cli.start(cf)
        handle = client.get_workflow_handle(wid)
        st = await wait_until(handle, waiting_for("ops-action"))
        assert st.client_name == cf.client_name, "with the keys, everything reads as usual"
        assert cf.contacts.primary.email in st.problems[0].why
        await cli.send(wid, "skip-step", SkipStep(by="ops", problem=st.problems[0].key,
                                                 reason="address unknown"))
        st = await wait_until(handle, waiting_for("settlement-approval"))
        await cli.send(wid, "approve-settlement", ApproveSettlement(
            by=cf.approvers.finance[0], statement_hash=st.statements[-1].short_hash))
        st = await wait_until(handle, waiting_for("data-verification"))
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await handle.result()
    history = (await dev_env.client.get_workflow_handle(wid).fetch_history()).to_json()
    planted = [cf.client_name, cf.contacts.primary.email, cf.contacts.data_steward.email,
               cf.contacts.billing.email, cf.approvers.finance[0], "8400.00",
               cf.termination.cause if cf.termination else "", SCIM_TOKEN]
    assert "ActivityTaskFailed" in history or "activityTaskFailedEventAttributes" in history
    for value in planted:
        assert value not in history, f"{value!r} is stored in plaintext"
    # Without the keys, even the result cannot be read.
    with pytest.raises(KeyError, match="Unknown payload encoding binary/encrypted"):
        await dev_env.client.get_workflow_handle(wid).result()


def test_the_codec_server_decodes_for_the_ui_only_with_the_token(
    codec: EncryptionCodec,
) -> None:
    import asyncio

    port = free_port()
    server = make_server(codec, "127.0.0.1", port, ui_origin=UI, token="ops-token")
    serve_in_thread(server)
    try:
        secret = Payload(metadata={"encoding": b"json/plain"}, data=b'"Globex Retail Inc"')
        [encrypted] = asyncio.run(codec.encode([secret]))
        body = {"payloads": [{
            "metadata": {k: base64.b64encode(v).decode() for k, v in encrypted.metadata.items()},
            "data": base64.b64encode(encrypted.data).decode()}]}
        url = f"http://127.0.0.1:{port}/decode"
        assert httpx.post(url, json=body).status_code == 401
        assert httpx.post(url, json=body, headers={"Authorization": "Bearer nope"}
                          ).status_code == 401
        resp = httpx.post(url, json=body, headers={"Authorization": "Bearer ops-token",
                                                    "Origin": UI})
        assert resp.status_code == 200
        assert resp.headers["Access-Control-Allow-Origin"] == UI
        [decoded] = resp.json()["payloads"]
        assert base64.b64decode(decoded["data"]) == b'"Globex Retail Inc"'
        preflight = httpx.options(url, headers={"Origin": UI})
        assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
        other = httpx.options(url, headers={"Origin": "http://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        server.shutdown()


async def test_keys_rotate_by_adding_a_new_active_key() -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    old = EncryptionCodec({"k1": k1}, "k1")
    [written_before] = await old.encode([Payload(data=b"before")])
    rotated = EncryptionCodec({"k1": k1, "k2": k2}, "k2")
    [written_after] = await rotated.encode([Payload(data=b"after")])
    assert written_after.metadata["encryption-key-id"] == b"k2"
    assert [p.data for p in await rotated.decode([written_before, written_after])] == \
        [b"before", b"after"]
    with pytest.raises(CodecKeyError, match="unknown key 'k2'"):
        await old.decode([written_after])
    with pytest.raises(CodecKeyError, match="must be 32 bytes"):
        EncryptionCodec({"short": b"x" * 16}, "short")
    with pytest.raises(CodecKeyError, match="the active key 'k3' is not among the keys"):
        load_keys(None, json.dumps({"k1": base64.b64encode(k1).decode()}), "k3")


def test_the_codec_server_make_run_starts_needs_its_token_and_checks_host_and_origin(
    codec: EncryptionCodec,
) -> None:
    """Issue 10, row 16: without a token any local process decrypted whole histories, and
    a page on any site could reach it through a rebound DNS name."""
    token = codec.server_token()
    assert len(token) >= 32 and token == codec.server_token(), "derived from the key file"
    port = free_port()
    server = make_server(codec, "127.0.0.1", port, ui_origin=UI, token=token)
    serve_in_thread(server)
    try:
        body: dict[str, list[object]] = {"payloads": []}
        base = f"http://127.0.0.1:{port}"
        assert httpx.post(f"{base}/decode", json=body).status_code == 401
        assert httpx.post(f"{base}/t/{'0' * len(token)}/decode", json=body).status_code == 401
        # The UI's codec endpoint setting carries the token in its path.
        assert httpx.post(f"{base}/t/{token}/decode", json=body,
                          headers={"Origin": UI}).status_code == 200
        assert httpx.post(f"{base}/t/{token}/decode", json=body, headers={
            "Host": "rebound.evil.example"}).status_code == 403
        assert httpx.post(f"{base}/t/{token}/decode", json=body, headers={
            "Origin": "http://evil.example"}).status_code == 403
        assert httpx.post(f"http://localhost:{port}/decode", json=body, headers={
            "Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        server.shutdown()
