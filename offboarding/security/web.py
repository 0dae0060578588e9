"""What the two web servers a person outside Temporal reaches (the approvals portal and
the codec server) share: a request body is read only up to a bound."""

from __future__ import annotations

from starlette.requests import Request


async def bounded_body(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk until it passes ``limit``: the caller refuses one
    longer than that without the rest ever being read into memory."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            break
    return body
