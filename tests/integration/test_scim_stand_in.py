"""The SCIM stand-in's connections (devtools/scim_keepalive.py): kept open between
requests, as a production endpoint keeps them, and never out of step: whatever a request
carries, on whatever path, the next request on the connection is read as itself."""

from __future__ import annotations

import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.scim import ScimServer

CONFIG = "/crm/v2/ServiceProviderConfig"


def exchange(server: ScimServer, raw: bytes) -> bytes:
    """Sends ``raw`` on one connection; everything the server answered until it closed
    the connection or fell silent for a second."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(raw)
        conn.settimeout(1)
        got = b""
        try:
            while chunk := conn.recv(65536):
                got += chunk
        except TimeoutError:
            pass
        return got


def statuses(answered: bytes) -> list[int]:
    """The status of each response, read one after the other by their lengths."""
    found = []
    while answered:
        head, _, rest = answered.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        found.append(int(lines[0].split(b" ")[1]))
        length = next((int(line.split(b":")[1]) for line in lines[1:]
                       if line.lower().startswith(b"content-length:")), len(rest))
        answered = rest[length:]
    return found


def request(method: str, path: str, token: str, body: bytes = b"",
            length: str | None = None) -> bytes:
    """``length``: a header of our own for the body's length (Content-Length: N by
    default)."""
    return (f"{method} {path} HTTP/1.1\r\nHost: scim\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/scim+json\r\n"
            f"{length or f'Content-Length: {len(body)}'}\r\n\r\n").encode() + body


def last(token: str) -> bytes:
    """A request the server answers and then closes the connection after."""
    return request("GET", CONFIG, token, length="Content-Length: 0\r\nConnection: close")


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "GET"]),
       path=st.sampled_from(["/nope/v2/Users", "/crm/v2/Nothing", "/crm/v2/Bulk",
                             "/crm/v2/Users/no-such-id", "/", "/crm/v2/Users"]),
       body=st.binary(max_size=2000))
def test_what_a_request_leaves_unread_is_never_read_as_the_next_request(
        scim: ScimServer, method: str, path: str, body: bytes) -> None:
    answered = exchange(scim, request(method, path, scim.token, body) + last(scim.token))
    found = statuses(answered)
    assert len(found) == 2 and found[1] == 200, answered[:600]


def test_a_connection_closes_after_a_head_or_a_body_of_unknown_length(
        scim: ScimServer) -> None:
    chunked = request("POST", "/crm/v2/Users", scim.token, b"2\r\n{}\r\n0\r\n\r\n",
                      length="Transfer-Encoding: chunked")
    for first in (request("HEAD", CONFIG, scim.token), chunked):
        answered = exchange(scim, first + last(scim.token))
        assert len(statuses(answered)) == 1, answered[:600]
