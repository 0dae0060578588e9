"""The ``offboarding-portal`` command: serves the approvals portal with uvicorn.

Connection: Temporal's standard environment configuration, as the worker and CLI (with
the same payload codec, for the status it reads and the decisions it sends). Settings:
``OFFBOARDING_PORTAL_ADDRESS`` (where it listens), ``OFFBOARDING_PORTAL_URL`` (how
approvers reach it: the start of every link), the link keys (it uses their public
halves only), ``OFFBOARDING_TRANSFER_ROOT`` (the exports it serves) and
``OFFBOARDING_PORTAL_WORKERS`` (how many processes serve the address; 1 by default).

With several workers this process binds the address once and supervises that many
processes sharing it (uvicorn's supervisor; each builds the app and connects to Temporal
itself, and its log lines carry its pid). SIGINT or SIGTERM stops them all. A process that
dies, or stops answering the supervisor's health check for 5 s (a thread of its own: a
stopped process, not a slow event loop), is replaced while the others serve; one that
cannot start (Temporal unreachable, a setting) stops the whole portal with exit status 3,
so whatever runs the portal sees it rather than a portal half served. SIGHUP replaces
them one by one. On Linux a process also ends with its supervisor, even a SIGKILLed one,
so none is left holding the address."""

from __future__ import annotations

import argparse
import asyncio
import copy
import ctypes
import multiprocessing
import os
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import LOGGING_CONFIG, STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from offboarding.config import Settings, SettingsError, load_settings
from offboarding.portal.app import build_app
from offboarding.security.codec import CodecKeyError
from offboarding.security.links import VERSION, LinkKeyError
from offboarding.security.web import hide_in_access_log
from offboarding.temporal import connect
from offboarding.tracing import setup as setup_tracing

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def server_config(app: ASGIApp | Callable[[], ASGIApp], settings: Settings,
                  workers: int = 1) -> uvicorn.Config:
    """uvicorn's settings for the portal. X-Forwarded-For and -Proto are believed only
    from the proxies ``OFFBOARDING_PORTAL_TRUSTED_PROXIES`` names: by default from none
    (uvicorn's own default believes any process on the machine). With several
    ``workers``, ``app`` is the factory each process calls, and every log line names the
    process that wrote it."""
    host, _, port = settings.portal_address.rpartition(":")
    proxies = settings.portal_trusted_proxies
    extra: dict[str, Any] = {}
    if workers > 1:
        logging_config = copy.deepcopy(LOGGING_CONFIG)
        for formatter in logging_config["formatters"].values():
            formatter["fmt"] = formatter["fmt"].replace("%(levelprefix)s ",
                                                        "%(levelprefix)s [%(process)d] ")
        extra = {"factory": True, "log_config": logging_config}
    return uvicorn.Config(app, host=host or "127.0.0.1", port=int(port),
                          proxy_headers=bool(proxies), forwarded_allow_ips=proxies or [],
                          server_header=False, log_level="info", workers=workers, **extra)


def _hide_links() -> None:
    hide_in_access_log(re.compile(re.escape(VERSION) + r"\.[^/\s?]+"), f"{VERSION}.(link)")


@dataclass(frozen=True)
class PortalProcess:
    """What each of several portal processes runs to get its app: its own settings (from
    the same environment), its own Temporal client (made at its startup) and its own
    access-log filter. Pickled to the processes uvicorn's supervisor spawns."""

    address: str | None
    """``--address``, if given: it wins over TEMPORAL_ADDRESS, as with one process."""

    def __call__(self) -> ASGIApp:
        _end_with_supervisor()
        try:
            settings = load_settings()
            codec = settings.codec()
        except (SettingsError, CodecKeyError) as err:  # changed since the supervisor read it
            print(f"portal: {err}", file=sys.stderr, flush=True)
            sys.exit(STARTUP_FAILURE)
        setup_tracing("offboarding-portal")
        _hide_links()
        address = self.address
        return build_app(settings, connect=lambda: connect(address, codec))


def _end_with_supervisor() -> None:
    """Linux: have the kernel send this process SIGTERM when its supervisor dies, however
    it dies; if it is already gone, end now."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent.pid:
        os.kill(os.getpid(), signal.SIGTERM)


def serve_processes(settings: Settings, address: str | None) -> int:
    """Bind the address, run ``portal_workers`` processes on it until a signal or a
    process that cannot start; 0, or 3 (uvicorn's startup failure) for the latter."""
    workers = settings.portal_workers
    config = server_config(PortalProcess(address), settings, workers)
    socket = config.bind_socket()  # exits with status 3 when the address is taken
    print(f"portal: serving {settings.portal_url} on {settings.portal_address} with "
          f"{workers} processes", flush=True)
    supervisor = Multiprocess(config, sockets=[socket])
    supervisor.run()
    socket.close()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        print("portal: a process could not start; stopped them all", file=sys.stderr,
              flush=True)
        return STARTUP_FAILURE
    return 0


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
    if settings.portal_workers > 1:
        return serve_processes(settings, args.address)
    setup_tracing("offboarding-portal")
    app = build_app(settings, connect=lambda: connect(args.address, codec))
    server = uvicorn.Server(server_config(app, settings))
    _hide_links()
    print(f"portal: serving {settings.portal_url} on {settings.portal_address}", flush=True)
    asyncio.run(server.serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
