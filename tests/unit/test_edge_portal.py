"""Issue 20, row 12 (portal): every answer of the portal carries its security headers, the
errors too (a 500 from an unexpected exception, Starlette's own 404 and 405, the
trailing-slash redirect), and no redirect sends the browser to the Host the request named.

The requests are generated (Hypothesis): any method, paths shaped like the portal's and
not, genuine and forged links, any Host. The app runs in-process (no server needed), with
a stand-in for Temporal that fails the way a real one can."""

from __future__ import annotations

import string
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from offboarding.client import Refused
from offboarding.config import Settings, load_settings
from offboarding.portal.app import HEADERS, build_app
from offboarding.portal.main import server_config
from offboarding.security.links import new_key_file
from tests.helpers import refuse_setting

PORTAL = "https://portal.example"
EXPECTED = {name.decode(): value.decode() for name, value in HEADERS}


class Temporal:
    """The portal's view of Temporal: down for one offboarding, gone for another."""

    async def status(self, workflow_id: str) -> Any:
        if workflow_id == "gone":
            raise Refused("no such offboarding")
        raise RuntimeError("Temporal is unreachable")


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, list[str]]]:
    folder = tmp_path_factory.mktemp("portal")
    new_key_file(folder / "link-keys.json")
    config = Settings(_env_file=None, link_key_file=folder / "link-keys.json",
                      transfer_root=folder / "transfer", portal_url=PORTAL)
    app = build_app(config, connect=None)
    app.state.portal.ops = Temporal()
    keys = config.links()
    assert keys is not None
    now = datetime.now(UTC)
    tokens = [keys.mint(wid, family, "a" * 64, "steward@client.example", now)
              for wid in ("down", "gone") for family in ("data", "settlement")]
    # No lifespan (it would connect to Temporal): the stand-in is already in place.
    yield TestClient(app, base_url=PORTAL, raise_server_exceptions=False,
                     follow_redirects=False), tokens


SEGMENT = st.text(string.ascii_letters + string.digits + "-._~%", min_size=0, max_size=12)


@st.composite
def requests(draw: st.DrawFn, tokens: list[str]) -> tuple[str, str, dict[str, str], bytes]:
    method = draw(st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
                                   "PATCH"]))
    token = draw(st.one_of(st.sampled_from(tokens), SEGMENT))
    wid = draw(st.sampled_from(["down", "gone", "other"]) | SEGMENT)
    path = draw(st.one_of(
        st.sampled_from(["/", "/healthz", f"/o/{wid}/decide", f"/o/{wid}/{token}",
                         f"/o/{wid}/{token}/data.zip", f"/o/{wid}/{token}/manifest.json",
                         f"/o/{wid}/{token}/other"]),
        st.lists(SEGMENT, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts)),
    ))
    if draw(st.booleans()):
        path += "/"  # Starlette redirects a path that matches without its trailing slash
    if draw(st.booleans()):
        path += "?" + draw(st.sampled_from(["done=1", "a=b&c=d", "x"]))
    host = draw(st.sampled_from(["portal.example", "evil.example", "evil.example:8443",
                                 "127.0.0.1:8070"]))
    body = b""
    if method == "POST":
        body = draw(st.sampled_from([b"", f"token={token}&decision=verify".encode(),
                                     f"token={token}&decision=approve".encode(), b"x=%ff"]))
    return method, path, {"host": host}, body


def _check(method: str, path: str, headers: dict[str, str], status: int,
           answer: dict[str, str]) -> None:
    what = f"{method} {path} (Host {headers['host']}) -> {status}"
    for name, value in EXPECTED.items():
        assert answer.get(name) == value, f"{what}: {name} is {answer.get(name)!r}"
    location = answer.get("location")
    if location is not None:
        assert location.startswith(PORTAL + "/") or (
            location.startswith("/") and not location.startswith("//")), f"{what}: {location}"
        assert "evil.example" not in location, f"{what}: redirected to the Host it named"


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_every_answer_of_the_portal_carries_the_security_headers(
        portal: tuple[TestClient, list[str]], data: st.DataObject) -> None:
    client, tokens = portal
    method, path, headers, body = data.draw(requests(tokens))
    answer = client.request(method, PORTAL + path, headers=headers, content=body)
    _check(method, path, headers, answer.status_code, dict(answer.headers))


def test_the_errors_and_the_redirect_are_among_the_answers_checked(
        portal: tuple[TestClient, list[str]]) -> None:
    """The generated requests above reach each kind of answer; here each is named once."""
    client, tokens = portal
    cases = {
        500: ("GET", f"/o/down/{tokens[0]}"),     # Temporal fails unexpectedly
        404: ("GET", f"/o/gone/{tokens[2]}"),     # the offboarding no longer exists
        405: ("PUT", "/healthz"),                 # Starlette's own answer
        307: ("GET", "/healthz/"),                # the trailing-slash redirect
    }
    for status, (method, path) in cases.items():
        headers = {"host": "evil.example"}
        answer = client.request(method, path, headers=headers)
        assert answer.status_code == status, (method, path, answer.status_code)
        _check(method, path, headers, status, dict(answer.headers))
    page = client.get(f"/o/down/{tokens[0]}")
    assert "Internal Server Error" not in page.text and "<html" in page.text.lower()


async def _client_address(request: Request) -> Response:
    assert request.client is not None
    return PlainTextResponse(f"{request.client.host} {request.url.scheme}")


@pytest.mark.parametrize(("trusted", "peer", "seen"), [
    (None, "127.0.0.1", "127.0.0.1 http"),            # by default no process is a proxy
    ("", "127.0.0.1", "127.0.0.1 http"),
    ("10.0.0.2", "127.0.0.1", "127.0.0.1 http"),      # a local process is not the proxy
    ("10.0.0.2", "10.0.0.2", "203.0.113.9 https"),    # the proxy named is believed
    ('["10.0.0.0/8"]', "10.1.2.3", "203.0.113.9 https"),
    ("127.0.0.1, ::1", "127.0.0.1", "203.0.113.9 https"),
])
async def test_forwarded_headers_are_believed_only_from_the_configured_proxies(
        monkeypatch: pytest.MonkeyPatch, trusted: str | None, peer: str, seen: str) -> None:
    """Issue 20: uvicorn believed X-Forwarded-For from any process on the machine, so
    any local process could claim any client address in the portal's log."""
    monkeypatch.setenv("OFFBOARDING_ENV_FILE", "/nonexistent")
    monkeypatch.delenv("OFFBOARDING_PORTAL_TRUSTED_PROXIES", raising=False)
    if trusted is not None:
        monkeypatch.setenv("OFFBOARDING_PORTAL_TRUSTED_PROXIES", trusted)
    config = server_config(Starlette(routes=[Route("/", _client_address)]), load_settings())
    config.load()  # wraps the app as uvicorn serves it (its proxy-headers middleware)
    transport = httpx.ASGITransport(app=config.loaded_app, client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as http:
        answer = await http.get("/", headers={"X-Forwarded-For": "203.0.113.9",
                                              "X-Forwarded-Proto": "https"})
    assert answer.text == seen


@pytest.mark.parametrize("wrong", ["*", "proxy.example", "10.0.0.0/33", "[1]"])
def test_a_trusted_proxy_that_is_not_an_address_is_refused_by_name(
        monkeypatch: pytest.MonkeyPatch, wrong: str) -> None:
    refuse_setting(monkeypatch, "OFFBOARDING_PORTAL_TRUSTED_PROXIES", wrong)
