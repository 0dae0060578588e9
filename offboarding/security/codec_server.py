"""A codec server: lets the Temporal Web UI (and ``temporal --codec-endpoint``) show
decoded payloads to ops, while Temporal itself only ever stores ciphertext.

Implements Temporal's remote codec protocol: ``POST /encode`` and ``POST /decode`` with a
JSON body ``{"payloads": [...]}`` (protobuf JSON). Every request must carry the token, as
``Authorization: Bearer <token>`` or in the path (``/t/<token>/decode``: the Web UI's codec
endpoint setting holds no headers). By default the token is derived from the key file
(``EncryptionCodec.server_token``). Browsers are allowed from the UI's origin only: another
Origin is refused outright, not merely denied CORS, and so is a Host header that is not
this server's own name (a DNS-rebinding page). In production put it behind your SSO and let
the UI pass the user's access token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

MAX_BODY = 16 * 1024 * 1024


def make_server(codec: PayloadCodec, host: str, port: int, *, ui_origin: str,
                token: str | None, hosts: set[str] | None = None) -> ThreadingHTTPServer:
    """``hosts``: the Host headers accepted; by default the address it listens on, plus
    localhost when that is a loopback address."""
    allowed = hosts or {f"{host}:{port}", *([f"localhost:{port}", f"127.0.0.1:{port}"]
                                             if host in ("127.0.0.1", "localhost") else [])}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # no payloads in logs
            pass

        def _cors(self) -> None:
            if self.headers.get("Origin") == ui_origin:
                self.send_header("Access-Control-Allow-Origin", ui_origin)
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header("Vary", "Origin")

        def _reply(self, status: int, body: bytes = b"",
                   content_type: str = "application/json") -> None:
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_OPTIONS(self) -> None:
            self.send_response(204)
            self._cors()
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers",
                             "Content-Type, X-Namespace, Authorization")
            self.send_header("Access-Control-Max-Age", "600")
            self.end_headers()

        def do_POST(self) -> None:
            if self.headers.get("Host") not in allowed:
                return self._reply(403, b'{"error": "unexpected Host"}')
            origin = self.headers.get("Origin")
            if origin is not None and origin != ui_origin:
                return self._reply(403, b'{"error": "origin not allowed"}')
            given, path = self.headers.get("Authorization", "").removeprefix("Bearer "), self.path
            if path.startswith("/t/"):
                given, _, rest = path.removeprefix("/t/").partition("/")
                path = "/" + rest
            if path not in ("/encode", "/decode"):
                return self._reply(404, b'{"error": "use /encode or /decode"}')
            if token is not None and not hmac.compare_digest(given.encode(), token.encode()):
                return self._reply(401, b'{"error": "missing or wrong token"}')
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._reply(413, b'{"error": "body too large"}')
            try:
                payloads = json_format.Parse(self.rfile.read(length), Payloads())
                fn = codec.encode if path == "/encode" else codec.decode
                result = asyncio.run(fn(list(payloads.payloads)))
            except Exception as err:
                msg = f'{{"error": "{type(err).__name__}"}}'.encode()
                return self._reply(400, msg)
            body = json_format.MessageToJson(Payloads(payloads=result)).encode()
            self._reply(200, body)

    return ThreadingHTTPServer((host, port), Handler)


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def main() -> int:
    from offboarding.config import load_settings

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--ui-origin", default="http://localhost:8233")
    p.add_argument("--token", help="the token to require (default: derived from the key)")
    p.add_argument("--public-host", action="append", default=[],
                   help="a Host header to accept besides the listening address (repeatable)")
    args = p.parse_args()
    codec = load_settings().codec()
    if codec is None:
        print("codec server: no keys configured (OFFBOARDING_CODEC_KEY_FILE or "
              "OFFBOARDING_CODEC_KEYS)", file=sys.stderr)
        return 2
    hosts = {f"{args.host}:{args.port}", *args.public_host} if args.public_host else None
    server = make_server(codec, args.host, args.port, ui_origin=args.ui_origin,
                         token=args.token or codec.server_token(), hosts=hosts)
    print(f"codec server on http://{args.host}:{args.port} for {args.ui_origin}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
