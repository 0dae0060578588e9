"""The ``offboarding-portal`` command: serves the approvals portal with uvicorn.

Connection: Temporal's standard environment configuration, as the worker and CLI (with
the same payload codec, for the status it reads and the decisions it sends). Settings:
``OFFBOARDING_PORTAL_ADDRESS`` (where it listens), ``OFFBOARDING_PORTAL_URL`` (how
approvers reach it: the start of every link), the link keys (it uses their public
halves only), and ``OFFBOARDING_TRANSFER_ROOT`` (the exports it serves)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys

import uvicorn
from starlette.types import ASGIApp

from offboarding.config import Settings, SettingsError, load_settings
from offboarding.portal.app import build_app
from offboarding.security.codec import CodecKeyError
from offboarding.security.links import VERSION, LinkKeyError
from offboarding.security.web import hide_in_access_log
from offboarding.temporal import connect
from offboarding.tracing import setup as setup_tracing


def server_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """uvicorn's settings for the portal. X-Forwarded-For and -Proto are believed only
    from the proxies ``OFFBOARDING_PORTAL_TRUSTED_PROXIES`` names: by default from none
    (uvicorn's own default believes any process on the machine)."""
    host, _, port = settings.portal_address.rpartition(":")
    proxies = settings.portal_trusted_proxies
    return uvicorn.Config(app, host=host or "127.0.0.1", port=int(port),
                          proxy_headers=bool(proxies), forwarded_allow_ips=proxies or [],
                          server_header=False, log_level="info")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", help="Temporal address; overrides TEMPORAL_ADDRESS")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        codec = settings.codec()
        if settings.links() is None:
            raise LinkKeyError("no link keys: set OFFBOARDING_LINK_KEY_FILE or "
                               "OFFBOARDING_LINK_KEYS (the portal checks links with them)")
    except (SettingsError, CodecKeyError, LinkKeyError) as err:
        print(f"portal: {err}", file=sys.stderr)
        return 2
    setup_tracing("offboarding-portal")
    app = build_app(settings, connect=lambda: connect(args.address, codec))
    server = uvicorn.Server(server_config(app, settings))
    hide_in_access_log(re.compile(re.escape(VERSION) + r"\.[^/\s?]+"), f"{VERSION}.(link)")
    print(f"portal: serving {settings.portal_url} on {settings.portal_address}", flush=True)
    asyncio.run(server.serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
