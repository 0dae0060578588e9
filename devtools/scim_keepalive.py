"""scim2-server's own command, serving HTTP/1.1 with connections kept open.

The command serves through ``wsgiref``, which answers HTTP/1.0 and closes the connection
after every response. A production SCIM endpoint keeps connections open, and the worker's
client (one httpx2 pool per system, ``activities/access.py``) is built to reuse them; over
``wsgiref`` that reuse was never exercised, and each request paid for a new TCP connection
on both sides, which the benchmark counted as the worker's own cost. Here the same command
runs with a request handler that serves one request after another on a connection until
the client closes it, so the tests and the benchmark see what production would. The access
log keeps wsgiref's format, one line a request, with the client's port after its address.

Run as a script (``devtools`` is not an installed package): ``python scim_keepalive.py``
with the arguments of ``scim2-server``.
"""

from __future__ import annotations

import functools
import io
import sys
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, make_server

import scim2_server.testserver.cli as scim2_cli

IDLE_SECONDS = 60
"""A connection idle this long is closed, so a client that went away does not hold a
thread for ever."""

MAX_REQUEST_LINE = 65536
MAX_BODY = 1 << 20
"""A larger body is left to the application on the socket, and the connection closed."""


class KeepAliveServerHandler(ServerHandler):
    http_version = "1.1"
    delimited = False
    """Whether the answer said where it ends (its length, or a status without a body):
    read before ``close``, which forgets the headers."""

    def close(self) -> None:
        headers, status = getattr(self, "headers", None), getattr(self, "status", None)
        sized = headers is not None and "Content-Length" in headers
        self.delimited = sized or (status or "").startswith(("204", "304"))
        super().close()


class KeepAliveRequestHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    # wsgiref writes the headers and the body apart: on a connection kept open, Nagle's
    # algorithm would hold the body back until the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """wsgiref's access log, with the client's port after its address: which
        connection carried each request."""
        host, port = self.client_address[:2]
        message = (format % args).translate(self._control_char_table)  # type: ignore[attr-defined]
        sys.stderr.write(f"{host}:{port} - - [{self.log_date_time_string()}] {message}\n")

    def handle(self) -> None:
        self.close_connection = True
        self._serve_one()
        while not self.close_connection:
            self._serve_one()

    def _serve_one(self) -> None:
        """wsgiref's ``handle`` for one request, which then tells whether the connection
        can carry another: only when the answer said how long it was."""
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
        except OSError:  # idle too long, reset, or a socket a timed-out read left unusable
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            self.close_connection = True
            return
        if not self.parse_request():  # it answered the error and decided on the connection
            return
        body = self._body()
        if body is None or self.command == "HEAD":  # wsgiref writes a HEAD's body too
            self.close_connection = True
        stdin = self.rfile if body is None else body
        handler = KeepAliveServerHandler(stdin, self.wfile,  # type: ignore[arg-type]
                                         self.get_stderr(), self.get_environ(),
                                         multithread=True)
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref's own hook
        handler.run(self.server.get_app())  # type: ignore[attr-defined]
        if not handler.delimited:
            self.close_connection = True  # its end is where the connection closes

    def _body(self) -> io.BytesIO | None:
        """The request's body, read whole before the application runs, so that what it
        leaves unread (an unknown path or tenant reads nothing) cannot be taken for the
        next request; None when its length is not given plainly (chunked, malformed,
        too large): then the application reads the socket and the connection closes."""
        if "Transfer-Encoding" in self.headers:
            return None
        length = self.headers.get("Content-Length", "0").strip()
        if not length.isdigit() or int(length) > MAX_BODY:
            return None
        try:
            return io.BytesIO(self.rfile.read(int(length)))
        except OSError:
            return None


def main() -> None:
    scim2_cli.make_server = functools.partial(  # type: ignore[attr-defined,assignment]
        make_server, handler_class=KeepAliveRequestHandler)
    scim2_cli.main()


if __name__ == "__main__":
    main()
