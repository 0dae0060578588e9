"""Issue 20, small rows (codec server): the ``Authorization`` scheme is case-insensitive
(RFC 7235), so ``bearer`` and ``BEARER`` are as good as ``Bearer``; another scheme, or a
token alone, is not a bearer token."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from offboarding.security.codec import EncryptionCodec, load_keys, new_key_file
from offboarding.security.codec_server import Access, make_app

UI = "http://localhost:8233"


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    new_key_file(tmp_path / "keys.json")
    codec = load_keys(tmp_path / "keys.json", None, None)
    assert isinstance(codec, EncryptionCodec)
    app = make_app(codec, ui_origin=UI, access=Access(token="ops-token"),
                   hosts={"codec.test"})
    return TestClient(app, base_url="http://codec.test")


@pytest.mark.parametrize("header", ["Bearer ops-token", "bearer ops-token", "BEARER ops-token",
                                    "bEaReR ops-token", "Bearer  ops-token"])
def test_the_bearer_scheme_is_case_insensitive(client: TestClient, header: str) -> None:
    answer = client.post("/decode", json={"payloads": []}, headers={"Authorization": header})
    assert answer.status_code == 200, (header, answer.text)


@pytest.mark.parametrize("header", ["ops-token", "Basic ops-token", "Bearer", "Bearer nope",
                                    "Bearerops-token", "Token ops-token"])
def test_anything_but_a_bearer_token_is_refused(client: TestClient, header: str) -> None:
    answer = client.post("/decode", json={"payloads": []}, headers={"Authorization": header})
    assert answer.status_code == 401, (header, answer.text)
