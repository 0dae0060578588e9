"""Payload encryption: the history Temporal stores holds no client data in plaintext, the
codec server decodes it for the Web UI only with a token, and keys can be rotated."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.api.common.v1 import Payload
from temporalio.testing import WorkflowEnvironment

from devtools.mailcapture import MailCapture
from devtools.procs import free_port, stop, wait_for_port
from devtools.scim import ScimServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import ApproveSettlement, Cancel, SkipStep
from offboarding.security.codec import CodecKeyError, EncryptionCodec, load_keys
from offboarding.security.codec_server import (
    MAX_BODY,
    Access,
    Served,
    default_hosts,
    make_app,
)
from offboarding.temporal import connect
from tests.conftest import ROOT, SCIM_TOKEN
from tests.helpers import client_file, new_worker, wait_until, waiting_for

UI = "http://localhost:8233"


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


def _served(codec: EncryptionCodec, access: Access,
            namespaces: set[str] | None = None) -> tuple[Served, str]:
    port = free_port()
    app = make_app(codec, ui_origin=UI, access=access,
                   hosts=default_hosts("127.0.0.1", port, []), namespaces=namespaces)
    return Served(app, "127.0.0.1", port), f"http://127.0.0.1:{port}"


def _encrypted_body(codec: EncryptionCodec, text: bytes) -> dict[str, object]:
    secret = Payload(metadata={"encoding": b"json/plain"}, data=text)
    [encrypted] = asyncio.run(codec.encode([secret]))
    return {"payloads": [{
        "metadata": {k: base64.b64encode(v).decode() for k, v in encrypted.metadata.items()},
        "data": base64.b64encode(encrypted.data).decode()}]}


def test_the_codec_server_decodes_for_the_ui_only_with_the_token(
    codec: EncryptionCodec,
) -> None:
    server, base = _served(codec, Access(token="ops-token"))
    try:
        body = _encrypted_body(codec, b'"Globex Retail Inc"')
        url = f"{base}/decode"
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
        assert "X-Namespace" in preflight.headers["Access-Control-Allow-Headers"]
        other = httpx.options(url, headers={"Origin": "http://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        server.shutdown()


def test_the_codec_server_follows_temporals_namespace_conventions(
    codec: EncryptionCodec,
) -> None:
    """Issue 14: ``/{namespace}/decode`` and the ``X-Namespace`` header, for the namespaces
    it serves only."""
    server, base = _served(codec, Access(token="ops-token"), namespaces={"offboarding"})
    auth = {"Authorization": "Bearer ops-token"}
    try:
        body = _encrypted_body(codec, b'"Initech"')
        by_path = httpx.post(f"{base}/offboarding/decode", json=body, headers=auth)
        assert by_path.status_code == 200
        assert base64.b64decode(by_path.json()["payloads"][0]["data"]) == b'"Initech"'
        by_header = httpx.post(f"{base}/decode", json=body,
                               headers={**auth, "X-Namespace": "offboarding"})
        assert by_header.status_code == 200
        for wrong in (httpx.post(f"{base}/payroll/decode", json=body, headers=auth),
                      httpx.post(f"{base}/decode", json=body,
                                 headers={**auth, "X-Namespace": "payroll"})):
            assert wrong.status_code == 404 and "not served" in wrong.json()["error"]
        assert httpx.post(f"{base}/offboarding/steal", json=body, headers=auth
                          ).status_code == 404
        big = httpx.post(f"{base}/offboarding/decode", content=b"x" * (MAX_BODY + 1),
                         headers=auth)
        assert big.status_code == 413
    finally:
        server.shutdown()


def test_the_codec_server_accepts_the_users_own_token_checked_against_the_jwks(
    codec: EncryptionCodec,
) -> None:
    """The UI can forward the signed-in user's access token; it is checked against the
    identity provider's JWKS (served here by a real HTTP server), not trusted blindly."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks_port = free_port()
    jwks = Served(Starlette(routes=[Route("/jwks", lambda request: JSONResponse(
        {"keys": [{**jwk, "kid": "idp-1", "use": "sig", "alg": "RS256"}]}))]),
        "127.0.0.1", jwks_port)
    server, base = _served(codec, Access(jwks_url=f"http://127.0.0.1:{jwks_port}/jwks",
                                         audience="temporal-ui", issuer="https://idp"))

    def token(signer: rsa.RSAPrivateKey = key, **claims: object) -> str:
        return jwt.encode({"sub": "ops@example.com", "aud": "temporal-ui",
                           "iss": "https://idp", "exp": int(time.time()) + 300, **claims},
                          signer, algorithm="RS256", headers={"kid": "idp-1"})
    try:
        body = _encrypted_body(codec, b'"Acme"')

        def call(bearer: str) -> int:
            return httpx.post(f"{base}/default/decode", json=body,
                              headers={"Authorization": f"Bearer {bearer}"}).status_code

        assert call(token()) == 200
        assert call(token(exp=int(time.time()) - 10)) == 401
        assert call(token(aud="someone-else")) == 401
        assert call(token(signer=rsa.generate_private_key(public_exponent=65537,
                                                          key_size=2048))) == 401
        assert call("not.a.jwt") == 401
    finally:
        server.shutdown()
        jwks.shutdown()


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
    server, base = _served(codec, Access(token=token))
    port = int(base.rsplit(":", 1)[1])
    try:
        body: dict[str, list[object]] = {"payloads": []}
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


def test_the_codec_server_process_logs_requests_without_the_token_in_their_path(
    codec: EncryptionCodec, tmp_path: Path,
) -> None:
    """As compose runs it (``offboarding-codec-server``-style, its own process): the UI's
    codec endpoint carries the token in its path, and a token in a log decrypts histories
    for whoever reads the log."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFBOARDING_")}
    env.update({"OFFBOARDING_ENV_FILE": "/nonexistent",
                "OFFBOARDING_CODEC_KEY_FILE": str(tmp_path / "keys.json")})
    log = tmp_path / "codec-server.log"
    proc = subprocess.Popen([sys.executable, "-m", "offboarding.security.codec_server",
                             "--port", str(port)], env=env, cwd=ROOT,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc)
        token = codec.server_token()
        answer = httpx.post(f"http://127.0.0.1:{port}/t/{token}/default/decode",
                            json={"payloads": []}, headers={"Origin": UI})
        assert answer.status_code == 200
    finally:
        stop(proc)
    logged = log.read_text()
    assert "/default/decode HTTP/1.1\" 200" in logged and token not in logged, logged[-2000:]
