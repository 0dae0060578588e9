"""What the two web servers a person outside Temporal reaches (the approvals portal and
the codec server) share: a request body is read only up to a bound, and their access logs
never hold the credential some of their paths carry."""

from __future__ import annotations

import logging
import re

from starlette.requests import Request


class HideSecrets(logging.Filter):
    """uvicorn's access log writes each request's path whole, and a portal path holds an
    approver's link (a credential to decide and download, with their address inside) and
    a codec server path may hold its token (which decrypts histories). The log keeps the
    request and replaces the secret."""

    def __init__(self, secret: re.Pattern[str], replacement: str) -> None:
        super().__init__()
        self.secret, self.replacement = secret, replacement

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.secret.sub(self.replacement, a) if isinstance(a, str)
                                else a for a in record.args)
        return True


def hide_in_access_log(secret: re.Pattern[str], replacement: str) -> None:
    """Call once uvicorn's Config exists (it sets up its loggers when made)."""
    logging.getLogger("uvicorn.access").addFilter(HideSecrets(secret, replacement))


async def bounded_body(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk until it passes ``limit``: the caller refuses one
    longer than that without the rest ever being read into memory."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            break
    return body
