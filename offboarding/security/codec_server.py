"""A codec server: lets the Temporal Web UI (and ``temporal --codec-endpoint``) show
decoded payloads to ops, while Temporal itself only ever stores ciphertext.

Temporal's remote codec conventions: ``POST /{namespace}/encode`` and ``/{namespace}/decode``
(or ``/encode`` and ``/decode`` with the namespace in an ``X-Namespace`` header), a JSON
body ``{"payloads": [...]}`` in protobuf JSON, CORS for the Web UI's origin only. Served by
Starlette under uvicorn: every request is awaited on one event loop.

Who may decode:
- a **static token**, as ``Authorization: Bearer <token>`` or in the path
  (``/t/<token>/...``: the UI's codec endpoint setting holds no headers). By default it is
  derived from the key file (``EncryptionCodec.server_token``); one the operator chose is
  given in ``OFFBOARDING_CODEC_SERVER_TOKEN`` or a file (``--token-file``), never on the
  command line, which any local user reads with ``ps``;
- or the **user's own access token**, which the UI forwards
  (``TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true``): a JWT checked against your identity
  provider's JWKS URL (``--jwks-url``, with ``--audience`` and ``--issuer``).
Another Origin is refused outright, not merely denied CORS, and so is a Host header that is
not this server's own name (a DNS-rebinding page), and a namespace it does not serve.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import os
import re
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from offboarding.security.web import bounded_body, hide_in_access_log

MAX_BODY = 16 * 1024 * 1024
TOKEN_ENV = "OFFBOARDING_CODEC_SERVER_TOKEN"
"""The token the operator chose, if not derived from the key (this server's own variable,
read here and not by the worker's settings)."""


@dataclass
class Access:
    """Who may call: a static token, or a JWT from the identity provider (or both)."""

    token: str | None = None
    jwks_url: str | None = None
    audience: str | None = None
    issuer: str | None = None
    _jwks: jwt.PyJWKClient | None = field(default=None, repr=False)

    def allows(self, given: str) -> bool:
        if self.token is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            return True
        if self.jwks_url is None or given.count(".") != 2:
            return False
        if self._jwks is None:
            self._jwks = jwt.PyJWKClient(self.jwks_url, cache_keys=True)
        try:
            key = self._jwks.get_signing_key_from_jwt(given)
            jwt.decode(given, key.key, algorithms=["RS256", "ES256", "EdDSA"],
                       audience=self.audience, issuer=self.issuer,
                       options={"require": ["exp"], "verify_aud": self.audience is not None})
            return True
        except (jwt.PyJWTError, jwt.PyJWKClientError):
            return False


def make_app(codec: PayloadCodec, *, ui_origin: str, access: Access, hosts: set[str],
             namespaces: set[str] | None = None) -> Starlette:
    """``hosts``: the Host headers accepted; ``namespaces``: those served (default: any)."""

    def cors(response: Response, request: Request) -> Response:
        if request.headers.get("origin") == ui_origin:
            response.headers["Access-Control-Allow-Origin"] = ui_origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Vary"] = "Origin"
        return response

    def error(request: Request, status: int, why: str) -> Response:
        return cors(JSONResponse({"error": why}, status_code=status), request)

    async def preflight(request: Request) -> Response:
        response = Response(status_code=204, headers={
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type, X-Namespace, Authorization",
            "Access-Control-Max-Age": "600"})
        return cors(response, request)

    async def handle(request: Request) -> Response:
        if request.method == "OPTIONS":
            return await preflight(request)
        if request.headers.get("host") not in hosts:
            return error(request, 403, "unexpected Host")
        origin = request.headers.get("origin")
        if origin is not None and origin != ui_origin:
            return error(request, 403, "origin not allowed")
        params = request.path_params
        given = params.get("token") or bearer(request.headers.get("authorization", ""))
        # In a thread: checking a JWT may fetch the identity provider's keys (blocking I/O),
        # which would stall every other request on this loop meanwhile.
        if not await asyncio.to_thread(access.allows, given):
            return error(request, 401, "missing or wrong token")
        namespace = params.get("namespace") or request.headers.get("x-namespace", "default")
        if namespaces is not None and namespace not in namespaces:
            return error(request, 404, f"namespace {namespace[:100]!r} is not served here")
        body = await bounded_body(request, MAX_BODY)
        if len(body) > MAX_BODY:
            return error(request, 413, "body too large")
        try:
            payloads = json_format.Parse(body, Payloads())
            fn = codec.encode if params["op"] == "encode" else codec.decode
            result = await fn(list(payloads.payloads))
        except Exception as err:
            return error(request, 400, type(err).__name__)
        text = json_format.MessageToJson(Payloads(payloads=result))
        return cors(Response(text, media_type="application/json"), request)

    routes = [Route(path, _only_ops(handle), methods=["POST", "OPTIONS"]) for path in (
        "/{op}", "/{namespace}/{op}", "/t/{token}/{op}", "/t/{token}/{namespace}/{op}")]
    return Starlette(routes=routes)


def bearer(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, else "" (no token): the
    scheme is case-insensitive (RFC 7235), so ``bearer`` is as good as ``Bearer``."""
    scheme, _, credentials = authorization.strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def _only_ops(handle: Callable[[Request], Awaitable[Response]]
              ) -> Callable[[Request], Awaitable[Response]]:
    async def checked(request: Request) -> Response:
        if request.path_params.get("op") not in ("encode", "decode"):
            return JSONResponse({"error": "use /encode or /decode"}, status_code=404)
        return await handle(request)
    return checked


def default_hosts(host: str, port: int, public: list[str]) -> set[str]:
    """The address it listens on, plus localhost when that is a loopback address, plus
    the public names given."""
    loopback = [f"localhost:{port}", f"127.0.0.1:{port}"] if host in (
        "127.0.0.1", "localhost") else []
    return {f"{host}:{port}", *loopback, *public}


class Served:
    """The app under uvicorn on a thread of its own (make run, the tests)."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port,
                                                    log_level="warning", server_header=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started and self.thread.is_alive():
            threading.Event().wait(0.02)

    def shutdown(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def given_token(path: Path | None) -> str | None:
    """The token the operator chose: from ``--token-file`` or the environment."""
    if path is not None:
        try:
            token = path.read_text().strip()
        except OSError as err:
            raise ValueError(f"--token-file {path}: {err.strerror or type(err).__name__}"
                             ) from None
        if not token:
            raise ValueError(f"--token-file {path} is empty")
        return token
    return os.environ.get(TOKEN_ENV, "").strip() or None


def main() -> int:
    from offboarding.config import load_settings

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--ui-origin", default="http://localhost:8233")
    p.add_argument("--token-file", type=Path,
                   help=f"a file holding the token to require (else {TOKEN_ENV}, else "
                        "derived from the key); never the token itself: a command line "
                        "shows in ps")
    p.add_argument("--jwks-url", help="also accept the user's JWT, checked against this JWKS")
    p.add_argument("--audience", help="the JWT audience to require")
    p.add_argument("--issuer", help="the JWT issuer to require")
    p.add_argument("--namespace", action="append", default=[],
                   help="a namespace to serve (repeatable; default: any)")
    p.add_argument("--public-host", action="append", default=[],
                   help="a Host header to accept besides the listening address (repeatable)")
    args = p.parse_args()
    codec = load_settings().codec()
    if codec is None:
        print("codec server: no keys configured (OFFBOARDING_CODEC_KEY_FILE or "
              "OFFBOARDING_CODEC_KEYS)", file=sys.stderr)
        return 2
    try:
        token = given_token(args.token_file) or codec.server_token()
    except ValueError as err:
        print(f"codec server: {err}", file=sys.stderr)
        return 2
    access = Access(token=token, jwks_url=args.jwks_url,
                    audience=args.audience, issuer=args.issuer)
    app = make_app(codec, ui_origin=args.ui_origin, access=access,
                   hosts=default_hosts(args.host, args.port, args.public_host),
                   namespaces=set(args.namespace) or None)
    print(f"codec server on http://{args.host}:{args.port} for {args.ui_origin}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port,
                                           server_header=False))
    hide_in_access_log(re.compile(r"(?<=/t/)[^/\s?]+"), "(token)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
